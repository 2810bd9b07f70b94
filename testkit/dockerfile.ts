// Dockerfile and .dockerignore as data: the lint test and the image-assembly test read the same parse.

export interface Instruction {
  cmd: string;
  args: string;
  line: number;
}
export interface Stage {
  from: Instruction;
  name?: string | undefined;
  body: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped; `line` is where each one starts. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*(#|$)/.test(line)) return;
    if (buf !== '' && /^\s*#/.test(line)) return; // comment inside a continued instruction
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    buf += line;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buf);
    if (m) out.push({ cmd: m[1]!.toUpperCase(), args: m[2]!.trim().replace(/\s+/g, ' '), line: start });
    buf = '';
  });
  return out;
}

export function stages(ins: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const i of ins) {
    if (i.cmd === 'FROM') out.push({ from: i, name: / AS (\S+)$/i.exec(i.args)?.[1], body: [] });
    else out.at(-1)?.body.push(i);
  }
  return out;
}

/** The patterns of a .dockerignore file (comments and blank lines dropped). */
export function parseDockerignore(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** The .dockerignore pattern that excludes `path` (relative, no leading slash), or undefined. */
export function ignoredBy(patterns: string[], path: string): string | undefined {
  const toRe = (p: string) =>
    new RegExp(
      `^${p
        .replace(/^\//, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '(?:.*/)?')
        .replace(/\*/g, '[^/]*')}(?:/.*)?$`,
    );
  let hit: string | undefined;
  // Later lines win, and "!pattern" lets a path back in (as Docker reads the file).
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (hit && toRe(p.slice(1)).test(path)) hit = undefined;
    } else if (toRe(p).test(path)) hit = p;
  }
  return hit;
}

/** `COPY [--from=X] [--chown=..] src... dest` as data. */
export function copyArgs(i: Instruction): { from?: string | undefined; sources: string[]; dest: string } {
  const words = i.args.split(' ');
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((w) => !w.startsWith('--'));
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}
