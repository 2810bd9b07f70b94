// The status page's line and zone editor (issue 14, part 6): drawn in a real headless Chromium over the live
// preview, validated and saved through a real ConfigApplier (config check, atomic write, probation) on a
// config file in a temp dir; and its two endpoints without a browser, against `config check` itself.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { ConfigApplier, type CameraDiff, type ProbationSample } from '../../../agent/config-apply/index.js';
import type { CliIo } from '../../../cli/io.js';
import { cli } from '../../../cli/main.js';
import { overlayFromConfig } from '../../../agent/health/figures.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import type { HealthSources } from '../../../agent/health/sources.js';
import { StatusServer } from '../../../agent/status/server.js';
import { loadConfig } from '../../../config/loader.js';
import { HealthSchema, StatusSchema } from '../../../config/schema/index.js';
import { silentLogger } from '../../../core/log.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { freePort } from '../../../testkit/ports.js';
import { makeTempDir } from '../../../testkit/tmp.js';
import { StaticFigures } from '../../../testkit/static-figures.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'editor-test-token-0123456789';
const FRAME = { width: 768, height: 576 };
const CAM = '.camera[data-camera="cam1"]';

const sources: HealthSources = {
  cpuLoad: () => Promise.resolve({ total_pct: 10, per_core_pct: [10, 10] }),
  temperature: () => Promise.resolve(null),
  memory: () => Promise.resolve({ total_mb: 3906, used_mb: 1210, available_mb: 2696, swap_used_mb: 0 }),
  uptime: () => Promise.resolve(1000),
  disk: (path) => Promise.resolve({ path, total_mb: 29_000, free_mb: 18_400 }),
  network: () => Promise.resolve({ interface: 'eth0', link_up: true, type: 'wired', ip4: '192.0.2.10', ip6: null, speed_mbps: 100 }),
  clock: () => Promise.resolve({ synced: true, offset_ms: 0.6, source: 'chronyc' }),
  soc: () => Promise.resolve(null),
};

/** The part of HTMLCanvasElement / DOMRect used in the page (the test compiles without the DOM library). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
  getBoundingClientRect(): { x: number; y: number; width: number; height: number };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A request with exactly these headers (node:http: no Origin unless given, Host may be overridden). */
function call(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; headersOnly?: boolean; chunked?: boolean } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ host: '127.0.0.1', port, path, method: opts.method ?? 'POST', headers: opts.headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        if (opts.headersOnly) req.destroy();
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (opts.headersOnly) req.flushHeaders();
    else if (opts.chunked) {
      req.write(opts.body ?? ''); // written before end: no Content-Length, chunked transfer
      req.end();
    } else req.end(opts.body);
  });
}

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}`, ...headers },
  body: JSON.stringify(body),
});

const dir = makeTempDir('editor');
const file = join(dir, 'agent.yaml');
let port: number;
let figures: StaticFigures;
let applier: ConfigApplier;
let server: StatusServer;
let context: BrowserContext;
let page: Page;
const diffs: CameraDiff[] = [];
const restarts: string[] = [];

/** A box that works: frames and detector runs keep coming, the uplink is up (the probation never fails). */
let samples = 0;
const workingBox = (): ProbationSample => {
  samples++;
  return { cameras: [{ id: 'cam1', frames_total: samples * 10, last_frame_age_ms: 100, state: 'online', reason: null, detail: null }], detector: { state: 'running', runs: samples * 5 }, uplink: { online: true, last_error: null } };
};

/** A detector-input frame (416x416, stretched from the camera's 4:3): a grey ramp, for the MPEG-1 preview. */
function pipelineFrame(): { data: Uint8Array; width: number; height: number } {
  const size = 416;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data.fill(40 + Math.round((x / size) * 160), (y * size + x) * 3, (y * size + x) * 3 + 3);
  return { data, width: size, height: size };
}

describe('line and zone editor', () => {
  beforeAll(async () => {
    const clip = join(dir, 'editor-clip.mp4'); // a private copy: other test files run ffmpeg on the demo clip
    copyFileSync(DEMO_CLIP, clip);
    port = await freePort();
    writeFileSync(
      file,
      [
        '# editor test box',
        'device: { id: box-1, site: site-1, data_dir: ./data, config_probation_s: 3600 }',
        'cameras:',
        '  - id: cam1',
        `    url: ${clip}`,
        `    frame: { width: ${FRAME.width}, height: ${FRAME.height} }`,
        '    lines:',
        '      - { id: mid, a: [40, 330], b: [728, 330] } # the kerb',
        'mqtt: { url: "mqtt://127.0.0.1:1883" }',
        `status: { port: ${port}, token: ${TOKEN}, preview_fps: 5 }`,
        '',
      ].join('\n'),
    );
    const loaded = loadConfig(file, {});
    const cam = loaded.config.cameras[0]!;
    figures = new StaticFigures({
      cameras: [{ id: 'cam1', status: 'online', camera_fps: 10, process_fps: 5, skipped_fps: 0, motion_skipped_fps: 0, reconnects_last_hour: 0, stalls_last_hour: 0, last_frame_age_s: 0.1 }],
      overlays: { cam1: overlayFromConfig(cam) },
      frames: { cam1: pipelineFrame() },
    });
    applier = new ConfigApplier({
      loaded,
      // The camera set needs a detector; what it is asked to do is recorded instead (agent/app.ts wires the real one).
      cameras: { reconfigure: (_cams, _analytics, diff) => Promise.resolve(void diffs.push(diff)) },
      probe: { sample: workingBox },
      log: silentLogger(),
      setLogLevel: () => undefined,
      rebirth: () => undefined,
      requestRestart: (reason) => void restarts.push(reason),
      // As agent/app.ts: the page's overlays follow an applied config.
      onApplied: (next) => next.config.cameras.forEach((c) => (figures.overlays[c.id] = overlayFromConfig(c))),
      env: {},
    });
    await applier.start();
    const sampler = new HealthSampler({ config: HealthSchema.parse({}), dataDir: dir, figures, log: silentLogger(), sources });
    await sampler.refresh({ slow: true });
    server = new StatusServer({ config: loaded.config.status, cameras: loaded.config.cameras, health: sampler, figures, log: silentLogger(), previewLingerMs: 300, applier });
    await server.start(new AbortController().signal);
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 1000 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await server?.stop();
    await applier?.stop();
  });

  it('draws a line and a zone over the live preview in camera pixels, validates them and saves the zone', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${port}/#token=${TOKEN}`);
    await page.waitForSelector(`${CAM} canvas.preview`);
    // drawn over the live picture: MPEG-1 made from the pipeline's frames, decoded on the preview canvas
    await expect.poll(() => page.textContent(`${CAM} .live`), { timeout: 15_000 }).toBe('live · MPEG-1');
    await expect.poll(() => page.textContent(`${CAM} .msg`), { timeout: 15_000 }).toBe('');
    expect(await page.$eval(`${CAM} canvas.preview`, (c: unknown) => [(c as CanvasLike).width, (c as CanvasLike).height])).toEqual([640, 480]);
    // api/status says the box can save (it has an applier): Validate is enabled once something is drawn
    await page.click(`${CAM} .edit-toggle`);
    await page.waitForSelector(`${CAM} .editor:not([hidden])`);
    expect(await page.inputValue(`${CAM} .edit-id`)).toBe('line-1'); // "mid" is taken, the first free id

    const box = () => page.$eval(`${CAM} canvas.preview`, (c: unknown) => (c as CanvasLike).getBoundingClientRect());
    const r = await box();
    expect(r.width / r.height).toBeCloseTo(FRAME.width / FRAME.height, 2);
    const at = (u: number, v: number) => ({ x: r.x + u * r.width, y: r.y + v * r.height, cam: [u * FRAME.width, v * FRAME.height] });
    const snippet = async () => parse(await page.inputValue(`${CAM} .edit-yaml`)) as Record<string, unknown>[] | null;
    const expectNear = (got: unknown, want: number[]) => {
      const p = got as number[];
      expect(p, `${JSON.stringify(p)} ≈ ${JSON.stringify(want)}`).toHaveLength(2);
      expect(Math.abs(p[0]! - want[0]!), `x ${p[0]} vs ${want[0]}`).toBeLessThanOrEqual(2);
      expect(Math.abs(p[1]! - want[1]!), `y ${p[1]} vs ${want[1]}`).toBeLessThanOrEqual(2);
      expect(Number.isInteger(p[0]) && Number.isInteger(p[1])).toBe(true);
    };

    // a line: two clicks, a then b; the snippet in camera pixels
    const a = at(0.25, 0.6);
    const b = at(0.75, 0.62);
    await page.mouse.click(a.x, a.y);
    expect(await page.inputValue(`${CAM} .edit-yaml`)).toBe(''); // one point is not a line yet
    await page.mouse.move(b.x, b.y);
    const cursor = /^x (\d+) · y (\d+) px$/.exec((await page.textContent(`${CAM} .edit-cursor`)) ?? '');
    expectNear([Number(cursor?.[1]), Number(cursor?.[2])], b.cam); // the pixel under the mouse, in camera pixels
    await page.mouse.click(b.x, b.y);
    await page.fill(`${CAM} .edit-id`, 'north-in');
    const line = (await snippet())!;
    expect(line).toHaveLength(1);
    expect(line[0]!.id).toBe('north-in');
    expectNear(line[0]!.a, a.cam);
    expectNear(line[0]!.b, b.cam);

    // the "in" arrow: a→b runs left to right, so "in" (the right of a→b, y down) is below the line
    const editPixels = (x: number, y: number) =>
      page.$eval(
        `${CAM} canvas.edit`,
        (c: unknown, [px, py]: number[]) => {
          const canvas = c as CanvasLike;
          const rect = canvas.getBoundingClientRect();
          const cx = Math.round(((px! - rect.x) / rect.width) * canvas.width);
          const cy = Math.round(((py! - rect.y) / rect.height) * canvas.height);
          const d = canvas.getContext('2d')!.getImageData(cx - 2, cy - 2, 5, 5).data;
          let magenta = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i]! > 200 && d[i + 1]! < 150 && d[i + 2]! > 160 && d[i + 3]! > 200) magenta++;
          return magenta;
        },
        [x, y],
      );
    const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    expect(await editPixels(mid.x, mid.y + 18), 'arrow below the line').toBeGreaterThan(0);
    expect(await editPixels(mid.x, mid.y - 18), 'nothing above the line').toBe(0);

    // validate: the running config with this line passes config check
    await page.click(`${CAM} .edit-validate`);
    await page.waitForSelector(`${CAM} .edit-result[data-state="ok"]`);
    expect(await page.textContent(`${CAM} .edit-result`)).toMatch(/^valid/);
    expect(await page.$$(`${CAM} .edit-problems li`)).toHaveLength(0);
    await page.screenshot({ path: join(tmpdir(), 'roadside-status-editor.png') }); // kept for a human look

    // a line with both points equal: the geometry error of config check, on the new line
    const c = at(0.5, 0.3);
    await page.mouse.click(c.x, c.y);
    await page.mouse.click(c.x, c.y);
    const zero = (await snippet())!;
    expect(zero[0]!.a).toEqual(zero[0]!.b);
    await page.click(`${CAM} .edit-validate`);
    await page.waitForSelector(`${CAM} .edit-result[data-state="invalid"]`);
    const problems = await page.$$eval(`${CAM} .edit-problems li`, (els: unknown[]) => els.map((e) => (e as { textContent: string }).textContent));
    expect(problems).toEqual([`cameras.0.lines.1.b: a line needs two distinct points (got ${JSON.stringify(zero[0]!.b)})`]);
    expect(await page.$$(`${CAM} .edit-problems li.mine`)).toHaveLength(1);

    // a zone: clicks at its corners, the last one a double-click that closes it
    await page.click(`${CAM} .edit-kind-zone input`);
    expect(await page.inputValue(`${CAM} .edit-id`)).toBe('zone-1');
    const corners = [at(0.1, 0.45), at(0.9, 0.45), at(0.95, 0.95), at(0.05, 0.95)];
    for (const k of corners.slice(0, 3)) await page.mouse.click(k.x, k.y);
    expect(await page.inputValue(`${CAM} .edit-yaml`)).toBe(''); // still open
    await page.mouse.dblclick(corners[3]!.x, corners[3]!.y);
    const zone = (await snippet())!;
    expect(zone[0]!.id).toBe('zone-1');
    const polygon = zone[0]!.polygon as number[][];
    expect(polygon).toHaveLength(4);
    polygon.forEach((p, i) => expectNear(p, corners[i]!.cam));
    await page.click(`${CAM} .edit-validate`);
    await page.waitForSelector(`${CAM} .edit-result[data-state="ok"]`);

    // save: through the applier, which writes the file and applies it in place; the overlay shows the zone
    const before = applier.config().hash;
    await page.click(`${CAM} .edit-save`);
    await page.waitForSelector(`${CAM} .edit-result[data-state="applied"]`);
    const after = applier.config().hash;
    expect(after).not.toBe(before);
    expect(await page.textContent(`${CAM} .edit-result`)).toContain(after);
    const saved = parseDocument(readFileSync(file, 'utf8')).toJS() as { cameras: { zones: { id: string; polygon: number[][] }[] }[]; status: { token: string } };
    expect(saved.cameras[0]!.zones.map((z) => z.id)).toEqual(['zone-1']);
    expect(saved.cameras[0]!.zones[0]!.polygon).toEqual(polygon);
    expect(saved.status.token).toBe(TOKEN); // the redacted secret was put back
    expect(readFileSync(file, 'utf8')).toContain('# the kerb'); // comments survive
    expect(diffs.at(-1)).toMatchObject({ analytics: ['cam1'], source: [] });
    expect(restarts).toEqual([]);
    await expect.poll(() => page.$$eval(`${CAM} .legend span`, (els: unknown[]) => els.map((e) => (e as { dataset: { legend: string } }).dataset.legend)), { timeout: 5000 }).toEqual(['line', 'zone', 'box']);

    // a triangle closed with Enter
    await page.click(`${CAM} .edit-id`);
    await page.fill(`${CAM} .edit-id`, 'island');
    const tri = [at(0.3, 0.1), at(0.5, 0.1), at(0.4, 0.3)];
    for (const k of tri) await page.mouse.click(k.x, k.y);
    await page.keyboard.press('Enter');
    const triangle = (await snippet())!;
    expect(triangle[0]!.id).toBe('island');
    expect(triangle[0]!.polygon).toHaveLength(3);
    (triangle[0]!.polygon as number[][]).forEach((p, i) => expectNear(p, tri[i]!.cam));

    await page.screenshot({ path: join(tmpdir(), 'roadside-status-editor-zone.png') });
    expect(errors).toEqual([]);
    await page.goto('about:blank');
  });

  it('validate answers the problems config check finds in the same candidate', async () => {
    const lines = applier.config().config.cameras[0]!.lines.length;
    const item = { id: 'bad', a: [900, 10], b: [900, 10] };
    const r = await call(port, '/api/config/validate', json({ camera: 'cam1', kind: 'line', item }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: false, outcome: 'invalid', item_path: `cameras.0.lines.${lines}`, base_hash: applier.config().hash });
    const problems = r.body.problems as string[];
    expect(problems).toEqual([
      `cameras.0.lines.${lines}.a: point [900, 10] is outside the 768x576 frame (got [900,10])`,
      `cameras.0.lines.${lines}.b: point [900, 10] is outside the 768x576 frame (got [900,10])`,
      `cameras.0.lines.${lines}.b: a line needs two distinct points (got [900,10])`,
    ]);

    // config check on the running file with the same line added says the same, at FILE:LINE
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.addIn(['cameras', 0, 'lines'], doc.createNode(item));
    const candidate = join(dir, 'candidate.yaml');
    writeFileSync(candidate, doc.toString());
    const out: string[] = [];
    const io: CliIo = { env: {}, interactive: false, stdout: (t) => void out.push(t), stderr: (t) => void out.push(t) };
    expect(await cli(['config', 'check', candidate], io)).toBe(78);
    const reported = out.join('').split('\n').filter((l) => l.startsWith(candidate));
    expect(reported).toHaveLength(problems.length);
    const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    problems.forEach((p, i) => expect(reported[i]).toMatch(new RegExp(`^${escape(candidate)}:\\d+ ${escape(p)}$`)));

    // an item of the wrong shape: the schema's message, as config check gives it
    const shape = await call(port, '/api/config/validate', json({ camera: 'cam1', kind: 'zone', item: { id: 'Bad Zone', polygon: [[0, 0], [10, 0]] } }));
    expect(shape.body.ok).toBe(false);
    expect(shape.body.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^cameras\.0\.zones\.\d+\.id: expected 1-63 lowercase letters/), expect.stringMatching(/^cameras\.0\.zones\.\d+\.polygon: a polygon needs at least 3 points/)]),
    );
    expect(readFileSync(file, 'utf8')).not.toContain('bad'); // a dry run writes nothing
  });

  it('apply goes through the applier: the running config hash changes; a stale base is a conflict', async () => {
    const before = applier.config().hash;
    const item = { id: 'api-line', a: [100, 100], b: [600, 120] };
    const r = await call(port, '/api/config/apply', json({ camera: 'cam1', kind: 'line', item }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, outcome: 'applied', base_hash: before, problems: [], restart: null });
    expect(r.body.hash).toBe(applier.config().hash);
    expect(applier.config().hash).not.toBe(before);
    expect(applier.config().config.cameras[0]!.lines.map((l) => l.id)).toContain('api-line');
    expect(typeof r.body.probation_until).toBe('string');

    // the same id again changes that line, keeping what the page does not edit
    const moved = await call(port, '/api/config/apply', json({ camera: 'cam1', kind: 'line', item: { id: 'api-line', a: [100, 200], b: [600, 220] } }));
    expect(moved.status).toBe(200);
    const lines = applier.config().config.cameras[0]!.lines;
    expect(lines.filter((l) => l.id === 'api-line')).toEqual([expect.objectContaining({ a: [100, 200], b: [600, 220] })]);

    // an item with problems is refused with them, nothing written
    const hash = applier.config().hash;
    const bad = await call(port, '/api/config/apply', json({ camera: 'cam1', kind: 'line', item: { id: 'x', a: [1, 1], b: [1, 1] } }));
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ ok: false, outcome: 'refused' });
    expect(bad.body.problems).toEqual([expect.stringMatching(/^cameras\.0\.lines\.\d+\.b: a line needs two distinct points \(got \[1,1\]\)$/)]);
    expect(applier.config().hash).toBe(hash);

    // made from a config that is no longer the running one
    const stale = await call(port, '/api/config/apply', json({ camera: 'cam1', kind: 'line', item: { id: 'late', a: [1, 1], b: [50, 50] }, base_hash: before }));
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ ok: false, code: 'CONFIG_CONFLICT' });
    expect(applier.config().hash).toBe(hash);

    // a whole cameras patch is a change too
    const cams = parseDocument(applier.get().yaml).toJS() as { cameras: { lines: unknown[] }[] };
    cams.cameras[0]!.lines = cams.cameras[0]!.lines.slice(0, 1);
    const patched = await call(port, '/api/config/validate', json({ patch: { cameras: cams.cameras } }));
    expect(patched.body).toMatchObject({ ok: true, outcome: 'valid', changes: ['cameras.cam1: lines (analytics restarted)'] });
  });

  it('refuses requests without the token, from another origin, of the wrong type or size', async () => {
    const item = { camera: 'cam1', kind: 'line', item: { id: 'g', a: [1, 1], b: [9, 9] } };
    const hash = applier.config().hash;
    const body = JSON.stringify(item);
    const ct = { 'Content-Type': 'application/json' };
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const cases: [string, Parameters<typeof call>[2], number][] = [
      ['no token', { headers: ct, body }, 401],
      ['a wrong token', { headers: { ...ct, Authorization: 'Bearer not-the-token-at-all' }, body }, 401],
      ['another origin', { headers: { ...ct, ...auth, Origin: 'http://evil.example' }, body }, 403],
      ['a cross-site fetch', { headers: { ...ct, ...auth, 'Sec-Fetch-Site': 'cross-site' }, body }, 403],
      ['a form post', { headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'camera=cam1' }, 415],
      ['no content type', { headers: auth, body }, 415],
      ['not JSON', { headers: { ...ct, ...auth }, body: '{camera: cam1' }, 400],
      ['not an object', { headers: { ...ct, ...auth }, body: '[1, 2]' }, 400],
      ['an unknown camera', { headers: { ...ct, ...auth }, body: JSON.stringify({ ...item, camera: 'nope' }) }, 400],
      ['a GET', { method: 'GET', headers: auth }, 405],
      ['a body over 64 KiB (declared)', { headers: { ...ct, ...auth, 'Content-Length': String(70 * 1024) }, headersOnly: true }, 413],
      ['a body over 64 KiB (chunked)', { headers: { ...ct, ...auth }, body: JSON.stringify({ ...item, pad: 'x'.repeat(70 * 1024) }), chunked: true }, 413],
    ];
    for (const route of ['/api/config/validate', '/api/config/apply']) {
      for (const [what, opts, status] of cases) {
        const r = await call(port, route, opts);
        expect(r.status, `${route}: ${what}: ${JSON.stringify(r.body)}`).toBe(status);
      }
    }
    expect(applier.config().hash).toBe(hash);
    // the page's own origin is fine
    const own = await call(port, '/api/config/validate', json(item, { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'same-origin' }));
    expect(own.status).toBe(200);
    expect(own.body.ok).toBe(true);

    // without a token: loopback Host names only (DNS rebinding); without an applier: 503, nothing to validate with
    const openPort = await freePort();
    const open = new StatusServer({ config: StatusSchema.parse({ port: openPort }), cameras: applier.config().config.cameras, health: { current: () => { throw new Error('unused'); } }, figures, log: silentLogger() });
    await open.start(new AbortController().signal);
    try {
      expect((await call(openPort, '/api/config/validate', { headers: { ...ct, Host: 'evil.example' }, body })).status).toBe(403);
      expect((await call(openPort, '/api/config/validate', { headers: { ...ct, Origin: 'http://evil.example' }, body })).status).toBe(403);
      const none = await call(openPort, '/api/config/validate', { headers: ct, body });
      expect(none.status).toBe(503);
      expect(none.body.error).toContain('no config applier');
    } finally {
      await open.stop();
    }
  });
});
