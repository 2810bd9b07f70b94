// The status page in a real headless Chromium against a real ffmpeg-fed preview.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraSchema, HealthSchema, StatusSchema } from '../../../config/schema/index.js';
import { overlayFromConfig } from '../../../agent/health/figures.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import type { HealthSources } from '../../../agent/health/sources.js';
import { silentLogger } from '../../../core/log.js';
import { StatusServer } from '../../../agent/status/server.js';
import { testClip } from '../../../testkit/clips.js';
import { freePort } from '../../../testkit/ports.js';
import { ffmpegProcesses, isAlive, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';
import { StaticFigures } from '../../../testkit/static-figures.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'page-test-token-0123456789';
const LINE_RGB = [0xff, 0xd4, 0x00]; // COLORS.line in public/app.js
const tmp = mkdtempSync(join(tmpdir(), 'status-page-'));

/** The part of HTMLCanvasElement used in the page (the test compiles without the DOM library). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}

const sources: HealthSources = {
  cpuLoad: () => Promise.resolve({ total_pct: 23, per_core_pct: [20, 26] }),
  temperature: () => Promise.resolve(null),
  memory: () => Promise.resolve({ total_mb: 3906, used_mb: 1210, available_mb: 2696, swap_used_mb: 0 }),
  uptime: () => Promise.resolve(93_784),
  disk: (path) => Promise.resolve({ path, total_mb: 29_000, free_mb: 18_400 }),
  network: () => Promise.resolve({ interface: 'eth0', link_up: true, type: 'wired', ip4: '192.0.2.10', ip6: null, speed_mbps: 100 }),
  clock: () => Promise.resolve({ synced: true, offset_ms: 0.6, source: 'chronyc' }),
  soc: () => Promise.resolve(null),
};

let server: StatusServer;
let context: BrowserContext;
let page: Page;
let port: number;
let marker: string;
let figures: StaticFigures;

describe('status page (headless Chromium, ffmpeg preview)', () => {
  beforeAll(async () => {
    // A private copy: other test files run ffmpeg on the same clip at the same time, so the path is the marker.
    const clip = join(makeTempDir('status-page'), 'status-page-clip.mp4');
    copyFileSync(await testClip(), clip);
    marker = clip;
    const cam = CameraSchema.parse({
      id: 'cam1',
      url: clip,
      frame: { width: 768, height: 576 },
      lines: [{ id: 'mid', a: [40, 330], b: [728, 330] }],
      zones: [{ id: 'plaza', polygon: [[60, 200], [700, 200], [740, 560], [20, 560]] }],
    });
    figures = new StaticFigures({
      cameras: [{ id: 'cam1', status: 'online', camera_fps: 10, process_fps: 4.8, skipped_fps: 0.2, motion_skipped_fps: 5, reconnects_last_hour: 0, stalls_last_hour: 0, last_frame_age_s: 0.1 }],
      detector: { state: 'running', inference_ms_mean: 22.4, inference_ms_p95: 30.1, detection_fps: 4.8, restarts: 0, last_inference_age_s: 0.2 },
      outbox: { depth: 2, oldest_unsent_age_s: 0.8, evicted: 0 },
      uplink: { connected: true, state: 'connected', publish_rate_per_s: 1.2, session: 3 },
      events: [
        { id: 'e2', type: 'zone_dwell', camera: 'cam1', captured_at: new Date().toISOString(), zone: 'plaza', object: { class_name: 'person', track_id: 12 }, dwell_s: 16.2 },
        { id: 'e1', type: 'line_crossing', camera: 'cam1', captured_at: new Date(Date.now() - 5000).toISOString(), line: 'mid', direction: 'in', object: { class_name: 'person', track_id: 7 } },
      ],
      detections: { cam1: [{ box: [480, 120, 540, 260], class_name: 'person', score: 0.87, track_id: 7 }] },
      overlays: { cam1: overlayFromConfig(cam) },
    });
    const sampler = new HealthSampler({ config: HealthSchema.parse({}), dataDir: tmp, figures, log: silentLogger(), sources });
    await sampler.refresh({ slow: true });
    port = await freePort();
    server = new StatusServer({
      config: StatusSchema.parse({ port, token: TOKEN, preview_fps: 5 }),
      cameras: [cam],
      device: { id: 'box-n1-km12', site: 'n1-km12' },
      health: sampler,
      figures,
      log: silentLogger(),
      previewLingerMs: 300,
    });
    await server.start(new AbortController().signal);
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
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
    rmSync(tmp, { recursive: true, force: true });
  });

  it('shows live frames, the overlay lines, detections, health and events; stops ffmpeg when the viewer leaves', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${port}/#token=${TOKEN}`);
    await page.waitForSelector('.camera[data-camera="cam1"] canvas.preview');
    expect(new URL(page.url()).hash).toBe(''); // the token left the address bar

    // the page asks for MPEG-1 first; this provider has no pipeline frames, so after the server's wait
    // (5 s) it says "unavailable" and the page falls back to the JPEG preview, whose ffmpeg runs while it watches
    await waitFor(() => server.previewStates()[0]?.running && server.previewStates()[0]!.frames > 0, { timeout_ms: 25_000, message: 'preview frames' });
    expect(ffmpegProcesses(marker).length).toBeGreaterThanOrEqual(1);
    expect(server.mpeg1States()[0]).toMatchObject({ running: false, last_error: 'no frames from the camera pipeline yet' });
    await expect.poll(() => page.textContent('.camera[data-camera="cam1"] .live')).toBe('live · JPEG');

    // the preview canvas draws real frames: not black, and changing over time
    const stats = () =>
      page.$eval('.camera[data-camera="cam1"] canvas.preview', (c: unknown) => {
        const canvas = c as CanvasLike;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        const sample: number[] = [];
        for (let i = 0; i < d.length; i += 4) {
          sum += d[i]! + d[i + 1]! + d[i + 2]!;
          if (i % 4096 === 0) sample.push(d[i]!);
        }
        return { w: canvas.width, h: canvas.height, mean: sum / (d.length / 4) / 3, sample };
      });
    await waitFor(async () => (await stats()).mean > 20, { timeout_ms: 10_000, message: 'a non-black frame on the canvas' });
    const a = await stats();
    await new Promise((r) => setTimeout(r, 1500));
    const b = await stats();
    expect(a.w).toBe(640); // 768x576 scaled to preview_width 640
    expect(a.h).toBe(480);
    const changed = a.sample.filter((v, i) => Math.abs(v - (b.sample[i] ?? v)) > 8).length;
    expect(changed, 'pixels changed between two looks 1.5 s apart').toBeGreaterThan(a.sample.length * 0.01);

    // health summary, detections and events are on the page
    await expect.poll(() => page.textContent('#badge')).toBe('ok');
    await expect.poll(() => page.textContent('#summary')).toContain('synchronised');
    expect(await page.textContent('#events tbody')).toContain('line_crossing');
    expect(await page.textContent('#device')).toBe('n1-km12 / box-n1-km12');
    // this camera has a counting line and a zone: both in its legend
    expect(await page.$$eval('.camera[data-camera="cam1"] .legend span', (els: unknown[]) => els.map((e) => (e as { dataset: { legend: string } }).dataset.legend))).toEqual(['line', 'zone', 'box']);

    // the overlay: the configured line, in camera pixels scaled to the preview
    const rect = await page.$eval('.camera[data-camera="cam1"] canvas.overlay', (c: unknown) => {
      const r = (c as { getBoundingClientRect(): { x: number; y: number; width: number; height: number } }).getBoundingClientRect();
      return { x: r.x, y: r.y, w: r.width, h: r.height };
    });
    expect(rect.w / rect.h).toBeCloseTo(768 / 576, 2);
    const shot = join(tmp, 'status-page.png');
    await page.screenshot({ path: shot });
    copyFileSync(shot, join(tmpdir(), 'roadside-status-page.png')); // kept for a human look
    const { data, info } = await sharp(shot).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => {
      const i = (Math.round(y) * info.width + Math.round(x)) * info.channels;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    };
    const isLine = (p: number[]) => p.every((v, i) => Math.abs(v - LINE_RGB[i]!) < 40);
    const near = (cx: number, cy: number, r: number) => {
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (isLine(px(cx + dx, cy + dy))) return true;
      return false;
    };
    const toScreen = (x: number, y: number) => [rect.x + (x / 768) * rect.w, rect.y + (y / 576) * rect.h] as const;
    for (const x of [150, 300, 600, 700]) {
      const [sx, sy] = toScreen(x, 330);
      expect(isLine(px(sx, sy)) || near(sx, sy, 1), `line colour at camera (${x}, 330) = screen (${Math.round(sx)}, ${Math.round(sy)}): got ${px(sx, sy).join(',')}`).toBe(true);
    }
    const [ox, oy] = toScreen(600, 420);
    expect(near(ox, oy, 2), 'no line colour far from the line').toBe(false);
    expect(errors).toEqual([]);

    // a camera stalls: the page says so within a poll or two
    figures.cameraList = [{ ...figures.cameraList[0]!, status: 'stalled', reason: 'no frames for 14 s', last_frame_age_s: 14 }];
    await expect.poll(() => page.textContent('#badge'), { timeout: 5000 }).toBe('error');
    expect(await page.textContent('#reasons')).toContain('camera cam1 stalled: no frames for 14 s');
    expect(await page.textContent('.camera[data-camera="cam1"] .state')).toBe('stalled');
    await page.screenshot({ path: join(tmpdir(), 'roadside-status-page-stalled.png') });

    // another tab without the token is asked for it, and works once it is given
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${port}/`);
    await other.waitForSelector('#auth:not([hidden])');
    await other.fill('#token', TOKEN);
    await other.click('#auth button');
    await expect.poll(() => other.textContent('#badge'), { timeout: 5000 }).toBe('error');
    await other.close();

    // the viewer leaves: the preview ffmpeg stops
    await page.goto('about:blank');
    await waitFor(() => server.previewStates()[0]?.running === false, { timeout_ms: 10_000, message: 'preview stopped' });
    await waitFor(() => ffmpegProcesses(marker).length === 0, { timeout_ms: 15_000, message: 'ffmpeg gone' });
  });

  it('the line editor draws and gives the YAML, but cannot validate or save on a box without a config applier', async () => {
    const p = await context.newPage();
    try {
      await p.goto(`http://127.0.0.1:${port}/#token=${TOKEN}`);
      const camSel = '.camera[data-camera="cam1"]';
      await p.waitForSelector(`${camSel} .edit-toggle`);
      await expect.poll(() => p.textContent('#badge')).not.toBe('…'); // api/status answered: the page knows the box cannot save
      await p.click(`${camSel} .edit-toggle`);
      const r = await p.$eval(`${camSel} canvas.preview`, (c: unknown) => (c as { getBoundingClientRect(): { x: number; y: number; width: number; height: number } }).getBoundingClientRect());
      await p.mouse.click(r.x + r.width * 0.5, r.y + r.height * 0.25);
      await p.mouse.click(r.x + r.width * 0.5, r.y + r.height * 0.75);
      // a vertical line at x = 384 from y = 144 to 432 in the 768x576 camera frame
      expect(await p.inputValue(`${camSel} .edit-yaml`)).toMatch(/- id: line-1\n {2}a: \[38[3-5], 14[3-5]\]\n {2}b: \[38[3-5], 43[1-3]\]/);
      for (const button of ['.edit-validate', '.edit-save']) {
        expect(await p.isDisabled(`${camSel} ${button}`), button).toBe(true);
        expect(await p.getAttribute(`${camSel} ${button}`, 'title')).toContain('no config applier');
      }
      const answer = await p.evaluate(
        (token: string) =>
          fetch('api/config/validate', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: '{}' }).then((res) => res.status),
        TOKEN,
      );
      expect(answer).toBe(503);
    } finally {
      await p.close();
    }
  });

  it('plays MPEG-1 through jsmpeg; a readable events table; labels inside the frame, apart; a legend of what is configured', async () => {
    // A camera without lines or zones whose pipeline frames are red on the left, blue on the right, with a
    // white bar moving across; two detections side by side at the right edge.
    const size = 416;
    let step = 0;
    const nextFrame = () => {
      const data = new Uint8Array(size * size * 3);
      const bar = (step++ * 16) % size;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const i = (y * size + x) * 3;
          const white = y >= 380 && x >= bar && x < bar + 24;
          data[i] = white ? 255 : x < size / 2 ? 210 : 30;
          data[i + 1] = white ? 255 : 30;
          data[i + 2] = white ? 255 : x < size / 2 ? 30 : 210;
        }
      }
      return { data, width: size, height: size };
    };
    const cam = CameraSchema.parse({ id: 'side', url: marker, frame: { width: 768, height: 576 } });
    const now = Date.now();
    const sideFigures = new StaticFigures({
      cameras: [{ id: 'side', status: 'online', camera_fps: 10, process_fps: 5, skipped_fps: 0, motion_skipped_fps: 0, reconnects_last_hour: 0, stalls_last_hour: 0, last_frame_age_s: 0.1 }],
      events: [
        {
          schema: 'roadside.event/1', id: '0190f4a2-7b1c-7d3e-8f00-000000000001', device: 'box-1', site: 'site-1', camera: 'side',
          captured_at: new Date(now).toISOString(), mono_ms: 1234, clock_synced: true, type: 'speed', priority: 'event',
          object: { track_id: 42, class: 'car', score: 0.91, box: [660, 60, 712, 200], speed_kmh: 48.4, speed_uncertainty_kmh: 2.1 },
          rule: { kind: 'line', id: 'north' },
          attributes: { direction: 'in', window_s: 1.2, samples: 6, distance_m: 16.1 },
        },
      ],
      detections: {
        side: [
          { box: [660, 60, 712, 200], class_name: 'car', score: 0.93, track_id: 101 },
          { box: [714, 60, 766, 200], class_name: 'truck', score: 0.88, track_id: 102 },
        ],
      },
      overlays: { side: overlayFromConfig(cam) },
      frames: { side: nextFrame() },
    });
    const feeder = setInterval(() => (sideFigures.frames.side = nextFrame()), 200);
    const sideSampler = new HealthSampler({ config: HealthSchema.parse({}), dataDir: tmp, figures: sideFigures, log: silentLogger(), sources });
    await sideSampler.refresh({ slow: true });
    const sidePort = await freePort();
    const side = new StatusServer({ config: StatusSchema.parse({ port: sidePort, preview_fps: 5 }), cameras: [cam], health: sideSampler, figures: sideFigures, log: silentLogger(), previewLingerMs: 300 });
    await side.start(new AbortController().signal);
    const p = await context.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => {
      if (m.type() === 'error' || (m.type() === 'warning' && m.text().includes('JSMpeg'))) errors.push(m.text());
    });
    try {
      await p.goto(`http://127.0.0.1:${sidePort}/`);
      const camSel = '.camera[data-camera="side"]';
      await p.waitForSelector(`${camSel} canvas.preview`);

      // MPEG-1, decoded by jsmpeg onto the preview canvas: left red, right blue, and moving
      await expect.poll(() => p.textContent(`${camSel} .live`), { timeout: 15_000 }).toBe('live · MPEG-1');
      const colours = () =>
        p.$eval(`${camSel} canvas.preview`, (c: unknown) => {
          const canvas = c as CanvasLike;
          const mean = (x0: number, y0: number, w: number, h: number) => {
            const d = canvas.getContext('2d')!.getImageData(x0, y0, w, h).data;
            const m = [0, 0, 0];
            for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) m[k]! += d[i + k]! / (d.length / 4);
            return m.map(Math.round);
          };
          const w = canvas.width;
          const h = canvas.height;
          return { w, h, left: mean(w * 0.1, h * 0.2, w * 0.3, h * 0.4), right: mean(w * 0.6, h * 0.2, w * 0.3, h * 0.4), bottom: mean(0, Math.round(h * 0.94), w, Math.round(h * 0.04)) };
        });
      await waitFor(async () => (await colours()).left[0]! > 150, { timeout_ms: 15_000, message: 'the decoded picture on the canvas' });
      const c1 = await colours();
      expect({ w: c1.w, h: c1.h }).toEqual({ w: 640, h: 480 }); // 416x416 detector frames shown at the camera's 4:3
      expect(c1.left[0]).toBeGreaterThan(150);
      expect(c1.left[2]).toBeLessThan(90);
      expect(c1.right[2]).toBeGreaterThan(150);
      expect(c1.right[0]).toBeLessThan(90);
      expect(side.mpeg1States()[0]).toMatchObject({ running: true, viewers: 1 });
      expect(side.previewStates()[0]).toMatchObject({ running: false }); // no JPEG ffmpeg on the camera
      await waitFor(async () => JSON.stringify((await colours()).bottom) !== JSON.stringify(c1.bottom), { timeout_ms: 5000, message: 'the bar moves' });

      // the events table: one row per event, the useful fields in their columns, no raw JSON
      expect(await p.$$eval('#events thead th', (els: unknown[]) => els.map((e) => (e as { textContent: string }).textContent))).toEqual(['Time', 'Camera', 'Type', 'Object', 'Rule', 'Direction / speed']);
      const cells = await p.$$eval('#events tbody tr', (rows: unknown[]) =>
        rows.map((r) => Array.from((r as { querySelectorAll(s: string): ArrayLike<{ textContent: string }> }).querySelectorAll('td'), (td) => td.textContent)),
      );
      expect(cells).toHaveLength(1);
      const [time, camera, type, object, rule, motion] = cells[0]!;
      expect(time).toMatch(/\d{1,2}[:.]\d{2}[:.]\d{2}/);
      expect([camera, type, object, rule, motion]).toEqual(['side', 'speed', 'car #42', 'line north', 'in · 48 ± 2 km/h']);
      expect(await p.textContent('#events tbody')).not.toContain('{');

      // labels: inside the overlay canvas and apart, though the detections' own spots would overflow or collide
      await waitFor(async () => JSON.parse((await p.getAttribute(`${camSel} canvas.overlay`, 'data-labels')) ?? '[]').length === 2, { message: 'two labels' });
      const over = await p.$eval(`${camSel} canvas.overlay`, (c: unknown) => ({ w: (c as CanvasLike).width, h: (c as CanvasLike).height }));
      const labels = JSON.parse((await p.getAttribute(`${camSel} canvas.overlay`, 'data-labels'))!) as { text: string; x: number; y: number; w: number; h: number }[];
      expect(labels.map((l) => l.text)).toEqual(['car #101 93%', 'truck #102 88%']);
      const sx = over.w / 768;
      const wanted = [660 * sx, 714 * sx];
      expect(wanted[1]! + labels[1]!.w > over.w || wanted[0]! + labels[0]!.w > wanted[1]!, 'the test puts labels where they would collide or overflow').toBe(true);
      for (const l of labels) {
        expect(l.x, l.text).toBeGreaterThanOrEqual(0);
        expect(l.y, l.text).toBeGreaterThanOrEqual(0);
        expect(l.x + l.w, l.text).toBeLessThanOrEqual(over.w);
        expect(l.y + l.h, l.text).toBeLessThanOrEqual(over.h);
      }
      const [a, b] = labels;
      expect(a!.x + a!.w <= b!.x || b!.x + b!.w <= a!.x || a!.y + a!.h <= b!.y || b!.y + b!.h <= a!.y, `labels apart: ${JSON.stringify(labels)}`).toBe(true);
      await p.screenshot({ path: join(tmpdir(), 'roadside-status-page-mpeg1.png') });

      // no counting line (nor zone) configured: the legend lists none
      expect(await p.$$eval(`${camSel} .legend span`, (els: unknown[]) => els.map((e) => (e as { dataset: { legend: string } }).dataset.legend))).toEqual(['box']);
      expect(await p.textContent(`${camSel} .legend`)).not.toContain('line');
      expect(errors).toEqual([]);

      // the page leaves: the muxer's ffmpeg goes
      const pid = side.mpeg1States()[0]!.pid!;
      await p.goto('about:blank');
      await waitFor(() => side.mpeg1States()[0]?.running === false, { timeout_ms: 10_000, message: 'mpeg1 preview stopped' });
      await waitFor(() => !isAlive(pid), { timeout_ms: 5000, message: 'muxer ffmpeg gone' });
    } finally {
      clearInterval(feeder);
      await p.close();
      await side.stop();
    }
  });
});
