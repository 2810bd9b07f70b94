// YAML parsing for configs, bounded: nesting depth (checked on the text before the parser, which recurses and
// runs out of memory on a 1 MB "[[[[…", then exactly on the tree), duplicate keys in linear time (the yaml
// package's uniqueKeys is quadratic: 40 000 keys took 38 s), aliases (unresolved, self-containing, or
// expanding beyond maxAliasCount). Every finding is a ConfigProblem with its line.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, MAX_PROBLEMS_SHOWN, type ConfigProblem } from './problems.js';

export type Path = (string | number)[];

/** Deepest nesting of collections a config may use (a real one needs 7). */
export const MAX_DEPTH = 32;
/** Copies an alias may expand to (the yaml package's own guard against "billion laughs"). */
export const MAX_ALIAS_COUNT = 100;

export interface ParsedYaml {
  doc: Document;
  lines: LineCounter;
  /** The document as plain data. */
  raw: unknown;
}

class Problems {
  readonly list: ConfigProblem[] = [];
  total = 0;
  constructor(private readonly file: string) {}
  add(line: number | undefined, path: Path, message: string): void {
    this.total++;
    if (this.list.length < MAX_PROBLEMS_SHOWN) this.list.push({ file: this.file, ...(line === undefined ? {} : { line }), path: path.join('.'), message });
  }
  throwIfAny(): void {
    if (this.total > 0) throw new ConfigError(this.list, this.total);
  }
}

/**
 * Nesting as the text shows it: block indentation levels + "- "/"? " entries + open flow brackets, outside
 * quotes, comments and block scalars. A lexical estimate, within a factor of two of the truth (a sequence
 * not indented under its key adds a level the indentation does not show), so checking it against twice
 * MAX_DEPTH stops only files the exact check would refuse anyway. Returns the line where it is exceeded.
 */
export function textDepthExceeded(text: string, limit = 2 * MAX_DEPTH): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let quote: '"' | "'" | undefined;
  let blockParent: number | undefined;
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const indent = /^ */.exec(line)![0].length;
    const body = line.slice(indent);
    if (blockParent !== undefined) {
      if (body === '' || indent > blockParent) continue;
      blockParent = undefined;
    }
    if (quote === undefined && flow === 0) {
      if (body === '' || body.startsWith('#')) continue;
      while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
      indents.push(indent);
    }
    let entries = 0;
    let deepest = flow;
    // True where a node may start: line start, after "- ", "? ", ": ", "[", "{", ",", a tag or an anchor.
    let atNode = true;
    let nodeCol = indent;
    for (let k = 0; k < body.length; k++) {
      const c = body[k]!;
      const next = body[k + 1];
      const blankNext = next === undefined || next === ' ' || next === '\t';
      if (quote) {
        if (c === '\\' && quote === '"') k++;
        else if (c === quote) {
          if (quote === "'" && next === "'") k++;
          else quote = undefined;
        }
        continue;
      }
      if (c === ' ' || c === '\t') continue;
      if (c === '#' && (k === 0 || /\s/.test(body[k - 1]!))) break;
      if (atNode && (c === '-' || c === '?') && blankNext && flow === 0) {
        entries++;
        nodeCol = indent + k + 2;
        continue;
      }
      if (atNode && (c === '!' || c === '&')) {
        while (k + 1 < body.length && !/\s/.test(body[k + 1]!)) k++;
        continue;
      }
      if (atNode && (c === '"' || c === "'")) {
        quote = c;
        atNode = false;
        continue;
      }
      if (atNode && flow === 0 && (c === '|' || c === '>') && /^[|>][-+0-9]*\s*(#.*)?$/.test(body.slice(k))) {
        // Block scalar: its lines are indented deeper than the node that owns it.
        blockParent = nodeCol;
        break;
      }
      if ((c === '[' || c === '{') && (atNode || flow > 0)) {
        deepest = Math.max(deepest, ++flow);
        atNode = true;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
        atNode = false;
      } else if (c === ',' && flow > 0) {
        atNode = true;
      } else if (c === ':' && (blankNext || flow > 0)) {
        atNode = true;
      } else {
        if (atNode && flow === 0) nodeCol = indent + k;
        atNode = false;
      }
    }
    if (indents.length + entries + deepest > limit) return i + 1;
  }
  return undefined;
}

const lineAt = (lc: LineCounter, node: { range?: [number, number, number] | null } | null | undefined): number | undefined =>
  node?.range ? lc.linePos(node.range[0]).line : undefined;

interface Frame {
  node: unknown;
  depth: number;
  path: Path;
  /** Set on the frame that closes an anchored collection. */
  leave?: string;
}

/** Depth, keys and aliases on the tree, in document order, without following aliases. */
function checkTree(doc: Document, lc: LineCounter, out: Problems): Node | undefined {
  const seen = new Set<string>();
  const open = new Map<string, number>();
  let firstAlias: Node | undefined;
  const stack: Frame[] = [{ node: doc.contents, depth: 1, path: [] }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (f.leave !== undefined) {
      open.set(f.leave, (open.get(f.leave) ?? 1) - 1);
      continue;
    }
    const n = f.node;
    if (isAlias(n)) {
      firstAlias ??= n;
      if (!seen.has(n.source)) out.add(lineAt(lc, n), f.path, `YAML alias *${n.source} has no anchor &${n.source} before it`);
      else if ((open.get(n.source) ?? 0) > 0) out.add(lineAt(lc, n), f.path, `YAML alias *${n.source} is inside the collection it names: it would never end`);
      continue;
    }
    if (!isMap(n) && !isSeq(n)) {
      if (isScalar(n) && n.anchor) seen.add(n.anchor);
      continue;
    }
    if (n.anchor) seen.add(n.anchor);
    if (f.depth > MAX_DEPTH) {
      out.add(lineAt(lc, n), f.path, `nested more than ${MAX_DEPTH} levels deep`);
      continue;
    }
    if (n.anchor) {
      open.set(n.anchor, (open.get(n.anchor) ?? 0) + 1);
      stack.push({ node: undefined, depth: f.depth, path: f.path, leave: n.anchor });
    }
    const children: Frame[] = [];
    if (isMap(n)) {
      const keys = new Map<string, number | undefined>();
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const key = pair.key;
        if (!isScalar(key)) {
          out.add(lineAt(lc, isAlias(key) || isMap(key) || isSeq(key) ? key : (pair.value as Node | null)), f.path, 'a key must be a plain name, not a collection or an alias');
          continue;
        }
        if (key.anchor) seen.add(key.anchor);
        const name = String(key.value);
        const line = lineAt(lc, key);
        if (keys.has(name)) out.add(line, [...f.path, name], `duplicate key "${name}"${keys.get(name) === undefined ? '' : ` (first on line ${keys.get(name)})`}`);
        else keys.set(name, line);
        children.push({ node: pair.value, depth: f.depth + 1, path: [...f.path, name] });
      }
    } else {
      n.items.forEach((item, i) => children.push({ node: item, depth: f.depth + 1, path: [...f.path, i] }));
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return firstAlias;
}

/** Parses a config's YAML; throws ConfigError with every YAML-level problem located by line. */
export function parseConfigYaml(text: string, file: string): ParsedYaml {
  const out = new Problems(file);
  const deep = textDepthExceeded(text);
  if (deep !== undefined) {
    out.add(deep, [], `YAML nested more than ${MAX_DEPTH} levels deep`);
    out.throwIfAny();
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  for (const e of [...doc.errors, ...doc.warnings]) {
    out.add(lines.linePos(e.pos[0]).line, [], `YAML ${e.name === 'YAMLWarning' ? 'warning' : 'syntax'}: ${e.message.split('\n')[0] ?? e.message}`);
  }
  out.throwIfAny();
  const firstAlias = checkTree(doc, lines, out);
  out.throwIfAny();
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const bomb = /alias count/i.test(msg);
    out.add(
      lineAt(lines, bomb ? firstAlias : doc.contents),
      [],
      bomb ? `YAML aliases expand to too many copies (more than ${MAX_ALIAS_COUNT}): write the values out` : `YAML: ${msg}`,
    );
    out.throwIfAny();
  }
  return { doc, lines, raw };
}

/**
 * Line of the key that holds `path` (+ `key`): "tls:" rather than the first line inside it. A missing key
 * falls back to its nearest existing parent, so "required" problems point at the section that lacks it.
 */
export function lineOf(doc: Document, lc: LineCounter, path: Path, key?: string): number | undefined {
  const full = key === undefined ? path : [...path, key];
  for (let n = full.length; n >= 1; n--) {
    const parent = n === 1 ? doc.contents : (doc.getIn(full.slice(0, n - 1), true) as Node | undefined);
    const k = full[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === k);
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return lc.linePos(range[0]).line;
    } else if (isSeq(parent) && typeof k === 'number') {
      const item = parent.items[k];
      if ((isScalar(item) || isMap(item) || isSeq(item)) && item.range) return lc.linePos(item.range[0]).line;
    }
  }
  return lineAt(lc, doc.contents);
}
