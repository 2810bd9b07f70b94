// The whole agent as a real process: RTSP camera → ffmpeg → ONNX detector → analytics → SQLite outbox → mosquitto.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireEventSchema } from '../../../contract/event.js';
import { HealthMessage } from '../../../contract/health.js';
import { BirthPayload } from '../../../contract/birth.js';
import { AGENT_NODE_FLAGS, AGENT_RUNTIME_ENV } from '../../../core/runtime-env.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { freePort } from '../../../testkit/ports.js';
import { ffmpegProcesses, onProcessExit, waitFor } from '../../../testkit/processes.js';
import { RtspServer } from '../../../testkit/rtsp.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const BIN = 'dist/cli/main.js';
const BASE = 'roadside/e2e-site/e2e-box';

interface Received {
  topic: string;
  body: Record<string, unknown>;
}

let broker: Mosquitto;
let camera: RtspServer;
let dir: string;

async function writeConfig(name: string, extra: { drain_rate_per_s?: number } = {}): Promise<string> {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      device: { id: 'e2e-box', site: 'e2e-site', data_dir: join(dir, `${name}-data`) },
      cameras: [
        {
          id: 'cam1',
          url: camera.url,
          frame: { width: 768, height: 576 },
          detection_fps: 5,
          motion: { enabled: false },
          lines: [{ id: 'mid', a: [0, 330], b: [768, 330] }],
          zones: [{ id: 'plaza', polygon: [[60, 200], [700, 200], [740, 560], [20, 560]], classes: ['person'] }],
        },
      ],
      analytics: { update_interval_s: 1 },
      mqtt: { url: broker.url, protocol: 5, inflight_window: 16, drain_rate_per_s: extra.drain_rate_per_s ?? 0, backoff: { initial_ms: 200, max_ms: 1000 } },
      health: { interval_s: 2 },
      status: { port: await freePort() },
      logging: { level: 'info' },
    }),
  );
  return file;
}

/** The agent as a box starts it: its V8 flags and process environment (core/runtime-env.ts). */
function startAgent(config: string): ChildProcess {
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...AGENT_RUNTIME_ENV } });
  child.stdout.resume();
  child.stderr.resume();
  onProcessExit(() => child.kill('SIGKILL'));
  return child;
}

async function subscribe(): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await connectMqtt(broker.url, { protocolVersion: 5, clean: true });
  const got: Received[] = [];
  client.on('message', (topic, payload) => {
    try {
      got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> });
    } catch {
      got.push({ topic, body: { unparsable: payload.toString() } });
    }
  });
  await client.subscribeAsync(`${BASE}/#`, { qos: 1 });
  return { client, got };
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

beforeAll(async () => {
  dir = makeTempDir('agent-e2e');
  broker = await Mosquitto.start();
  camera = await RtspServer.start({ clip: DEMO_CLIP });
});

afterAll(async () => {
  await camera?.stop();
  await broker?.stop();
});

describe('agent end to end', () => {
  it('publishes birth, online, camera status, valid events from real detections and health; SIGTERM → stopped', async () => {
    const { client, got } = await subscribe();
    const agent = startAgent(await writeConfig('live.yaml'));
    try {
      await waitFor(() => got.some((m) => m.topic === `${BASE}/events/cam1` && m.body.type === 'line_crossing') && got.some((m) => m.topic === `${BASE}/health`), {
        timeout_ms: 60_000,
        message: 'line crossings and health from the agent',
      });
      const birth = got.find((m) => m.topic === `${BASE}/birth`);
      expect(BirthPayload.safeParse(birth?.body).success).toBe(true);
      expect(birth?.body).toMatchObject({ cameras: [{ id: 'cam1', lines: ['mid'], zones: ['plaza'] }] });
      expect(got.find((m) => m.topic === `${BASE}/status`)?.body).toMatchObject({ state: 'online' });
      expect(got.find((m) => m.topic === `${BASE}/cameras/cam1/status`)?.body).toMatchObject({ camera: 'cam1', state: 'online' });

      const events = got.filter((m) => m.topic === `${BASE}/events/cam1`);
      for (const e of events) expect(WireEventSchema.safeParse(e.body).error).toBeUndefined();
      // Real detections of the people in the clip, tracked and counted.
      expect(events.some((e) => e.body.type === 'object_new' && (e.body.object as { class: string }).class === 'person')).toBe(true);
      const health = got.find((m) => m.topic === `${BASE}/health`)!;
      expect(HealthMessage.safeParse(health.body).error).toBeUndefined();
    } finally {
      agent.kill('SIGTERM');
    }
    expect(await exited(agent)).toBe(0);
    await waitFor(() => got.some((m) => m.topic === `${BASE}/status` && m.body.state === 'stopped'), { timeout_ms: 5000 });
    // Healthy disk: the status carries no condition. A clean stop leaves no gap: every seq up to the last was sent.
    expect(got.filter((m) => m.topic === `${BASE}/status`).every((m) => !('conditions' in m.body))).toBe(true);
    const seqs = new Set(got.map((m) => m.body.seq).filter((s): s is number => typeof s === 'number'));
    const last = Math.max(...seqs);
    expect(Array.from({ length: last }, (_, i) => i + 1).filter((s) => !seqs.has(s))).toEqual([]);
    const stoppedAt = got.findIndex((m) => m.topic === `${BASE}/status` && m.body.state === 'stopped');
    expect(got.slice(stoppedAt + 1).filter((m) => typeof m.body.seq === 'number')).toEqual([]); // `stopped` comes last
    await endMqtt(client);
  });

  it('answers snapshot, signal and reload-config; a rejected config keeps the agent running', async () => {
    const { client, got } = await subscribe();
    const config = await writeConfig('commands.yaml');
    const agent = startAgent(config);
    const responses = new Map<string, Record<string, unknown>>();
    await client.subscribeAsync('roadside/_center/e2e/reply', { qos: 1 });
    client.on('message', (topic, payload, packet) => {
      const corr = packet.properties?.correlationData?.toString();
      if (topic === 'roadside/_center/e2e/reply' && corr) responses.set(corr, JSON.parse(payload.toString()) as Record<string, unknown>);
    });
    const ask = async (name: string, body: object, corr: string) => {
      await client.publishAsync(`${BASE}/cmd/${name}`, JSON.stringify(body), { qos: 1, properties: { responseTopic: 'roadside/_center/e2e/reply', correlationData: Buffer.from(corr) } });
      return waitFor(() => responses.get(corr), { timeout_ms: 20_000, message: `response to ${name}` });
    };
    try {
      await waitFor(() => got.some((m) => m.topic === `${BASE}/status` && m.body.state === 'online'), { timeout_ms: 30_000 });
      const snap = await ask('snapshot', { camera: 'cam1' }, 'c-snap');
      expect(snap.status).toBe('ok');
      const data = snap.data as { width: number; height: number; sha256: string; jpeg_base64: string };
      const jpeg = Buffer.from(data.jpeg_base64, 'base64');
      expect([data.width, data.height]).toEqual([768, 576]);
      expect(jpeg.subarray(0, 2).toString('hex')).toBe('ffd8');
      expect(createHash('sha256').update(jpeg).digest('hex')).toBe(data.sha256);

      expect(await ask('signal', { signal: 'nope', state: 'red' }, 'c-sig')).toMatchObject({ status: 'error', error: { code: 'UNKNOWN_SIGNAL' } });
      expect(await ask('reload-config', {}, 'c-same')).toMatchObject({ status: 'ok', data: { changed: false } });
      writeFileSync(config, readFileSync(config, 'utf8').replace('detection_fps: 5', 'detection_fps: fast'));
      const refused = await ask('reload-config', {}, 'c-bad');
      expect(refused).toMatchObject({ status: 'error', error: { code: 'CONFIG_INVALID' } });
      expect((refused.error as { message: string }).message).toContain('cameras.0.detection_fps: expected number');
      expect(await ask('ping', {}, 'c-ping')).toMatchObject({ status: 'ok' });
      expect(agent.exitCode).toBeNull();
    } finally {
      agent.kill('SIGTERM');
      await exited(agent);
      await endMqtt(client);
    }
  });

  it('SIGKILL mid-drain: after a restart every unacknowledged event is delivered, no ffmpeg left behind', async () => {
    await broker.stop();
    const config = await writeConfig('kill.yaml', { drain_rate_per_s: 15 });
    const first = startAgent(config);
    // The broker is away: events pile up in the outbox.
    await new Promise((r) => setTimeout(r, 12_000));
    await broker.start();
    const { client, got } = await subscribe();
    const seqs = () => new Set(got.filter((m) => typeof m.body.seq === 'number').map((m) => m.body.seq as number));
    await waitFor(() => seqs().size >= 5, { timeout_ms: 30_000, message: 'backlog starts draining' });
    const ffmpegPid = ffmpegProcesses(`:${camera.port}/`)[0]?.pid;
    expect(ffmpegPid).toBeDefined();
    first.kill('SIGKILL');
    await exited(first);
    // The camera's ffmpeg dies with its parent (PR_SET_PDEATHSIG), never orphaned.
    await waitFor(() => !ffmpegProcesses().some((p) => p.pid === ffmpegPid), { timeout_ms: 5000, message: 'orphan ffmpeg gone' });

    const drainedBeforeKill = seqs().size;
    const second = startAgent(config);
    try {
      await waitFor(
        () => {
          const s = seqs();
          const max = Math.max(...s);
          return s.size > drainedBeforeKill + 20 && max === s.size;
        },
        { timeout_ms: 90_000, interval_ms: 500, message: 'every seq from 1 to the highest received' },
      );
      // At-least-once: a message sent twice carries the same id both times.
      const idBySeq = new Map<number, string>();
      for (const m of got.filter((x) => typeof x.body.seq === 'number')) {
        const prev = idBySeq.get(m.body.seq as number);
        if (prev) expect(m.body.id).toBe(prev);
        idBySeq.set(m.body.seq as number, m.body.id as string);
      }
      expect(got.some((m) => m.body.replayed === true)).toBe(true);
    } finally {
      second.kill('SIGTERM');
      await exited(second);
      await endMqtt(client);
    }
  });
});
