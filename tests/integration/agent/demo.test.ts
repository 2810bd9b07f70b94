// The README's first command: the agent on the embedded demo defaults shows what a center receives.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../../core/runtime-env.js';
import { duplicateKeys } from '../../../testkit/json-keys.js';
import { freePort } from '../../../testkit/ports.js';
import { onProcessExit } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

describe('demo (npm start)', () => {
  // As `npm start` runs it: with the agent's V8 flags (interpreter only).
  it('runs on config/examples/demo.yaml: real detections reach the embedded broker; SIGTERM stops it cleanly', async () => {
    const env = { ...process.env, ROADSIDE_DATA_DIR: makeTempDir('demo'), ROADSIDE_MQTT_URL: `mqtt://127.0.0.1:${await freePort()}`, ROADSIDE_STATUS_PORT: String(await freePort()), ROADSIDE_LOG_LEVEL: 'debug' };
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, 'dist/cli/main.js', 'run', '--config', 'config/examples/demo.yaml'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    onProcessExit(() => child.kill('SIGKILL'));
    const lines: Record<string, unknown>[] = [];
    const raw: string[] = [];
    let buf = '';
    const seen = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const l of parts) {
          raw.push(l);
          lines.push(JSON.parse(l) as Record<string, unknown>);
        }
        const received = lines.filter((l) => l.msg === 'center received');
        if (received.some((l) => l.type === 'object_new' && String(l.object).startsWith('person#')) && received.some((l) => l.state === 'online')) resolve();
      });
    });
    await Promise.race([seen, new Promise((_, rej) => setTimeout(() => rej(new Error(`no detections within 60 s; last lines: ${JSON.stringify(lines.slice(-5))}`)), 60_000))]);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    const birth = lines.find((l) => l.msg === 'center received' && String(l.topic).endsWith('/birth'));
    expect(birth).toBeDefined();
    expect(lines.some((l) => l.msg === 'center received' && l.state === 'stopped')).toBe(true);
    // One log namespace key, never twice on a line; per-message lines at debug, the tally at info.
    expect(raw.flatMap((l) => duplicateKeys(l).map((k) => `${k} in ${l.slice(0, 160)}`))).toEqual([]);
    expect(lines.filter((l) => 'module' in l)).toEqual([]);
    expect(lines.filter((l) => l.msg === 'center received').every((l) => l.level === 20)).toBe(true);
    expect(lines.some((l) => String(l.msg).startsWith('center received (last 10 s') && l.level === 30)).toBe(true);
  });

  it('the duplicate-key check can fail', () => {
    expect(duplicateKeys('{"mod":"broker","mod":"center-view","a":{"b":1,"b":2},"c":[{"d":1},{"d":2}]}')).toEqual(['mod', 'a.b']);
  });
});
