// Four cameras stop within the default 10 s deadline: every pipeline stops at once, so each camera's evidence
// builds hurry together instead of one camera's waiting for the others'. One by one, the demo's four cameras
// (a stopped-vehicle violation every ~20 s each, packages cut from the recording) missed the deadline on this
// 2-core machine: "shutdown deadline passed", exit 1. Real agent process, the demo config, its embedded broker.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../../core/paths.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { freePort } from '../../../testkit/ports.js';
import { onProcessExit } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const BIN = 'dist/cli/main.js';
const CAMERAS = 4;
const RUN_S = 40;

async function writeConfig(dir: string): Promise<string> {
  const demo = parse(readFileSync(join(packageRoot(), 'config/examples/demo.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  const [cam] = demo.cameras as unknown as Record<string, unknown>[];
  demo.device!.data_dir = join(dir, 'data');
  (demo as Record<string, unknown>).cameras = Array.from({ length: CAMERAS }, (_, i) => ({ ...cam, id: `cam${i + 1}`, url: DEMO_CLIP }));
  demo.mqtt!.url = `mqtt://127.0.0.1:${await freePort()}`;
  demo.status!.port = await freePort();
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, stringify(demo));
  return file;
}

describe('stop with four cameras', () => {
  it('SIGTERM after 40 s: every camera stops, exit 0 within the default deadline', { timeout: 120_000 }, async () => {
    const config = await writeConfig(makeTempDir('stop-cameras'));
    const agent = spawn(process.execPath, [BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const unguard = onProcessExit(() => agent.kill('SIGKILL'));
    let log = '';
    agent.stdout.on('data', (d: Buffer) => (log += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => agent.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      await new Promise((r) => setTimeout(r, RUN_S * 1000));
      expect(agent.exitCode).toBeNull();
      const t0 = Date.now();
      agent.kill('SIGTERM');
      const { code, signal } = await exited;
      const stop_ms = Date.now() - t0;
      console.log(`${CAMERAS} cameras stopped in ${stop_ms} ms`);
      expect(log).not.toContain('shutdown deadline passed');
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(stop_ms).toBeLessThan(10_000);
      expect(log.match(/camera offline \(stopped\)/g)?.length).toBe(CAMERAS);
    } finally {
      agent.kill('SIGKILL');
      unguard();
    }
  });
});
