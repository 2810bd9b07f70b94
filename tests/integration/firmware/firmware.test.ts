// firmware-scripts/: shellcheck on every script, then the bats suites in tests/firmware (temporary roots, stub
// systemctl/useradd/chown; nothing on the real system is touched). shellcheck and bats come from .ci/setup.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

type Outcome = { code: number; stdout: string; stderr: string };
async function outcome(cmd: string, args: string[], timeoutMs: number): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(cmd, args, { maxBuffer: 16 << 20, timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed: run bash .ci/setup`, { cause: err });
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

const files = (dir: string, filter: (f: string) => boolean) =>
  readdirSync(dir)
    .filter(filter)
    .sort()
    .map((f) => join(dir, f));

describe('firmware-scripts', () => {
  it('shellcheck finds nothing in the scripts, the test helpers and the bats files', async () => {
    const scripts = [
      ...files('firmware-scripts', (f) => f.endsWith('.sh')),
      ...files('tests/arm64', (f) => f.endsWith('.sh')),
      ...files('tests/firmware', (f) => f.endsWith('.bats') || f.endsWith('.bash')),
      ...files('tests/firmware/stubs', () => true),
    ];
    expect(scripts).toEqual(expect.arrayContaining(['firmware-scripts/install.sh', 'firmware-scripts/update.sh', 'firmware-scripts/uninstall.sh', 'firmware-scripts/healthcheck.sh']));
    const r = await outcome('shellcheck', ['-x', ...scripts], 60_000);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('bats tests/firmware: install, update (switch and rollback), uninstall, healthcheck', { timeout: 600_000 }, async () => {
    const r = await outcome('bats', ['--formatter', 'tap', 'tests/firmware'], 590_000);
    const results = [...r.stdout.matchAll(/^(ok|not ok) \d+ (.*?)(?: # skip.*)?$/gm)].map((m) => ({ ok: m[1] === 'ok', name: m[2]! }));
    const failed = results.filter((t) => !t.ok).map((t) => t.name);
    expect(failed, r.stdout + r.stderr).toEqual([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The scenarios the release process relies on ran (and were not, say, filtered out).
    const names = results.map((t) => t.name);
    for (const required of [
      /^install lays out user, directories and modes, release, current symlink, unit/,
      /^update to a healthy release switches current/,
      /^update to a release whose health check fails rolls back to the previous one/,
      /^uninstall stops the service, removes code, unit and wrapper, keeps config and data/,
      /^uninstall --purge removes config, data and the user/,
    ]) {
      expect(names.some((n) => required.test(n)), `missing bats test ${required}`).toBe(true);
    }
    expect(results.length).toBeGreaterThanOrEqual(20);
  });
});
