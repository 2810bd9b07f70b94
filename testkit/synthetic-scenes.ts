/**
 * Synthetic scenes: ground-truth object paths turned into per-frame detections with box jitter, score
 * flicker and misses. Used by the tests and the benchmark; deterministic for a given seed.
 */
import type { Box, Detection, FrameContext } from '../inference/tracking/types.js';
import type { Vec2 } from '../inference/analytics/geometry.js';

export interface SimObject {
  class_name: string;
  class_id?: number;
  /** Box size, pixels (constant, or a function of the anchor for perspective). */
  w: number | ((p: Vec2) => number);
  h: number | ((p: Vec2) => number);
  /** Anchor (bottom centre of the box) at time `t_s`, undefined while not in the scene. */
  at(t_s: number): Vec2 | undefined;
  /** Detection score at time `t_s` / frame index; undefined: not detected. Default 0.9. */
  score?: (t_s: number, frame: number) => number | undefined;
  /** Detected class at a frame, for label flicker. Default `class_name`. */
  label?: (t_s: number, frame: number) => string;
}

/** Straight line from `from` at `t0_s` to `to` at `t1_s`; absent outside that time. */
export function linearPath(from: Vec2, to: Vec2, t0_s: number, t1_s: number): (t_s: number) => Vec2 | undefined {
  return (t) => {
    if (t < t0_s || t > t1_s) return undefined;
    const f = (t - t0_s) / (t1_s - t0_s);
    return [from[0] + f * (to[0] - from[0]), from[1] + f * (to[1] - from[1])];
  };
}

/** Piecewise-linear path through [t_s, x, y] waypoints; absent before the first and after the last. */
export function waypoints(points: ReadonlyArray<[number, number, number]>): (t_s: number) => Vec2 | undefined {
  return (t) => {
    if (points.length === 0 || t < points[0]![0] || t > points[points.length - 1]![0]) return undefined;
    for (let i = 1; i < points.length; i++) {
      const [t0, x0, y0] = points[i - 1]!;
      const [t1, x1, y1] = points[i]!;
      if (t <= t1) {
        const f = t1 > t0 ? (t - t0) / (t1 - t0) : 1;
        return [x0 + f * (x1 - x0), y0 + f * (y1 - y0)];
      }
    }
    return undefined;
  };
}

/** Small, fast, seeded PRNG (mulberry32), uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box-Muller). */
export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export interface SceneOptions {
  fps: number;
  duration_s: number;
  /** Standard deviation of each box edge, pixels. Default 0. */
  jitter_px?: number;
  seed?: number;
  camera_id?: string;
  /** Wall clock of t = 0, epoch ms. Default 2025-01-01T00:00:00Z. */
  start_wall_ms?: number;
  /** Monotonic clock of t = 0, ms. Default 1000. */
  start_mono_ms?: number;
  /** Clip boxes to this frame, as a detector does; boxes less than a quarter visible are not detected. */
  clip?: { width: number; height: number };
  /** Frames to skip (motion gating, drops): return true to leave frame `i` at `t_s` out. */
  skip?: (t_s: number, frame: number) => boolean;
}

export interface SimFrame {
  t_s: number;
  index: number;
  ctx: FrameContext;
  detections: Detection[];
}

export const SIM_EPOCH_MS = Date.UTC(2025, 0, 1);

/** The frames of a scene, in order. */
export function* simulate(objects: readonly SimObject[], opts: SceneOptions): Generator<SimFrame> {
  const rand = prng(opts.seed ?? 1);
  const jitter = opts.jitter_px ?? 0;
  const wall0 = opts.start_wall_ms ?? SIM_EPOCH_MS;
  const mono0 = opts.start_mono_ms ?? 1000;
  const n = Math.floor(opts.duration_s * opts.fps);
  for (let i = 0; i <= n; i++) {
    const t = i / opts.fps;
    if (opts.skip?.(t, i)) continue;
    const detections: Detection[] = [];
    for (const o of objects) {
      const p = o.at(t);
      if (!p) continue;
      const score = o.score ? o.score(t, i) : 0.9;
      if (score === undefined) continue;
      const w = typeof o.w === 'number' ? o.w : o.w(p);
      const h = typeof o.h === 'number' ? o.h : o.h(p);
      const j = () => (jitter > 0 ? gaussian(rand) * jitter : 0);
      const name = o.label ? o.label(t, i) : o.class_name;
      let box: Box = [p[0] - w / 2 + j(), p[1] - h + j(), p[0] + w / 2 + j(), p[1] + j()];
      if (opts.clip) {
        const c: Box = [Math.max(0, box[0]), Math.max(0, box[1]), Math.min(opts.clip.width, box[2]), Math.min(opts.clip.height, box[3])];
        if (c[2] <= c[0] || c[3] <= c[1] || (c[2] - c[0]) * (c[3] - c[1]) < 0.25 * w * h) continue;
        box = c;
      }
      detections.push({
        box,
        score,
        class_id: name === o.class_name ? (o.class_id ?? 0) : 99,
        class_name: name,
      });
    }
    yield {
      t_s: t,
      index: i,
      ctx: { camera_id: opts.camera_id ?? 'cam1', captured_at_ms: wall0 + t * 1000, mono_ms: mono0 + t * 1000, clock_synced: true },
      detections,
    };
  }
}
