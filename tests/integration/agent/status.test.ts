import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, loadConfig, parseConfig } from '../../../config/loader.js';
import { CameraSchema, HealthSchema, StatusSchema, type CameraConfig } from '../../../config/schema/index.js';
import { HealthPayload } from '../../../contract/health.js';
import type { CameraFigures } from '../../../agent/health/figures.js';
import { RestartLog } from '../../../agent/health/restarts.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import type { HealthSources } from '../../../agent/health/sources.js';
import { silentLogger } from '../../../core/log.js';
import type { BackoffOptions } from '../../../core/time.js';
import { JpegSplitter, previewCommand } from '../../../agent/status/preview.js';
import { StatusServer } from '../../../agent/status/server.js';
import { REPO_ROOT } from '../../../testkit/clips.js';
import { freePort } from '../../../testkit/ports.js';
import { waitFor } from '../../../testkit/processes.js';
import { StaticFigures } from '../../../testkit/static-figures.js';

interface PromSample {
  value: string;
  labels?: Record<string, string>;
}
interface PromFamily {
  name: string;
  help: string;
  type: string;
  metrics: PromSample[];
}
// The package ships no type declarations.
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => PromFamily[];

const tmp = mkdtempSync(join(tmpdir(), 'status-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MB = 1024 * 1024;
const TOKEN = 'correct-horse-battery-staple-42';

const fakeSources = (): HealthSources => ({
  cpuLoad: () => Promise.resolve({ total_pct: 42.5, per_core_pct: [40, 45] }),
  temperature: () => Promise.resolve({ celsius: 58.2, source: 'thermal_zone0:cpu-thermal' }),
  memory: () => Promise.resolve({ total_mb: 3906.2, used_mb: 1234.5, available_mb: 2671.7, swap_used_mb: 12.5 }),
  uptime: () => Promise.resolve(7200),
  disk: (path) => Promise.resolve({ path, total_mb: 29_000.5, free_mb: 18_000.25 }),
  network: () => Promise.resolve({ interface: 'eth0', link_up: true, type: 'wired', ip4: '192.0.2.10', ip6: null, speed_mbps: 100 }),
  clock: () => Promise.resolve({ synced: true, offset_ms: -0.8, source: 'chronyc' }),
  soc: () => Promise.resolve(null),
});

const camFig = (id: string, over: Partial<CameraFigures> = {}): CameraFigures => ({
  id,
  status: 'online',
  camera_fps: 10,
  process_fps: 4.75,
  skipped_fps: 0.25,
  motion_skipped_fps: 5,
  reconnects_last_hour: 2,
  stalls_last_hour: 1,
  last_frame_age_s: 0.12,
  ...over,
});

const camConfig = (id: string, over: Partial<CameraConfig> = {}): CameraConfig =>
  CameraSchema.parse({ id, url: join(REPO_ROOT, 'tests', 'fixtures', 'clips', 'vtest-20s.mp4'), frame: { width: 768, height: 576 }, ...over });

interface Harness {
  server: StatusServer;
  figures: StaticFigures;
  sampler: HealthSampler;
  base: string;
  port: number;
}

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.server.stop()));
});

async function harness(status: Record<string, unknown> = {}, opts: { port?: number; bindBackoff?: BackoffOptions } = {}): Promise<Harness> {
  const figures = new StaticFigures({
    cameras: [camFig('cam1'), camFig('cam2', { camera_fps: 12.5, process_fps: 5 })],
    detector: { state: 'running', inference_ms_mean: 22.5, inference_ms_p95: 31.25, detection_fps: 9.75, restarts: 1, last_inference_age_s: 0.2 },
    outbox: { depth: 17, oldest_unsent_age_s: 4.5, evicted: 3 },
    uplink: { connected: true, state: 'connected', publish_rate_per_s: 2.5, session: 7 },
    events: [{ id: 'e1', type: 'line_crossing', camera: 'cam1', captured_at: '2026-11-26T10:00:00.000Z', line: 'mid', direction: 'in', object: { class_name: 'car', track_id: 7 } }],
    detections: { cam1: [{ box: [100, 120, 180, 300], class_name: 'person', score: 0.87, track_id: 7 }] },
    overlays: { cam1: { frame: { width: 768, height: 576 }, lines: [{ id: 'mid', a: [0, 330], b: [768, 330] }], zones: [] } },
    frames: { cam1: { data: new Uint8Array(64 * 48 * 3).fill(128), width: 64, height: 48 } },
  });
  const sampler = new HealthSampler({ config: HealthSchema.parse({}), dataDir: tmp, figures, log: silentLogger(), sources: fakeSources() });
  await sampler.refresh({ slow: true });
  const restarts = new RestartLog({ dataDir: join(tmp, 'restarts'), log: silentLogger(), bootId: () => 'boot' });
  const port = opts.port ?? (await freePort());
  const server = new StatusServer({
    config: StatusSchema.parse({ port, ...status }),
    cameras: [camConfig('cam1'), camConfig('cam2')],
    device: { id: 'box-1', site: 'site-1' },
    health: sampler,
    figures,
    restarts,
    log: silentLogger(),
    bindBackoff: opts.bindBackoff,
  });
  await server.start(new AbortController().signal);
  const h = { server, figures, sampler, port, base: `http://127.0.0.1:${port}` };
  harnesses.push(h);
  return h;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string; body: Buffer }> {
  const res = await fetch(url, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: body.toString('utf8'), body };
}

/** Raw request with an arbitrary Host header (fetch will not send a forged one). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function wsOpen(url: string, headers: Record<string, string> = {}): Promise<{ ok: true; ws: WebSocket } | { ok: false; status: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ok: true, ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ok: false, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ ok: false, status: 0 }));
  });
}

describe('/metrics', () => {
  it('is Prometheus text with the same figures as the health payload', async () => {
    const h = await harness();
    const res = await get(`${h.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain; version=0.0.4');
    const families = new Map(parsePrometheus(res.text).map((f) => [f.name, f]));
    const status = JSON.parse((await get(`${h.base}/api/status`)).text) as { health: HealthPayload };
    const p = HealthPayload.parse(status.health);

    const one = (name: string, labels: Record<string, string> = {}): number => {
      const fam = families.get(`roadside_${name}`);
      expect(fam, name).toBeDefined();
      const sample = fam!.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
      expect(sample, `${name} ${JSON.stringify(labels)}`).toBeDefined();
      return Number(sample!.value);
    };
    const s = p.system;
    expect(one('health_status', { status: p.status })).toBe(1);
    expect(one('cpu_load_ratio')).toBeCloseTo(s.cpu_load_pct! / 100, 6);
    expect(one('cpu_core_load_ratio', { core: '1' })).toBeCloseTo(s.cpu_core_load_pct[1]! / 100, 6);
    expect(one('soc_temperature_celsius', { source: 'thermal_zone0:cpu-thermal' })).toBe(s.soc_temp_c);
    expect(one('memory_used_bytes')).toBe(Math.round(s.memory_used_mb! * MB));
    expect(one('memory_total_bytes')).toBe(Math.round(s.memory_total_mb! * MB));
    expect(one('swap_used_bytes')).toBe(Math.round(s.swap_used_mb! * MB));
    expect(one('disk_free_bytes', { path: tmp })).toBe(Math.round(s.disk_free_mb! * MB));
    expect(one('disk_total_bytes', { path: tmp })).toBe(Math.round(s.disk_total_mb! * MB));
    expect(one('system_uptime_seconds')).toBe(s.uptime_s);
    expect(one('clock_synced', { source: 'chronyc' })).toBe(1);
    expect(one('clock_offset_seconds')).toBeCloseTo(s.clock.offset_ms! / 1000, 9);
    expect(one('network_link_up', { interface: 'eth0' })).toBe(1);
    for (const cam of p.cameras) {
      const l = { camera: cam.id };
      expect(one('camera_fps', l)).toBe(cam.camera_fps);
      expect(one('camera_process_fps', l)).toBe(cam.process_fps);
      expect(one('camera_skipped_fps', l)).toBe(cam.skipped_fps);
      expect(one('camera_motion_skipped_fps', l)).toBe(cam.motion_skipped_fps);
      expect(one('camera_reconnects_last_hour', l)).toBe(cam.reconnects_last_hour);
      expect(one('camera_stalls_last_hour', l)).toBe(cam.stalls_last_hour);
      expect(one('camera_last_frame_age_seconds', l)).toBe(cam.last_frame_age_s);
      expect(one('camera_state', { ...l, state: cam.status })).toBe(1);
    }
    expect(one('detector_inference_mean_seconds')).toBeCloseTo(p.detector!.inference_ms_mean! / 1000, 9);
    expect(one('detector_inference_p95_seconds')).toBeCloseTo(p.detector!.inference_ms_p95! / 1000, 9);
    expect(one('detector_fps')).toBe(p.detector!.detection_fps);
    expect(one('detector_restarts_total')).toBe(p.detector!.restarts);
    expect(families.get('roadside_detector_restarts_total')?.type).toBe('COUNTER');
    expect(one('outbox_depth_messages')).toBe(p.outbox!.depth);
    expect(one('outbox_oldest_unsent_age_seconds')).toBe(p.outbox!.oldest_unsent_age_s);
    expect(one('outbox_evicted_messages_total')).toBe(p.outbox!.evicted);
    expect(one('uplink_connected')).toBe(1);
    expect(one('uplink_session')).toBe(p.uplink!.session);
    expect(one('agent_restarts_total')).toBe(0);
    expect(one('agent_last_restart_info', { reason: 'first_start' })).toBe(1);
    expect(one('agent_rss_bytes')).toBeGreaterThan(10 * MB);
  });

  it('leaves unknown figures out instead of reporting 0', async () => {
    const h = await harness();
    h.figures.detectorFigures = { ...h.figures.detectorFigures, inference_ms_mean: null, inference_ms_p95: null };
    h.figures.cameraList = [camFig('cam1', { last_frame_age_s: null })];
    const names = new Set(parsePrometheus((await get(`${h.base}/metrics`)).text).map((f) => f.name));
    expect(names.has('roadside_detector_inference_mean_seconds')).toBe(false);
    expect(names.has('roadside_camera_last_frame_age_seconds')).toBe(false);
    expect(names.has('roadside_camera_fps')).toBe(true);
  });
});

describe('/healthz', () => {
  it('is 200 ok, then 503 with the reason as soon as the provider reports a stalled camera', async () => {
    const h = await harness();
    let res = await get(`${h.base}/healthz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ status: 'ok' });

    h.figures.cameraList = [camFig('cam1', { status: 'stalled', reason: 'no frames for 15 s', last_frame_age_s: 15 }), camFig('cam2')];
    res = await get(`${h.base}/healthz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toEqual({ status: 'error', reasons: [{ code: 'camera_stalled', camera: 'cam1', message: 'camera cam1 stalled: no frames for 15 s' }] });

    h.figures.cameraList = [camFig('cam1'), camFig('cam2', { status: 'offline', reason: 'rtsp 401 Unauthorized' })];
    h.figures.detectorFigures = { ...h.figures.detectorFigures, state: 'stuck' };
    res = await get(`${h.base}/healthz`);
    expect(res.status).toBe(503);
    expect((JSON.parse(res.text) as { reasons: { code: string }[] }).reasons.map((r) => r.code)).toEqual(['camera_offline', 'detector_stuck']);

    h.figures.cameraList = [camFig('cam1'), camFig('cam2')];
    h.figures.detectorFigures = { ...h.figures.detectorFigures, state: 'running' };
    h.figures.uplinkFigures = { ...h.figures.uplinkFigures, connected: false, state: 'backoff' };
    res = await get(`${h.base}/healthz`);
    expect(res.status).toBe(200); // a warning (uplink down: the outbox buffers) is not a failure
  });
});

describe('/api/status and frames', () => {
  it('serves health, cameras with overlay and detections, recent events and the last restart', async () => {
    const h = await harness();
    const doc = JSON.parse((await get(`${h.base}/api/status`)).text) as Record<string, unknown> & { cameras: Record<string, unknown>[]; events: unknown[] };
    expect(HealthPayload.safeParse(doc.health).success).toBe(true);
    expect(doc.device).toEqual({ id: 'box-1', site: 'site-1' });
    expect(doc.restart).toMatchObject({ reason: 'first_start', count: 0 });
    expect(doc.cameras.map((c) => c.id)).toEqual(['cam1', 'cam2']);
    expect(doc.cameras[0]).toMatchObject({
      figures: { id: 'cam1', status: 'online' },
      overlay: { frame: { width: 768, height: 576 }, lines: [{ id: 'mid' }] },
      detections: [{ class_name: 'person', track_id: 7 }],
      preview: { live: 'api/cameras/cam1/live', running: false, viewers: 0 },
      mpeg1: { running: false, viewers: 0, last_error: null },
    });
    expect(doc.events).toHaveLength(1);
  });

  it('encodes the provider frame as JPEG when no preview runs; 503 without a frame; 404 for an unknown camera', async () => {
    const h = await harness();
    const jpg = await get(`${h.base}/api/cameras/cam1/frame.jpg`);
    expect(jpg.status).toBe(200);
    expect(jpg.type).toBe('image/jpeg');
    expect([...jpg.body.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect((await get(`${h.base}/api/cameras/cam2/frame.jpg`)).status).toBe(503);
    expect((await get(`${h.base}/api/cameras/nope/frame.jpg`)).status).toBe(404);
    expect((await get(`${h.base}/nothing`)).status).toBe(404);
    expect((await fetch(`${h.base}/api/status`, { method: 'POST' })).status).toBe(405);
  });

  it('serves the page and its assets with a strict content security policy', async () => {
    const h = await harness();
    const res = await fetch(`${h.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('static/app.js');
    expect((await get(`${h.base}/static/app.js`)).type).toContain('text/javascript');
    expect((await get(`${h.base}/static/style.css`)).type).toContain('text/css');
    for (const module of ['api.js', 'dom.js', 'events.js', 'live.js', 'overlay.js']) expect((await get(`${h.base}/static/${module}`)).type, module).toContain('text/javascript');
    // jsmpeg, from its npm package (dist/ has the build's copy), under the same policy: no eval, no WebAssembly,
    // no inline style but the one jsmpeg's module adds, allowed by its hash
    const player = await fetch(`${h.base}/static/jsmpeg-player.esm.js`);
    expect(player.headers.get('content-type')).toContain('text/javascript');
    expect(await player.text()).toContain('MPEG1');
    const csp = player.headers.get('content-security-policy')!;
    expect(csp).toMatch(/style-src 'self' 'sha256-[A-Za-z0-9+/]+=' 'sha256-[A-Za-z0-9+/]+='/);
    expect(csp).not.toMatch(/unsafe|wasm/);
    expect((await get(`${h.base}/static/..%2Fserver.ts`)).status).toBe(404);
    expect((await get(`${h.base}/static/../server.ts`)).status).toBe(404);
  });
});

describe('access', () => {
  it('the config check refuses a non-loopback bind without a token (parseConfig and loadConfig)', () => {
    const yaml = (status: string) =>
      [
        'device: { id: box-1, site: site-1 }',
        'cameras:',
        `  - { id: cam1, url: ${join(REPO_ROOT, 'tests/fixtures/clips/vtest-20s.mp4')}, frame: { width: 768, height: 576 } }`,
        'mqtt: { url: "mqtt://127.0.0.1:1883" }',
        status,
      ].join('\n');
    const problems = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
      throw new Error('expected a ConfigError');
    };
    const p = problems(() => parseConfig(yaml('status: { bind: 0.0.0.0 }'), 'test.yaml', {}));
    expect(p).toEqual([expect.objectContaining({ path: 'status.bind', line: 5, message: expect.stringContaining('set status.token') })]);
    expect(problems(() => parseConfig(yaml('status: { bind: 192.0.2.10 }'), 'test.yaml', {}))[0]?.path).toBe('status.bind');
    // with a token (file or environment) it is accepted
    expect(parseConfig(yaml(`status: { bind: 0.0.0.0, token: ${TOKEN} }`), 'test.yaml', {}).config.status.token).toBe(TOKEN);
    expect(parseConfig(yaml('status: { bind: 0.0.0.0 }'), 'test.yaml', { ROADSIDE_STATUS_TOKEN: TOKEN }).config.status.bind).toBe('0.0.0.0');
    // loopback needs none
    expect(parseConfig(yaml('status: { bind: 127.0.0.1 }'), 'test.yaml', {}).config.status.token).toBeUndefined();
    const fixture = join(REPO_ROOT, 'tests/fixtures/configs/invalid/12-status-remote-no-token.yaml');
    expect(problems(() => loadConfig(fixture, {})).map((x) => x.path)).toContain('status.bind');
  });

  it('with a token configured, every data request without it (or with a wrong one) gets 401', async () => {
    const h = await harness({ token: TOKEN });
    for (const path of ['/healthz', '/metrics', '/api/status', '/api/cameras/cam1/frame.jpg']) {
      const none = await get(`${h.base}${path}`);
      expect(none.status, path).toBe(401);
      expect(JSON.parse(none.text)).toMatchObject({ status: 'error' });
      expect((await get(`${h.base}${path}`, { Authorization: 'Bearer wrong-token-but-long-enough' })).status, path).toBe(401);
      expect((await get(`${h.base}${path}`, { Authorization: `Basic ${TOKEN}` })).status, path).toBe(401);
      expect((await get(`${h.base}${path}?token=${TOKEN}`)).status, `${path} ?token= is for the websocket only`).toBe(401);
      expect((await get(`${h.base}${path}`, { Authorization: `Bearer ${TOKEN}` })).status, path).toBe(200);
    }
    expect((await fetch(`${h.base}/metrics`)).headers.get('www-authenticate')).toContain('Bearer');
    // the static page shell carries no data: served without the token, it asks for one
    expect((await get(`${h.base}/`)).status).toBe(200);

    const ws = `ws://127.0.0.1:${h.port}/api/cameras/cam1/live`;
    expect(await wsOpen(ws)).toEqual({ ok: false, status: 401 });
    expect(await wsOpen(`${ws}?token=nope-nope-nope-nope`)).toEqual({ ok: false, status: 401 });
    const ok = await wsOpen(`${ws}?token=${TOKEN}`);
    expect(ok.ok).toBe(true);
    if (ok.ok) ok.ws.close();
    const hdr = await wsOpen(ws, { Authorization: `Bearer ${TOKEN}` });
    expect(hdr.ok).toBe(true);
    if (hdr.ok) hdr.ws.close();
  });

  it('without a token, refuses foreign Host names (DNS rebinding) and cross-site websockets', async () => {
    const h = await harness();
    expect(await rawGet(h.port, '/api/status', { Host: `127.0.0.1:${h.port}` })).toBe(200);
    expect(await rawGet(h.port, '/api/status', { Host: `localhost:${h.port}` })).toBe(200);
    expect(await rawGet(h.port, '/api/status', { Host: `evil.example:${h.port}` })).toBe(403);
    const ws = `ws://127.0.0.1:${h.port}/api/cameras/cam1/live`;
    expect(await wsOpen(ws, { Origin: 'http://evil.example' })).toEqual({ ok: false, status: 403 });
    expect(await wsOpen(`ws://127.0.0.1:${h.port}/api/cameras/nope/live`)).toEqual({ ok: false, status: 404 });
    const same = await wsOpen(ws, { Origin: `http://127.0.0.1:${h.port}` });
    expect(same.ok).toBe(true);
    if (same.ok) same.ws.close();
  });
});

describe('preview plumbing', () => {
  it('builds an ffmpeg JPEG command that keeps RTSP credentials off argv', () => {
    const cam = camConfig('cam9', { url: 'rtsp://192.0.2.50:554/stream1', username: 'admin', password: 's3cr3t!' });
    const cmd = previewCommand(cam, { fps: 5, maxWidth: 640 });
    expect(cmd.args.join(' ')).not.toContain('s3cr3t');
    expect(cmd.script).toContain('s3cr3t');
    expect(cmd.args).toEqual(expect.arrayContaining(['-c:v', 'mjpeg', '-f', 'image2pipe', 'pipe:1', 'pipe:3']));
    expect(cmd.args).toContain('fps=5,scale=w=min(640\\,iw):h=-2');
    const file = previewCommand(camConfig('cam1'), { fps: 2, maxWidth: 480 });
    expect(file.args.slice(0, 12)).toEqual(expect.arrayContaining(['-re', '-stream_loop', '-1']));
    expect(file.script).toBeUndefined();
  });

  it('splits concatenated JPEGs across arbitrary chunk boundaries', () => {
    const jpeg = (n: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(n, 0x11), Buffer.from([0xff, 0x00, 0x22, 0xff, 0xd9])]);
    const stream = Buffer.concat([Buffer.from([0x00, 0x01]), jpeg(10), jpeg(3000), jpeg(1)]);
    for (const size of [1, 2, 7, 1000, stream.length]) {
      const sp = new JpegSplitter();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...sp.push(stream.subarray(i, i + size)));
      expect(out.map((b) => b.length)).toEqual([jpeg(10).length, jpeg(3000).length, jpeg(1).length]);
    }
  });
});

interface RawAnswer {
  status?: number;
  retryAfter?: string;
  body?: string;
  error?: string;
}

/** One request; never rejects: a reset or refusal comes back as `error`. `agent: false` = its own connection. */
function answer(port: number, path: string, agent: Agent | false = false): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ error: String(err) }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

describe('under load', () => {
  it('150 concurrent requests each get an HTTP answer (200, or 503 with Retry-After), never a reset', async () => {
    const h = await harness();
    // keep-alive clients (as browsers and fetch are): every connection stays open, so 150 are open at once
    const clients = new Agent({ keepAlive: true });
    const answers = await Promise.all(Array.from({ length: 150 }, () => answer(h.port, '/api/status', clients)));
    clients.destroy();
    expect(answers.filter((a) => a.error !== undefined)).toEqual([]);
    expect(answers.every((a) => a.status === 200 || a.status === 503)).toBe(true);
    const busy = answers.filter((a) => a.status === 503);
    for (const a of busy) {
      expect(a.retryAfter).toBe('2');
      expect(JSON.parse(a.body!)).toEqual({ status: 'error', error: 'busy, retry in 2 s' });
    }
    // the 64 connections within the limit are served in full; the rest were told to come back
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(64);
    expect(busy.length).toBeGreaterThan(0);
    await waitFor(async () => (await answer(h.port, '/healthz')).status === 200, { timeout_ms: 5000, message: 'served again' });
  });

  it('connections beyond the limit get a fast 503 with Retry-After; served again once connections close', async () => {
    const h = await harness();
    // 64 idle keep-alive connections hold every slot
    const holder = new Agent({ keepAlive: true, maxSockets: 64 });
    const held = await Promise.all(Array.from({ length: 64 }, () => answer(h.port, '/healthz', holder)));
    expect(held.map((a) => a.status)).toEqual(Array(64).fill(200));

    const t0 = performance.now();
    const excess = await Promise.all(Array.from({ length: 20 }, () => answer(h.port, '/api/status')));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(excess.map((a) => [a.status, a.retryAfter])).toEqual(Array(20).fill([503, '2']));
    // a websocket beyond the limit is refused the same way
    expect(await wsOpen(`ws://127.0.0.1:${h.port}/api/cameras/cam1/live`)).toEqual({ ok: false, status: 503 });

    holder.destroy();
    await waitFor(async () => (await answer(h.port, '/api/status')).status === 200, { timeout_ms: 5000, message: 'served again' });
  });
});

/** A plain TCP listener holding a port, as another program would. */
function occupy(port: number): Promise<TcpServer> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(srv));
  });
}

describe('port taken', () => {
  it('start() resolves, health reports the failed bind; it binds and serves once the port frees', async () => {
    const port = await freePort();
    const blocker = await occupy(port);
    let released = false;
    try {
      const h = await harness({}, { port, bindBackoff: { initial_ms: 100, max_ms: 400, jitter: 0 } });
      expect(h.server.address()).toBeUndefined();
      expect(h.server.bindState()).toMatchObject({ state: 'retrying', address: `127.0.0.1:${port}`, last_error: 'EADDRINUSE' });
      // still taken after a few retries: reported, not fatal
      await waitFor(() => (h.server.bindState()?.failures ?? 0) >= 3, { timeout_ms: 5000, message: 'retries' });
      // the sampled payload (what the uplink sends) carries it, and so does the birth summary
      const p = HealthPayload.parse(await h.sampler.refresh());
      expect(p.status).toBe('warn');
      expect(p.reasons).toContainEqual({
        code: 'status_server_unbound',
        severity: 'warn',
        message: expect.stringContaining(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`),
      });
      expect(h.sampler.summary().reasons).toContain('status_server_unbound');

      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      released = true;
      const t0 = performance.now();
      await waitFor(() => h.server.bindState()?.state === 'listening', { timeout_ms: 3000, message: 'bound after the port freed' });
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(h.server.address()?.port).toBe(port);
      expect((await get(`${h.base}/healthz`)).status).toBe(200);
      expect(h.sampler.current().reasons.map((r) => r.code)).not.toContain('status_server_unbound');
      expect(h.server.bindState()).toEqual({ state: 'listening', address: `127.0.0.1:${port}`, failures: expect.any(Number) });

      await h.server.stop();
      expect(h.server.bindState()?.state).toBe('stopped');
    } finally {
      if (!released) blocker.close();
    }
  });

  it('stop() while retrying ends the retries and leaves the port alone', async () => {
    const port = await freePort();
    const blocker = await occupy(port);
    const h = await harness({}, { port, bindBackoff: { initial_ms: 50, max_ms: 50, jitter: 0 } });
    expect(h.server.bindState()?.state).toBe('retrying');
    await h.server.stop();
    const failures = h.server.bindState()?.failures;
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.server.bindState()).toMatchObject({ state: 'stopped', failures });
    expect(h.server.address()).toBeUndefined();
    expect(h.sampler.current().reasons.map((r) => r.code)).not.toContain('status_server_unbound');
    // the port is free for others: nothing of ours bound it after stop()
    const again = await occupy(port);
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });
});
