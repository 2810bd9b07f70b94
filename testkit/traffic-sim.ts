/**
 * Simulation of traffic scenes with ground truth: vehicles (cuboids) driving known trajectories on a road
 * plane, seen by a pinhole camera and rendered per frame as simulated detector output: the bounding box of the
 * projected cuboid, cut off at the frame edge, with box noise, score jitter, missed detections, class confusion
 * (car/truck/bus on one vehicle for a few frames), duplicate boxes of another vehicle class on one vehicle, and
 * neighbours hiding each other. Deterministic for a seed. The scenes themselves are in traffic-scenes.ts, the
 * ground truth and scoring of counts in traffic-counts.ts.
 */
import type { Vec2 } from '../inference/analytics/geometry.js';
import type { Box, Detection } from '../inference/tracking/types.js';
import { gaussian, prng, SIM_EPOCH_MS, type SimFrame } from './synthetic-scenes.js';

// ---------------------------------------------------------------------------------------------------------
// Camera

export interface CameraPose {
  width: number;
  height: number;
  f_px: number;
  /** Height of the camera above the road, metres. */
  height_m: number;
  /** Tilt below the horizon, degrees. */
  pitch_deg: number;
  /** Azimuth of the view from +Y (along the road) towards +X, degrees. Default 0. */
  yaw_deg?: number;
  /** Lateral position of the camera, metres. Default 0. */
  x_m?: number;
}

/** Ground frame: X across the road (metres, right of the camera), Y along it (away from the camera), Z up. */
export class RoadCamera {
  private readonly sp: number;
  private readonly cp: number;
  private readonly sy: number;
  private readonly cy: number;

  constructor(readonly pose: CameraPose) {
    const p = (pose.pitch_deg * Math.PI) / 180;
    const y = ((pose.yaw_deg ?? 0) * Math.PI) / 180;
    this.sp = Math.sin(p);
    this.cp = Math.cos(p);
    this.sy = Math.sin(y);
    this.cy = Math.cos(y);
  }

  /** Image point of a ground-frame point, or undefined behind (or nearly at) the camera. */
  project(X: number, Y: number, Z: number): Vec2 | undefined {
    const dX = X - (this.pose.x_m ?? 0);
    const dZ = Z - this.pose.height_m;
    const right = dX * this.cy - Y * this.sy;
    const fwd = dX * this.sy + Y * this.cy;
    const zc = fwd * this.cp - dZ * this.sp;
    if (zc < 0.5) return undefined;
    const yc = -(fwd * this.sp + dZ * this.cp);
    return [this.pose.width / 2 + (this.pose.f_px * right) / zc, this.pose.height / 2 + (this.pose.f_px * yc) / zc];
  }

  /** Distance of a ground point along the optical axis (who hides whom), metres. */
  depth(X: number, Y: number): number {
    const dX = X - (this.pose.x_m ?? 0);
    return (dX * this.sy + Y * this.cy) * this.cp + this.pose.height_m * this.sp;
  }

  /** Bounding box of a vehicle's projected cuboid (not cut off at the frame), or undefined if behind the camera. */
  boxOf(s: VehicleState, d: Dims): Box | undefined {
    const px = s.hy;
    const py = -s.hx;
    let x1 = Infinity;
    let y1 = Infinity;
    let x2 = -Infinity;
    let y2 = -Infinity;
    for (const a of [-0.5, 0.5]) {
      for (const b of [-0.5, 0.5]) {
        const X = s.x + a * d.l * s.hx + b * d.w * px;
        const Y = s.y + a * d.l * s.hy + b * d.w * py;
        for (const Z of [0, d.h]) {
          const q = this.project(X, Y, Z);
          if (!q) return undefined;
          if (q[0] < x1) x1 = q[0];
          if (q[0] > x2) x2 = q[0];
          if (q[1] < y1) y1 = q[1];
          if (q[1] > y2) y2 = q[1];
        }
      }
    }
    return [x1, y1, x2, y2];
  }

  /** Image end points of the ground segment p-q (a counting line drawn on the road). */
  groundLine(p: Vec2, q: Vec2): { a: Vec2; b: Vec2 } {
    return { a: round2(this.project(p[0], p[1], 0)!), b: round2(this.project(q[0], q[1], 0)!) };
  }

  /** Calibration (camera config) from four ground points. */
  calibration(ground: readonly Vec2[]): { image: Vec2[]; world: Vec2[] } {
    return { image: ground.map((g) => this.project(g[0], g[1], 0)!), world: ground.map((g) => [g[0], g[1]]) };
  }
}

const round2 = (p: Vec2): Vec2 => [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100];

// ---------------------------------------------------------------------------------------------------------
// Vehicles

export interface Dims {
  /** Width, length, height, metres. */
  w: number;
  l: number;
  h: number;
}

export const DIMS = {
  motorcycle: { w: 0.75, l: 1.9, h: 1.6 },
  car: { w: 1.8, l: 4.4, h: 1.5 },
  pickup: { w: 1.9, l: 5.3, h: 1.8 },
  truck: { w: 2.5, l: 7.5, h: 3.2 },
  bus: { w: 2.5, l: 11, h: 3.2 },
} as const satisfies Record<string, Dims>;

export const CLASS_IDS: Record<string, number> = { person: 0, bicycle: 1, car: 2, motorcycle: 3, bus: 5, truck: 7 };

/** Centre of the footprint and unit heading on the ground. */
export interface VehicleState {
  x: number;
  y: number;
  hx: number;
  hy: number;
}

/** A detector fault on a vehicle from t0_s to t1_s: its box labelled `class_name`, or a second box of that class. */
export interface Fault {
  kind: 'confusion' | 'duplicate';
  t0_s: number;
  t1_s: number;
  class_name: string;
}

export interface Vehicle {
  id: number;
  class_name: string;
  dims: Dims;
  /** Where the vehicle is at t, undefined while not on the road. */
  at(t_s: number): VehicleState | undefined;
  faults: Fault[];
  /** Ground speed at t, m/s (for the speed tests). */
  speed?: (t_s: number) => number;
}

/**
 * Distance travelled since t0 under phases of constant acceleration ([duration s, m/s²]), cruising after the
 * last; a braking phase that would go backwards stops at zero speed and waits out its duration.
 */
export function kinematics(t0: number, v0: number, phases: ReadonlyArray<readonly [number, number]> = []): { s: (t: number) => number | undefined; v: (t: number) => number } {
  const knots: Array<{ t: number; s: number; v: number; a: number }> = [];
  let t = t0;
  let s = 0;
  let v = v0;
  for (const [dur, a] of phases) {
    if (!(dur > 0)) continue;
    const d = a < 0 && v + a * dur < 0 ? v / -a : dur;
    knots.push({ t, s, v, a });
    s += v * d + (a * d * d) / 2;
    v = Math.max(0, v + a * d);
    t += d;
    if (d < dur) {
      knots.push({ t, s, v: 0, a: 0 });
      t += dur - d;
    }
  }
  knots.push({ t, s, v, a: 0 });
  const knot = (tt: number) => {
    let k = knots[0]!;
    for (const x of knots) if (x.t <= tt) k = x;
    return k;
  };
  return {
    s: (tt) => {
      if (tt < t0) return undefined;
      const k = knot(tt);
      const dt = tt - k.t;
      return k.s + k.v * dt + (k.a * dt * dt) / 2;
    },
    v: (tt) => {
      const k = knot(tt);
      return Math.max(0, k.v + k.a * (tt - k.t));
    },
  };
}

/** A straight drive from `from` along unit `heading` for `length_m`, with an optional lateral wobble. */
export function drive(from: Vec2, heading: Vec2, length_m: number, s: (t: number) => number | undefined, wobble?: { amp_m: number; period_s: number; phase: number }): (t: number) => VehicleState | undefined {
  return (t) => {
    const d = s(t);
    if (d === undefined || d > length_m) return undefined;
    const lat = wobble ? wobble.amp_m * Math.sin((2 * Math.PI * t) / wobble.period_s + wobble.phase) : 0;
    return { x: from[0] + d * heading[0] + lat * heading[1], y: from[1] + d * heading[1] - lat * heading[0], hx: heading[0], hy: heading[1] };
  };
}

// ---------------------------------------------------------------------------------------------------------
// Detector simulation

export interface DetectorModel {
  /** Box edge noise: jitter_px + jitter_frac × box size, one standard deviation. */
  jitter_px: number;
  jitter_frac: number;
  /** Probability of a missed detection per vehicle and frame. */
  p_miss: number;
  /** Scores of well visible objects, uniform in [lo, hi]; smaller and partly hidden ones score lower. */
  score: [number, number];
  /** A vehicle hidden behind nearer ones over this fraction of its box is not detected; undefined: never hidden. */
  hide_at: number | undefined;
  /** Boxes less than this tall are not detected (too far), pixels. */
  min_h_px: number;
}

export const CLEAN_DETECTOR: DetectorModel = { jitter_px: 0.7, jitter_frac: 0.003, p_miss: 0, score: [0.75, 0.95], hide_at: undefined, min_h_px: 16 };
export const HARD_DETECTOR: DetectorModel = { jitter_px: 1, jitter_frac: 0.012, p_miss: 0.06, score: [0.45, 0.95], hide_at: 0.6, min_h_px: 16 };

export interface TrafficScene {
  camera: RoadCamera;
  vehicles: Vehicle[];
  duration_s: number;
  detector: DetectorModel;
  /** The camera's `lines`, `calibration` etc. for CameraSchema (id, url, frame and motion added by cameraInput). */
  config: Record<string, unknown>;
  /** Signal changes [t_s, state]. */
  signals: Array<[number, 'red' | 'amber' | 'green']>;
}

/** The camera configuration input of a scene (for CameraSchema.parse). */
export function cameraInput(scene: TrafficScene, id = 'cam1'): Record<string, unknown> {
  const { width, height } = scene.camera.pose;
  return { id, url: 'clip.mp4', frame: { width, height }, motion: { enabled: false }, ...scene.config };
}

const VISIBLE_MIN = 0.25;

export interface TrafficFrame extends SimFrame {
  /** Per detection, the id of the vehicle it is on. */
  vehicle_ids: number[];
}

/** The scene's frames as the detector would report them. */
export function* renderScene(scene: TrafficScene, opts: { fps: number; seed?: number; start_mono_ms?: number }): Generator<TrafficFrame> {
  const rand = prng(opts.seed ?? 1);
  const det = scene.detector;
  const { width: W, height: H } = scene.camera.pose;
  const n = Math.floor(scene.duration_s * opts.fps);
  const mono0 = opts.start_mono_ms ?? 1000;
  for (let i = 0; i <= n; i++) {
    const t = i / opts.fps;
    const seen: Array<{ v: Vehicle; box: Box; depth: number }> = [];
    for (const v of scene.vehicles) {
      const s = v.at(t);
      if (!s) continue;
      const box = scene.camera.boxOf(s, v.dims);
      if (box) seen.push({ v, box, depth: scene.camera.depth(s.x, s.y) });
    }
    const detections: Detection[] = [];
    const vehicle_ids: number[] = [];
    for (const o of seen) {
      const [x1, y1, x2, y2] = o.box;
      const area = (x2 - x1) * (y2 - y1);
      const c: Box = [Math.max(0, x1), Math.max(0, y1), Math.min(W, x2), Math.min(H, y2)];
      if (c[2] <= c[0] || c[3] <= c[1] || (c[2] - c[0]) * (c[3] - c[1]) < VISIBLE_MIN * area || y2 - y1 < det.min_h_px) continue;
      const hidden = covered(o.box, seen.filter((p) => p !== o && p.depth < o.depth && intersects(o.box, p.box)).map((p) => p.box));
      const r = rand();
      const jitter = [gaussian(rand), gaussian(rand), gaussian(rand), gaussian(rand)];
      if ((det.hide_at !== undefined && hidden >= det.hide_at) || r < det.p_miss) continue;
      const size = Math.max(x2 - x1, y2 - y1);
      const sd = det.jitter_px + det.jitter_frac * size;
      const box = clip([x1 + sd * jitter[0]!, y1 + sd * jitter[1]!, x2 + sd * jitter[2]!, y2 + sd * jitter[3]!], W, H);
      const small = Math.min(1, (y2 - y1) / 60);
      const base = det.score[0] + rand() * (det.score[1] - det.score[0]);
      const score = Math.max(0.05, Math.min(0.99, base * (0.75 + 0.25 * small) * (det.hide_at !== undefined ? 1 - 0.6 * hidden : 1)));
      let name = o.v.class_name;
      for (const f of o.v.faults) {
        if (t < f.t0_s || t > f.t1_s) continue;
        if (f.kind === 'confusion') name = f.class_name;
        else {
          // A second box on the same vehicle: a little smaller and shifted (IoU ~0.7), scored a bit lower.
          const w = x2 - x1;
          const h = y2 - y1;
          const dup = clip([x1 + 0.08 * w + sd * gaussian(rand), y1 + 0.1 * h, x2 - 0.02 * w, y2 - 0.03 * h + sd * gaussian(rand)], W, H);
          detections.push({ box: dup, score: Math.max(0.46, score - 0.1), class_id: CLASS_IDS[f.class_name] ?? 99, class_name: f.class_name });
          vehicle_ids.push(o.v.id);
        }
      }
      detections.push({ box, score, class_id: CLASS_IDS[name] ?? 99, class_name: name });
      vehicle_ids.push(o.v.id);
    }
    yield {
      t_s: t,
      index: i,
      ctx: { camera_id: 'cam1', captured_at_ms: SIM_EPOCH_MS + t * 1000, mono_ms: mono0 + t * 1000, clock_synced: true },
      detections,
      vehicle_ids,
    };
  }
}

const intersects = (a: Box, b: Box): boolean => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

/** Fraction of box `a` under the union of `over` (sampled on an 8 × 8 grid). */
function covered(a: Box, over: readonly Box[]): number {
  if (over.length === 0) return 0;
  const N = 8;
  let n = 0;
  for (let i = 0; i < N; i++) {
    const x = a[0] + ((i + 0.5) / N) * (a[2] - a[0]);
    for (let j = 0; j < N; j++) {
      const y = a[1] + ((j + 0.5) / N) * (a[3] - a[1]);
      if (over.some((b) => x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3])) n++;
    }
  }
  return n / (N * N);
}

const clip = (b: Box, W: number, H: number): Box => [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(W, b[2]), Math.min(H, b[3])];
