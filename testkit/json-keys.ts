// JSON.parse keeps the last of two equal keys silently; log consumers (journald → Loki, jq) disagree on which
// one wins. This finds duplicate keys at any depth of one JSON text.

/** Paths of keys that occur twice in the same object, e.g. ["mod"] or ["object.class"]. */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  const stack: { keys: Set<string>; path: string; isObject: boolean; pendingKey?: string }[] = [];
  let i = 0;
  const readString = (): string => {
    let out = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        out += text[i]! + text[i + 1]!;
        i += 2;
      } else out += text[i++]!;
    }
    i++; // closing quote
    return out;
  };
  let expectKey = false;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{' || c === '[') {
      const parent = stack.at(-1);
      const path = parent ? [parent.path, parent.pendingKey ?? '[]'].filter(Boolean).join('.') : '';
      stack.push({ keys: new Set(), path, isObject: c === '{' });
      expectKey = c === '{';
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
      expectKey = false;
    } else if (c === '"') {
      const s = readString();
      const top = stack.at(-1);
      if (top?.isObject && expectKey) {
        if (top.keys.has(s)) dups.push(top.path ? `${top.path}.${s}` : s);
        top.keys.add(s);
        top.pendingKey = s;
        expectKey = false;
      }
    } else if (c === ',') {
      expectKey = stack.at(-1)?.isObject ?? false;
      i++;
    } else i++;
  }
  return dups;
}
