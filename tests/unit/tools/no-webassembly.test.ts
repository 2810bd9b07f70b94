// The agent runs with V8's lite mode and --no-expose-wasm (core/runtime-env.ts AGENT_NODE_FLAGS), and so does the
// benchmark: there is no WebAssembly, and Node's fetch() needs it (undici's HTTP parser), failing at its first call
// with "WebAssembly is not defined". Code that runs under those flags uses node:http instead.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const UNDER_FLAGS = ['core', 'contract', 'config', 'buffer', 'ingest', 'inference', 'agent', 'center', 'cli', 'bench', 'testkit'];
const USES = /\bfetch\s*\(|\bWebAssembly\s*\./;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    // public/: the status page's scripts run in the technician's browser, not under node.
    if (statSync(p).isDirectory()) return name === 'node_modules' || name === 'public' ? [] : sources(p);
    return /\.(ts|js|mjs)$/.test(name) ? [p] : [];
  });
}

/** "file:line: text" of every line that calls fetch() or uses WebAssembly's API (not: checks it is there), comments aside. */
export function wasmUses(files: readonly string[], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): string[] {
  return files.flatMap((f) =>
    read(f)
      .split('\n')
      .map((line, i) => ({ line, i }))
      .filter(({ line }) => USES.test(line.replace(/\/\/.*$/, '').replace(/^\s*(\/\*\*?|\*).*$/, '')))
      .map(({ line, i }) => `${f}:${i + 1}: ${line.trim()}`),
  );
}

describe('no WebAssembly where the agent flags apply', () => {
  const files = UNDER_FLAGS.flatMap(sources);

  it('reads the source folders (a check over no files would pass)', () => {
    expect(files.length).toBeGreaterThan(200);
  });

  it('no fetch() and no WebAssembly in the agent, its tools and the benchmark', () => {
    expect(wasmUses(files)).toEqual([]);
  });

  it('finds a fetch() call, and leaves one in a comment alone', () => {
    const src: Record<string, string> = { 'a.ts': 'const r = await fetch(url);\n', 'b.ts': '// fetch() is WebAssembly inside\n/** fetch(x) */\n * fetch(x)\n' };
    expect(wasmUses(Object.keys(src), (f) => src[f]!)).toEqual(['a.ts:1: const r = await fetch(url);']);
  });
});
