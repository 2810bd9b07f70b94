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
import { ffmpegProcesses, waitFor } from '../../../testkit/processes.js';
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

    // the preview ffmpeg runs while the page watches
    await waitFor(() => server.previewStates()[0]?.running && server.previewStates()[0]!.frames > 0, { timeout_ms: 15_000, message: 'preview frames' });
    expect(ffmpegProcesses(marker).length).toBeGreaterThanOrEqual(1);

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
});
