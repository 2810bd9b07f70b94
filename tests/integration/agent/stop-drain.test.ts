// A clean stop delivers everything: the pipelines' last events (object_end "shutdown", the partial flow bin),
// appended while the agent stops, are committed and published before the uplink says `stopped` and
// disconnects. Real agent process, real mosquitto, the demo clip as a looping local camera.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { onProcessExit, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const BIN = 'dist/cli/main.js';
const BASE = 'roadside/drain-site/drain-box';
const ROUNDS = 3;

interface Received {
  topic: string;
  body: Record<string, unknown>;
}

let broker: Mosquitto;
let dir: string;

beforeAll(async () => {
  dir = makeTempDir('stop-drain');
  broker = await Mosquitto.start();
});

afterAll(async () => {
  await broker?.stop();
});

function writeConfig(): string {
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    stringify({
      device: { id: 'drain-box', site: 'drain-site', data_dir: join(dir, 'data') },
      cameras: [
        {
          id: 'cam1',
          url: DEMO_CLIP,
          frame: { width: 768, height: 576 },
          detection_fps: 5,
          motion: { enabled: false },
          lines: [{ id: 'mid', a: [0, 330], b: [768, 330] }],
          zones: [{ id: 'plaza', polygon: [[60, 200], [700, 200], [740, 560], [20, 560]], classes: ['person'] }],
        },
      ],
      analytics: { update_interval_s: 1 },
      mqtt: { url: broker.url, protocol: 5, inflight_window: 16, backoff: { initial_ms: 200, max_ms: 1000 } },
      health: { interval_s: 2 },
      status: { enabled: false },
      logging: { level: 'info' },
    }),
  );
  return file;
}

/** Rows of the outbox file not covered by an acknowledged range, and the highest seq it ever assigned. */
function outboxFile(): { unsent: number; maxSeq: number } {
  const db = new Database(join(dir, 'data', 'outbox.db'), { readonly: true, fileMustExist: true });
  try {
    const unsent = db.prepare('SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE o.seq BETWEEN a.lo AND a.hi)').pluck().get() as number;
    const maxSeq = db.prepare('SELECT max(seq) FROM outbox').pluck().get() as number | null;
    return { unsent, maxSeq: maxSeq ?? 0 };
  } finally {
    db.close();
  }
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

describe('clean stop drains the outbox', () => {
  let client: MqttClient;
  const got: Received[] = [];

  beforeAll(async () => {
    client = await connectMqtt(broker.url, { protocolVersion: 5, clean: true });
    client.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
    await client.subscribeAsync(`${BASE}/#`, { qos: 1 });
  });
  afterAll(() => endMqtt(client));

  it(`SIGTERM while tracks are active: 0 unsent rows, every seq up to the last delivered (${ROUNDS} rounds)`, { timeout: 240_000 }, async () => {
    const config = writeConfig();
    const seqs = () => new Set(got.map((m) => m.body.seq).filter((s): s is number => typeof s === 'number'));
    for (let round = 1; round <= ROUNDS; round++) {
      const from = got.length;
      const agent = spawn(process.execPath, [BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      agent.stdout.resume();
      agent.stderr.resume();
      const unguard = onProcessExit(() => agent.kill('SIGKILL'));
      const events = () => got.slice(from).filter((m) => m.topic === `${BASE}/events/cam1`);
      try {
        // People are on screen and tracked: the stop has objects to end.
        await waitFor(() => events().filter((e) => e.body.type === 'object_new').length >= 3, { timeout_ms: 90_000, message: `round ${round}: tracked objects` });
      } finally {
        agent.kill('SIGTERM');
      }
      expect(await exited(agent)).toBe(0);
      unguard();
      // The broker forwarded everything the agent got a PUBACK for before `stopped`.
      await waitFor(() => got.slice(from).some((m) => m.topic === `${BASE}/status` && m.body.state === 'stopped'), { timeout_ms: 5000, message: `round ${round}: stopped` });

      const file = outboxFile();
      const received = seqs();
      const missing = Array.from({ length: file.maxSeq }, (_, i) => i + 1).filter((s) => !received.has(s));
      expect({ round, unsent: file.unsent, missing }).toEqual({ round, unsent: 0, missing: [] });
      // The stop's own rows were among them: objects ended by the shutdown, published before `stopped`.
      const mine = got.slice(from);
      const stoppedAt = mine.findIndex((m) => m.topic === `${BASE}/status` && m.body.state === 'stopped');
      const shutdownEnds = mine.slice(0, stoppedAt).filter((m) => m.body.type === 'object_end' && (m.body.attributes as { reason?: string } | undefined)?.reason === 'shutdown');
      expect(shutdownEnds.length, `round ${round}: object_end "shutdown" before stopped`).toBeGreaterThan(0);
    }
  });
});
