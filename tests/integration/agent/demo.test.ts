// The README's first command: the agent on the embedded demo defaults shows what a center receives.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../testkit/ports.js';
import { onProcessExit } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

describe('demo (npm start)', () => {
  it('runs on config/examples/demo.yaml: real detections reach the embedded broker; SIGTERM stops it cleanly', async () => {
    const env = { ...process.env, ROADSIDE_DATA_DIR: makeTempDir('demo'), ROADSIDE_MQTT_URL: `mqtt://127.0.0.1:${await freePort()}`, ROADSIDE_STATUS_PORT: String(await freePort()) };
    const child = spawn(process.execPath, ['dist/agent/cli/main.js', 'run', '--config', 'config/examples/demo.yaml'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    onProcessExit(() => child.kill('SIGKILL'));
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    const seen = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const l of parts) lines.push(JSON.parse(l) as Record<string, unknown>);
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
  });
});
