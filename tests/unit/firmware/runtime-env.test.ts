// The deployed process environment and V8 flags (core/runtime-env.ts) are written out twice: in the systemd unit
// that firmware-scripts/install.sh generates and in Dockerfile.arm64's runtime stage. Both must carry the constants.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS, AGENT_RUNTIME_ENV } from '../../../core/runtime-env.js';
import { parseDockerfile, stages } from '../../../testkit/dockerfile.js';

const INSTALL = readFileSync('firmware-scripts/install.sh', 'utf8');
const DOCKERFILE = readFileSync('Dockerfile.arm64', 'utf8');

const unquote = (s: string) => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

/** `Environment=` lines of the unit install.sh writes (`Environment="K=V W"` or `Environment=K=V`). */
export function unitEnv(installSh: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of installSh.matchAll(/^Environment=(.+)$/gm)) {
    const kv = unquote(m[1]!.trim());
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/** ENV of the Dockerfile's last (runtime) stage, `K=V` and `K="V W"` pairs. */
export function dockerEnv(dockerfile: string): Record<string, string> {
  const env: Record<string, string> = {};
  const runtime = stages(parseDockerfile(dockerfile)).at(-1);
  for (const i of runtime?.body ?? []) {
    if (i.cmd !== 'ENV') continue;
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = unquote(m[2]!);
  }
  return env;
}

/** Keys of `want` whose value differs in `have`, as "KEY: have ≠ want". */
export function mismatches(have: Record<string, string>, want: Readonly<Record<string, string>>): string[] {
  return Object.entries(want)
    .filter(([k, v]) => have[k] !== v)
    .map(([k, v]) => `${k}: ${have[k] ?? '(missing)'} ≠ ${v}`);
}

describe('AGENT_RUNTIME_ENV in the unit and the image', () => {
  it('the constant is not empty (the checks below would pass vacuously)', () => {
    expect(Object.keys(AGENT_RUNTIME_ENV).length).toBeGreaterThan(0);
  });

  it('the systemd unit of install.sh carries every value of the constant', () => {
    expect(mismatches(unitEnv(INSTALL), AGENT_RUNTIME_ENV)).toEqual([]);
  });

  it("Dockerfile.arm64's runtime stage carries every value of the constant", () => {
    expect(mismatches(dockerEnv(DOCKERFILE), AGENT_RUNTIME_ENV)).toEqual([]);
  });

  const [key, value] = Object.entries(AGENT_RUNTIME_ENV)[0]!;
  it('fails on a unit without one of the values, or with another value', () => {
    const line = INSTALL.split('\n').find((l) => l.startsWith('Environment=') && l.includes(`${key}=`))!;
    expect(line).toBeDefined();
    expect(mismatches(unitEnv(INSTALL.replace(line, '')), AGENT_RUNTIME_ENV)).toEqual([`${key}: (missing) ≠ ${value}`]);
    expect(mismatches(unitEnv(INSTALL.replace(line, line.replace(`${key}=${value}`, `${key}=${value}9`))), AGENT_RUNTIME_ENV)).toEqual([`${key}: ${value}9 ≠ ${value}`]);
  });

  it('fails on an image without one of the values, or with it only in the build stage', () => {
    const changed = DOCKERFILE.replace(new RegExp(`(ENV[^\\n]*(?:\\\\\\n[^\\n]*)*?)\\b${key}=\\S+`), `$1${key}=other`);
    expect(changed).not.toBe(DOCKERFILE);
    expect(mismatches(dockerEnv(changed), AGENT_RUNTIME_ENV)).toEqual([`${key}: other ≠ ${value}`]);
    const buildOnly = stages(parseDockerfile(DOCKERFILE)).slice(0, -1);
    expect(buildOnly.length).toBeGreaterThan(0);
    // A value set in the build stage does not reach the runtime image.
    const first = DOCKERFILE.indexOf('FROM ');
    const second = DOCKERFILE.indexOf('\n', first);
    const movedUp = `${DOCKERFILE.slice(0, second + 1)}ENV ${key}=${value}\n${changed.slice(second + 1)}`;
    expect(mismatches(dockerEnv(movedUp), AGENT_RUNTIME_ENV)).toEqual([`${key}: other ≠ ${value}`]);
  });
});

/** The node flags of the unit's ExecStart: what stands between the node binary and the agent's script. */
export function unitNodeFlags(installSh: string): string[] | undefined {
  const m = /^ExecStart=\S+ (.*?)\s*\S+\/dist\/cli\/main\.js /m.exec(installSh);
  return m ? m[1]!.split(/\s+/).filter(Boolean) : undefined;
}

describe('AGENT_NODE_FLAGS in the unit and the image', () => {
  it('the unit starts node with exactly the flags, before the script', () => {
    expect(AGENT_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(unitNodeFlags(INSTALL)).toEqual([...AGENT_NODE_FLAGS]);
    expect(unitNodeFlags(INSTALL.replace(` ${AGENT_NODE_FLAGS[0]} `, ' '))).not.toEqual([...AGENT_NODE_FLAGS]);
  });

  it("the image's ENTRYPOINT carries them (exec form, checked in dockerfile.test.ts too)", () => {
    const runtime = stages(parseDockerfile(DOCKERFILE)).at(-1)!;
    const entry = JSON.parse(runtime.body.find((i) => i.cmd === 'ENTRYPOINT')!.args) as string[];
    expect(entry.slice(1, -1)).toEqual([...AGENT_NODE_FLAGS]);
  });

  it('`npm start` (the demo) runs the agent with them', () => {
    const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
    expect(start).toContain(`node ${AGENT_NODE_FLAGS.join(' ')} dist/cli/main.js run`);
  });

  it("without WebAssembly, fetch's globals are removed (core/wasm-free.ts) so a library that sniffs them loads (pg)", () => {
    const load = (prelude: string) =>
      spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '--import', 'tsx', '-e', `${prelude}import('pg').then(() => process.stdout.write(typeof Response))`], { encoding: 'utf8' });
    const bare = load('');
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toMatch(/WebAssembly is not defined/);
    const fixed = load("await import('./core/wasm-free.ts'); ");
    expect(fixed.stderr).toBe('');
    expect(fixed.stdout).toBe('undefined');
  });

  it('node accepts them', () => {
    const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '-e', 'process.stdout.write(String(typeof WebAssembly))'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    // No warning at each start of the agent, and WebAssembly off as the constant's comment says.
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('undefined');
  });
});
