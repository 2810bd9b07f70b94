// Remote config changes against a real agent process and mosquitto: dry runs answer what `config check` says,
// a line change applies in place (same process, same session, no seq gap), a camera that cannot deliver is
// rolled back after its probation (also when the agent is killed during it), stale and concurrent pushes are
// refused. The center side is center/config-cmd.ts (configPush / configGet).
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configGet, configPush } from '../../../center/config-cmd.js';
import { BirthPayload } from '../../../contract/birth.js';
import type { CliIo } from '../../../core/cli-io.js';
import { DEMO_CLIP, REPO_ROOT } from '../../../testkit/clips.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { freePort } from '../../../testkit/ports.js';
import { onProcessExit, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const BIN = 'dist/cli/main.js';
const SITE = 'cp-site';
const DEVICE = 'cp-box';
const BASE = `roadside/${SITE}/${DEVICE}`;
const REPLY = 'roadside/_center/cp-test/reply';
const INVALID = join(REPO_ROOT, 'tests/fixtures/configs/invalid');
const PROBATION_S = 4;

interface Msg {
  topic: string;
  body: Record<string, unknown>;
  at: number;
}
type Response = { status: 'ok'; data: Record<string, unknown> } | { status: 'error'; error: { code: string; message: string } };
type Birth = BirthPayload;

let broker: Mosquitto;
let dir: string;
let configFile: string;
let client: MqttClient;
let agent: ChildProcess;
let agentErr = '';
const got: Msg[] = [];
const responses = new Map<string, Response>();
let corr = 0;

function configText(cam: { url?: string; line?: { id: string; y: number } } = {}): string {
  const line = cam.line ?? { id: 'mid', y: 330 };
  return `# roadside-agent test config (comments survive a patch)\n${stringify({
    device: { id: DEVICE, site: SITE, data_dir: './data', config_probation_s: PROBATION_S },
    cameras: [
      {
        id: 'cam1',
        url: cam.url ?? DEMO_CLIP,
        frame: { width: 768, height: 576 },
        detection_fps: 5,
        motion: { enabled: false },
        lines: [{ id: line.id, a: [0, line.y], b: [768, line.y] }],
      },
    ],
    mqtt: { url: broker.url, protocol: 5, inflight_window: 16, backoff: { initial_ms: 200, max_ms: 1000 } },
    health: { interval_s: 2 },
    status: { enabled: false },
    logging: { level: 'info' },
  })}`;
}

function startAgent(): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => (agentErr += d.toString()));
  onProcessExit(() => child.kill('SIGKILL'));
  return child;
}

const exited = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));

async function ask(name: string, body: object): Promise<Response> {
  const id = `c${++corr}`;
  await client.publishAsync(`${BASE}/cmd/${name}`, JSON.stringify(body), { qos: 1, properties: { responseTopic: REPLY, correlationData: Buffer.from(id) } });
  return waitFor(() => responses.get(id), { timeout_ms: 20_000, message: `answer to ${name}` });
}

/** The data of an ok answer (a failed assertion otherwise). */
function ok<T>(r: Response): T {
  if (r.status !== 'ok') throw new Error(`expected an ok answer, got ${JSON.stringify(r)}`);
  return r.data as T;
}

const births = (since = 0): Birth[] => got.filter((m) => m.topic === `${BASE}/birth` && m.at >= since).map((m) => m.body as unknown as Birth);
const lastBirth = (): Birth | undefined => births().at(-1);
const cameraState = (): string | undefined => got.filter((m) => m.topic === `${BASE}/cameras/cam1/status`).at(-1)?.body.state as string | undefined;
const seqs = (): number[] => got.map((m) => m.body.seq).filter((s): s is number => typeof s === 'number');

function capture(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, interactive: false, out: () => out, err: () => err };
}

const center = { url: '', prefix: 'roadside', device: DEVICE, timeout_s: 20 };

async function runningHash(): Promise<string> {
  const r = await ask('config-get', {});
  if (r.status !== 'ok') throw new Error(`config-get: ${JSON.stringify(r)}`);
  return r.data.hash as string;
}

async function waitOnline(since: number): Promise<void> {
  await waitFor(() => got.some((m) => m.topic === `${BASE}/status` && m.body.state === 'online' && m.at >= since) && cameraState() === 'online', {
    timeout_ms: 30_000,
    message: 'agent online with its camera',
  });
}

beforeAll(async () => {
  dir = makeTempDir('config-push');
  broker = await Mosquitto.start();
  center.url = broker.url;
  configFile = join(dir, 'agent.yaml');
  writeFileSync(configFile, configText());
  client = await connectMqtt(broker.url, { protocolVersion: 5, clean: true });
  client.on('message', (topic, payload, packet) => {
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    const id = packet.properties?.correlationData?.toString();
    if (topic === REPLY && id) responses.set(id, body as unknown as Response);
    else got.push({ topic, body, at: Date.now() });
  });
  await client.subscribeAsync([`${BASE}/#`, REPLY], { qos: 1 });
  const t0 = Date.now();
  agent = startAgent();
  await waitOnline(t0);
}, 60_000);

afterAll(async () => {
  agent?.kill('SIGTERM');
  if (agent) await exited(agent);
  await endMqtt(client);
  await broker?.stop();
});

describe('config push (real agent)', () => {
  it('dry runs answer every problem as config check does; nothing changes on disk or in the agent', async () => {
    const before = readFileSync(configFile);
    const hash = await runningHash();
    for (const name of ['09-line-outside-frame.yaml', '22-stop-line-unknown-signal.yaml', '27-several-problems.yaml', '34-zone-bow-tie.yaml', '26-yaml-syntax.yaml']) {
      // Checked where the agent's config lives: relative paths resolve there, for config check and the box alike.
      const copy = join(dir, name);
      copyFileSync(join(INVALID, name), copy);
      const check = spawn(process.execPath, [BIN, 'config', 'check', copy], { stdio: ['ignore', 'pipe', 'pipe'] });
      let checkErr = '';
      check.stderr.on('data', (d: Buffer) => (checkErr += d.toString()));
      await exited(check);
      expect(check.exitCode).toBe(78);
      const io = capture();
      expect(await configPush({ ...center, file: copy, dry_run: true }, io)).toBe(78);
      const problemLines = (text: string) => text.split('\n').filter((l) => l.startsWith(`${copy}`) && !l.includes('problem(s) found'));
      expect(problemLines(io.err()).length).toBeGreaterThan(0);
      expect(problemLines(io.err())).toEqual(problemLines(checkErr));
    }
    const raw = await ask('config-apply', { yaml: readFileSync(join(INVALID, '27-several-problems.yaml'), 'utf8'), base_hash: hash, dry_run: true });
    expect(raw).toMatchObject({ status: 'ok', data: { outcome: 'invalid', base_hash: hash } });
    const problems = ok<{ problems: { path: string; message: string }[] }>(raw).problems;
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['device.site', 'cameras.0.frame.width', 'mqtt.protocol', 'logging.level']));
    // A real apply of an invalid config is refused the same way, with nothing written.
    const refused = await ask('config-apply', { yaml: readFileSync(join(INVALID, '09-line-outside-frame.yaml'), 'utf8'), base_hash: hash });
    expect(refused).toMatchObject({ status: 'error', error: { code: 'CONFIG_INVALID' } });
    expect(readFileSync(configFile).equals(before)).toBe(true);
    expect(await runningHash()).toBe(hash);
    expect(agent.exitCode).toBeNull();
  });

  it('refuses a stale base and pushed secrets; of two concurrent pushes one wins, the other is refused', async () => {
    const hash = await runningHash();
    const stale = await ask('config-apply', { patch: { device: { location: { lat: 1, lon: 1 } } }, base_hash: '0123456789abcdef' });
    expect(stale).toMatchObject({ status: 'error', error: { code: 'CONFIG_CONFLICT' } });
    expect(stale.status === 'error' && stale.error.message).toContain(`current hash ${hash}`);
    // What only a restart applies is said by a dry run, and nothing restarts.
    const dry = await ask('config-apply', { patch: { health: { interval_s: 3 } }, base_hash: hash, dry_run: true });
    expect(dry).toMatchObject({ status: 'ok', data: { outcome: 'valid', restart: 'health.interval_s', base_hash: hash } });
    expect(await runningHash()).toBe(hash);
    const secret = await ask('config-apply', { patch: { mqtt: { password: 'hunter2' } }, base_hash: hash });
    expect(secret).toMatchObject({ status: 'error', error: { code: 'SECRET_IN_CONFIG' } });
    expect(JSON.stringify(secret)).not.toContain('hunter2');

    const since = Date.now();
    const [a, b] = await Promise.all([
      ask('config-apply', { patch: { device: { location: { lat: 45.5, lon: -73.5 } } }, base_hash: hash }),
      ask('config-apply', { patch: { device: { location: { lat: 46.8, lon: -71.2 } } }, base_hash: hash }),
    ]);
    const outcomes = [a, b].map((r) => (r.status === 'ok' ? r.data.outcome : r.error.code)).sort();
    expect(outcomes).toEqual(['CONFIG_CONFLICT', 'applied']);
    const winner = { data: ok<{ hash: string; changes: string[]; restart: string | null }>(a.status === 'ok' ? a : b) };
    expect(winner.data).toMatchObject({ changes: ['device.location'], restart: null });
    expect(await runningHash()).toBe(winner.data.hash);
    // The patch kept the file's comment; the probation passes and the birth says so.
    expect(readFileSync(configFile, 'utf8')).toContain('# roadside-agent test config');
    const confirmed = await waitFor(() => births(since).find((x) => x.config_hash === winner.data.hash && x.config && !x.config.probation_until), {
      timeout_ms: 15_000,
      message: 'birth of the confirmed config',
    });
    expect(confirmed.location).toBeDefined();
    expect(confirmed.config?.last_rollback).toBeNull();
  });

  it('applies a line change in place: same process and session, events follow the new line, no seq gap', async () => {
    const session = ok<{ session: number }>(await ask('ping', {})).session;
    const since = Date.now();
    const io = capture();
    const file = join(dir, 'low-line.yaml');
    writeFileSync(file, configText({ line: { id: 'low', y: 300 } }));
    const code = await configPush({ ...center, file }, io);
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(io.out()).toMatch(/applied in place/);
    expect(io.out()).toMatch(/cameras\.cam1: lines \(analytics restarted\)/);
    expect(io.out()).toMatch(/confirmed/);
    // From the first birth with the new line on, the old line counts nothing.
    const appliedAt = got.find((m) => m.topic === `${BASE}/birth` && m.at >= since && JSON.stringify(m.body.cameras).includes('"low"'))!.at;
    await waitFor(() => got.some((m) => m.topic === `${BASE}/events/cam1` && m.body.type === 'line_crossing' && (m.body.rule as { id: string }).id === 'low'), {
      timeout_ms: 40_000,
      message: 'a crossing of the new line',
    });
    const crossings = got.filter((m) => m.topic === `${BASE}/events/cam1` && m.body.type === 'line_crossing' && Date.parse(m.body.captured_at as string) > appliedAt);
    expect(crossings.every((m) => (m.body.rule as { id: string }).id === 'low')).toBe(true);
    expect(agent.exitCode).toBeNull();
    expect(ok<{ session: number }>(await ask('ping', {})).session).toBe(session);
    expect(lastBirth()?.cameras).toEqual([{ id: 'cam1', lines: ['low'], zones: [] }]);
    // Every seq from 1 to the highest arrived: nothing was lost while the camera's analytics were replaced.
    await waitFor(
      () => {
        const s = new Set(seqs());
        return s.size > 0 && Math.max(...s) === s.size;
      },
      { timeout_ms: 10_000, message: 'no seq gap' },
    );
    const get = capture();
    expect(await configGet(center, get)).toBe(0);
    expect(get.out()).toContain('id: low');
    expect(get.out()).toMatch(/previous good config: [0-9a-f]{16}/);
  });

  it('a camera pointed at a dead URL is applied, fails its probation and is rolled back: camera online again, the birth says why', async () => {
    const before = readFileSync(configFile);
    const hash = await runningHash();
    const file = join(dir, 'dead.yaml');
    writeFileSync(file, configText({ url: `rtsp://127.0.0.1:${await freePort()}/dead`, line: { id: 'low', y: 300 } }));
    const io = capture();
    expect(await configPush({ ...center, file }, io)).toBe(1);
    expect(io.out()).toMatch(/applied in place/);
    expect(io.err()).toMatch(new RegExp(`rolled back to ${hash}: probation failed: camera cam1 delivered no frame`));
    const birth = lastBirth()!;
    expect(birth.config_hash).toBe(hash);
    expect(birth.config?.last_rollback?.reason).toMatch(/camera cam1 delivered no frame/);
    expect(readFileSync(configFile).equals(before)).toBe(true);
    await waitFor(() => cameraState() === 'online', { timeout_ms: 20_000, message: 'camera back online' });
    expect(agent.exitCode).toBeNull();
  });

  it('a change only a restart applies is answered, then the agent restarts and the probation continues in the new process', async () => {
    const hash = await runningHash();
    const r = await ask('config-apply', { patch: { health: { interval_s: 3 } }, base_hash: hash });
    expect(r).toMatchObject({ status: 'ok', data: { outcome: 'applied', restart: 'health.interval_s', probation_until: null } });
    const next = ok<{ hash: string }>(r).hash;
    await exited(agent); // systemd would start it again: so does the test
    expect(agent.exitCode).toBe(1);
    const t0 = Date.now();
    agent = startAgent();
    await waitOnline(t0);
    const first = births(t0)[0]!;
    expect(first).toMatchObject({ config_hash: next, last_reboot_reason: 'config_apply' });
    expect(first.config?.probation_until).toBeTruthy();
    await waitFor(() => births(t0).some((b) => b.config_hash === next && b.config && !b.config.probation_until), { timeout_ms: 15_000, message: 'probation passed after the restart' });
  });

  it('an agent killed during the probation rolls the change back at its next start', async () => {
    // A longer probation first (applied and confirmed under the current 4 s one), so the kill lands inside the next.
    let hash = await runningHash();
    const longer = await ask('config-apply', { patch: { device: { config_probation_s: 60 } }, base_hash: hash });
    expect(longer).toMatchObject({ status: 'ok', data: { outcome: 'applied' } });
    hash = ok<{ hash: string }>(longer).hash;
    await waitFor(() => births().some((b) => b.config_hash === hash && b.config && !b.config.probation_until), { timeout_ms: 15_000, message: 'longer probation confirmed' });
    const good = readFileSync(configFile);

    const pushed = await ask('config-apply', { patch: { cameras: [{ id: 'cam1', url: DEMO_CLIP, frame: { width: 768, height: 576 }, lines: [{ id: 'killed', a: [0, 280], b: [768, 280] }] }] }, base_hash: hash });
    expect(pushed).toMatchObject({ status: 'ok', data: { outcome: 'applied', restart: null } });
    const pushedHash = ok<{ hash: string }>(pushed).hash;
    expect(readFileSync(configFile).equals(good)).toBe(false);
    agent.kill('SIGKILL');
    await exited(agent);

    const t0 = Date.now();
    agentErr = '';
    agent = startAgent();
    await waitOnline(t0);
    expect(agentErr).toContain(`restored ${configFile}.prev`);
    expect(readFileSync(configFile).equals(good)).toBe(true);
    const birth = births(t0).at(-1)!;
    expect(birth.config_hash).toBe(hash);
    expect(birth.config?.last_rollback).toMatchObject({ from_hash: pushedHash });
    expect(birth.config?.last_rollback?.reason).toMatch(/stopped during the probation/);
    expect(birth.cameras).toEqual([{ id: 'cam1', lines: ['low'], zones: [] }]);
  });
});
