// Tracker + analytics time per frame with 50 moving objects (budget: 5 % of ~25 ms model time = 1.25 ms), and the
// tracker alone with 100 (tracker_ms_per_frame_100_objects).
// Run alone: `npx tsx bench/analytics.ts` prints JSON. Wall-clock figures include whatever else the machine does;
// update_cpu_ms_mean is this thread's (process's) CPU time per frame.
import { pathToFileURL } from 'node:url';
import { AnalyticsSchema, CameraSchema } from '../config/schema/index.js';
import { CameraAnalytics } from '../inference/analytics/engine.js';
import { prng, simulate, type SimFrame, type SimObject } from '../testkit/synthetic-scenes.js';
import { Tracker } from '../inference/tracking/tracker.js';

const WIDTH = 1920;
const HEIGHT = 1080;
const LANES = 10;
const PER_LANE = 6;
const FPS = 10;
const FRAMES = 3000;
const WARMUP = 300;
const ROUNDS = 3;
export const BUDGET_MS = 1.25;

/** `lanes` lanes, alternating directions, `perLane` vehicles each, wrapping around (10 × 6: about 50 objects
 * in view; 16 × 7: about 100), with 5 % missed detections, 15 % low-score ones, box jitter and the odd label
 * flicker. */
function scene(lanes = LANES, perLane = PER_LANE): SimObject[] {
  const rand = prng(42);
  const objects: SimObject[] = [];
  const span = WIDTH + 200;
  const pitch = Math.min(90, (HEIGHT - 180) / lanes);
  for (let lane = 0; lane < lanes; lane++) {
    const y = 150 + lane * pitch;
    const dir = lane % 2 === 0 ? 1 : -1;
    const speed = 150 + rand() * 150;
    for (let k = 0; k < perLane; k++) {
      const offset = (k * span) / perLane + rand() * 50;
      const flick = prng(lane * 100 + k);
      objects.push({
        class_name: lane === 3 ? 'truck' : 'car',
        class_id: lane === 3 ? 7 : 2,
        w: lane === 3 ? 130 : 90,
        h: Math.min(lane === 3 ? 80 : 60, pitch - 5),
        at: (t) => {
          const x = (((offset + speed * t) % span) + span) % span;
          return [dir > 0 ? x - 100 : WIDTH + 100 - x, y];
        },
        score: () => {
          const r = flick();
          return r < 0.05 ? undefined : r < 0.2 ? 0.25 + flick() * 0.15 : 0.5 + flick() * 0.45;
        },
        label: () => (flick() < 0.03 ? 'bus' : lane === 3 ? 'truck' : 'car'),
      });
    }
  }
  return objects;
}

function stats(samples: number[]): { mean: number; p50: number; p95: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(s[s.length - 1]!) };
}

export async function benchAnalytics(): Promise<Record<string, number>> {
  const camera = CameraSchema.parse({
    id: 'bench',
    url: 'bench.mp4',
    frame: { width: WIDTH, height: HEIGHT },
    motion: { enabled: false },
    lines: [
      { id: 'mid', a: [960, 50], b: [960, 1070] },
      { id: 'stop', a: [1400, 50], b: [1400, 560], stop_line: true, signal: 's1', stop_direction: 'both' },
    ],
    zones: [
      { id: 'east', polygon: [[0, 50], [900, 50], [900, 1070], [0, 1070]], allowed_direction: [1, 0] },
      { id: 'shoulder', polygon: [[1000, 50], [1900, 50], [1900, 1070], [1000, 1070]], dwell_threshold_s: 30 },
    ],
    calibration: {
      image: [[0, 1080], [1920, 1080], [1600, 100], [320, 100]],
      world: [[0, 0], [30, 0], [30, 80], [0, 80]],
    },
  });
  const analytics = AnalyticsSchema.parse({ signals: [{ id: 's1' }], flow_bin_s: 60 });
  const frames: SimFrame[] = [...simulate(scene(), { fps: FPS, duration_s: (FRAMES - 1) / FPS, jitter_px: 1.5, seed: 7, clip: { width: WIDTH, height: HEIGHT } })];

  // Each measurement runs ROUNDS times over the same frames with fresh state; the round with the lowest mean is
  // reported (the usual defence against a busy machine: interference only ever adds time).
  let best: { wallMs: number[]; cpuUs: number[]; trackerMs: number[]; events: number; ids: number } | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    // Tracker alone.
    const tracker = new Tracker(analytics.tracker, { frame: camera.frame });
    const trackerMs: number[] = [];
    frames.forEach((f, i) => {
      const t0 = performance.now();
      tracker.update(f.detections, f.ctx.mono_ms);
      if (i >= WARMUP) trackerMs.push(performance.now() - t0);
    });

    // Tracker + analytics, events built (the sink only counts them), no evidence (that runs off the thread).
    let events = 0;
    const ca = new CameraAnalytics(camera, analytics, { id: 'bench-box', site: 'bench' }, () => events++, undefined, { evidence: false });
    const wallMs: number[] = [];
    const cpuUs: number[] = [];
    frames.forEach((f, i) => {
      if (i % 300 === 0) ca.setSignal('s1', i % 600 === 0 ? 'red' : 'green', f.ctx.captured_at_ms);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      ca.update(f.ctx, f.detections);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (i >= WARMUP) {
        wallMs.push(dt);
        cpuUs.push(c.user + c.system);
      }
    });
    await ca.flush();
    const mean = wallMs.reduce((a, b) => a + b, 0) / wallMs.length;
    if (!best || mean < best.wallMs.reduce((a, b) => a + b, 0) / best.wallMs.length) {
      best = { wallMs, cpuUs, trackerMs, events, ids: ca.stats().track_ids_issued };
    }
  }
  const { wallMs, cpuUs, trackerMs, events, ids } = best!;
  const dense = trackerDense();
  let objects = 0;
  for (let i = WARMUP; i < frames.length; i++) objects += frames[i]!.detections.length;
  const w = stats(wallMs);
  const t = stats(trackerMs);
  return {
    frames: wallMs.length,
    detections_per_frame: Math.round((objects / wallMs.length) * 10) / 10,
    update_ms_mean: w.mean,
    update_ms_p50: w.p50,
    update_ms_p95: w.p95,
    update_ms_p99: w.p99,
    update_ms_max: w.max,
    update_cpu_ms_mean: Math.round(cpuUs.reduce((a, b) => a + b, 0) / cpuUs.length) / 1000,
    tracker_ms_mean: t.mean,
    tracker_ms_p95: t.p95,
    tracker_ms_per_frame_100_objects: dense.mean,
    tracker_ms_p95_100_objects: dense.p95,
    detections_per_frame_100_objects: dense.detections,
    events_per_frame: Math.round((events / frames.length) * 100) / 100,
    track_ids_issued: ids,
    budget_ms: BUDGET_MS,
  };
}

/** The tracker alone on about 100 objects in view (lowest mean of ROUNDS runs). */
function trackerDense(): { mean: number; p95: number; detections: number } {
  const analytics = AnalyticsSchema.parse({});
  const frames: SimFrame[] = [...simulate(scene(16, 7), { fps: FPS, duration_s: (FRAMES - 1) / FPS, jitter_px: 1.5, seed: 9, clip: { width: WIDTH, height: HEIGHT } })];
  let best: number[] | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const tracker = new Tracker(analytics.tracker, { frame: { width: WIDTH, height: HEIGHT } });
    const ms: number[] = [];
    frames.forEach((f, i) => {
      const t0 = performance.now();
      tracker.update(f.detections, f.ctx.mono_ms);
      if (i >= WARMUP) ms.push(performance.now() - t0);
    });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    if (!best || mean(ms) < mean(best)) best = ms;
  }
  let n = 0;
  for (let i = WARMUP; i < frames.length; i++) n += frames[i]!.detections.length;
  const s = stats(best!);
  return { mean: s.mean, p95: s.p95, detections: Math.round((n / (frames.length - WARMUP)) * 10) / 10 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchAnalytics().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
