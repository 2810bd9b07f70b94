// Ground positions of one track over time, the speed fitted to them, and the speed meter of a camera.
import { makeEvent, type EventObject } from '../../contract/event.js';
import type { Box } from '../tracking/types.js';
import { anchorOf } from './geometry.js';
import type { Homography } from './homography.js';
import type { Crossing } from './lines.js';
import { round, type EventOutlet, type Stamp } from './outlet.js';

/** Positions kept per track: enough for the longest window at 30 fps. */
const CAPACITY = 128;
/** Positions older than this are dropped, ms. */
const KEEP_MS = 6000;
/** Fewer positions, or a shorter span, and no speed is stated. */
export const MIN_SAMPLES = 3;
export const MIN_SPAN_MS = 400;
/** Above this a measurement is a tracking error, not a vehicle. */
export const MAX_PLAUSIBLE_KMH = 300;

export interface SpeedEstimate {
  /** Ground speed, m/s. */
  speed_ms: number;
  /** One standard deviation, m/s. */
  sigma_ms: number;
  /** Time span of the fitted positions, s. */
  span_s: number;
  samples: number;
  /** Ground distance between the fitted positions at the ends of the window, m. */
  distance_m: number;
  /** Unit direction of travel on the ground. */
  heading: [number, number];
}

/** Ring buffer of (monotonic ms, x m, y m). */
export class GroundTrack {
  private readonly t = new Float64Array(CAPACITY);
  private readonly x = new Float64Array(CAPACITY);
  private readonly y = new Float64Array(CAPACITY);
  private start = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  push(mono_ms: number, x: number, y: number): void {
    if (this.n > 0 && mono_ms <= this.t[(this.start + this.n - 1) % CAPACITY]!) return; // same frame twice
    while (this.n > 0 && mono_ms - this.t[this.start]! > KEEP_MS) this.drop();
    if (this.n === CAPACITY) this.drop();
    const i = (this.start + this.n) % CAPACITY;
    this.t[i] = mono_ms;
    this.x[i] = x;
    this.y[i] = y;
    this.n++;
  }

  private drop(): void {
    this.start = (this.start + 1) % CAPACITY;
    this.n--;
  }

  /**
   * Least-squares constant-velocity fit over the positions with from_ms ≤ t ≤ to_ms.
   *
   * Uncertainty: a speed is a displacement over a time, and each end of the displacement is off by about
   * `position_error_m` (box edge, calibration), so σ_v = √2·σ_p / span. This is deliberately the two-point
   * value: successive positions of one vehicle share most of their error (same box bias, same spot of the
   * calibration), so fitting more of them does not average it away. It is combined in quadrature with the
   * fit's own standard error from its residuals, which grows when the track is erratic (a bad association).
   */
  fit(from_ms: number, to_ms: number, position_error_m: number): SpeedEstimate | undefined {
    let n = 0;
    let st = 0;
    let sx = 0;
    let sy = 0;
    let t0 = Infinity;
    let t1 = -Infinity;
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      const t = this.t[i]!;
      if (t < from_ms || t > to_ms) continue;
      n++;
      st += t;
      sx += this.x[i]!;
      sy += this.y[i]!;
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
    }
    if (n < MIN_SAMPLES || t1 - t0 < MIN_SPAN_MS) return undefined;
    const tm = st / n;
    const xm = sx / n;
    const ym = sy / n;
    let stt = 0;
    let stx = 0;
    let sty = 0;
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      const t = this.t[i]!;
      if (t < from_ms || t > to_ms) continue;
      const dt = (t - tm) / 1000;
      stt += dt * dt;
      stx += dt * (this.x[i]! - xm);
      sty += dt * (this.y[i]! - ym);
    }
    const vx = stx / stt;
    const vy = sty / stt;
    let rxx = 0;
    let ryy = 0;
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      const t = this.t[i]!;
      if (t < from_ms || t > to_ms) continue;
      const dt = (t - tm) / 1000;
      const ex = this.x[i]! - xm - vx * dt;
      const ey = this.y[i]! - ym - vy * dt;
      rxx += ex * ex;
      ryy += ey * ey;
    }
    const v = Math.hypot(vx, vy);
    const span = (t1 - t0) / 1000;
    const dof = n - 2;
    const varX = dof > 0 ? rxx / dof / stt : 0;
    const varY = dof > 0 ? ryy / dof / stt : 0;
    const fitVar = v > 1e-9 ? (vx * vx * varX + vy * vy * varY) / (v * v) : (varX + varY) / 2;
    const posVar = (2 * position_error_m * position_error_m) / (span * span);
    if (v * 3.6 > MAX_PLAUSIBLE_KMH) return undefined;
    return {
      speed_ms: v,
      sigma_ms: Math.sqrt(posVar + fitVar),
      span_s: span,
      samples: n,
      distance_m: v * span,
      heading: v > 1e-9 ? [vx / v, vy / v] : [0, 0],
    };
  }
}

/** Percentile by linear interpolation between closest ranks (as spreadsheets' PERCENTILE.INC). */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Speed at a line is fitted over the positions this long either side of the crossing, ms. */
export const SPEED_HALF_WINDOW_MS = 600;
/** The running speed of an object is fitted over its positions this far back, ms. */
export const SPEED_TRAIL_MS = 1200;

/** Told the speed measured at a crossing, km/h, or undefined when none could be fitted. */
export type SpeedListener = (kmh: number | undefined) => void;

interface PendingSpeed {
  lineId: string;
  direction: 'in' | 'out';
  /** Crossing time. */
  mono: number;
  due: number;
  /** The frame that saw the crossing: the speed event carries its time and the object as it was. */
  frame: Stamp;
  object: EventObject;
  listener: SpeedListener | undefined;
}

interface Motion {
  ground: GroundTrack;
  speed: SpeedEstimate | undefined;
  maxKmh: number | undefined;
  pending: PendingSpeed[];
}

/**
 * Ground speed of the tracks, with a calibrated camera only: the running speed (objects in events) and the
 * speed at each line crossing, a `speed` event once the positions SPEED_HALF_WINDOW_MS after it are in.
 */
export class SpeedMeter {
  private readonly tracks = new Map<number, Motion>();
  private readonly withPending = new Set<Motion>();

  constructor(
    private readonly homography: Homography | undefined,
    private readonly positionErrorM: number,
    private readonly outlet: EventOutlet,
  ) {}

  begin(trackId: number): void {
    if (this.homography) this.tracks.set(trackId, { ground: new GroundTrack(), speed: undefined, maxKmh: undefined, pending: [] });
  }

  /** Whether the track's speed is measured (camera calibrated). */
  measures(trackId: number): boolean {
    return this.tracks.has(trackId);
  }

  /** `raw`: the detection's box this frame (the filtered box lags), undefined when the track was not seen. */
  observe(trackId: number, raw: Box | undefined, mono: number): void {
    const m = this.tracks.get(trackId);
    if (!m || !raw || !this.homography) return;
    const [u, v] = anchorOf(raw);
    const g = this.homography.toWorld(u, v);
    if (!g) return;
    m.ground.push(mono, g[0], g[1]);
    const est = m.ground.fit(mono - SPEED_TRAIL_MS, mono, this.positionErrorM);
    if (!est) return;
    m.speed = est;
    const kmh = est.speed_ms * 3.6;
    if (est.span_s * 1000 >= 0.75 * SPEED_TRAIL_MS && (m.maxKmh === undefined || kmh > m.maxKmh)) m.maxKmh = kmh;
  }

  /** Running speed of the track, if known. */
  current(trackId: number): SpeedEstimate | undefined {
    return this.tracks.get(trackId)?.speed;
  }

  /** Highest running speed over a full trail, km/h. */
  maxKmh(trackId: number): number | undefined {
    return this.tracks.get(trackId)?.maxKmh;
  }

  /** Measures the speed at a crossing once the positions after it are in; `listener` hears the result. */
  pend(c: Crossing, listener: SpeedListener | undefined): void {
    const m = this.tracks.get(c.track.id);
    if (!m) return;
    m.pending.push({ lineId: c.line.id, direction: c.direction, mono: c.mono, due: c.mono + SPEED_HALF_WINDOW_MS, frame: c.now, object: c.object, listener });
    this.withPending.add(m);
  }

  /** Measures the crossings whose window is complete by `mono`. */
  resolveDue(mono: number): void {
    for (const m of this.withPending) {
      const keep: PendingSpeed[] = [];
      for (const p of m.pending) {
        if (mono >= p.due) this.resolve(m, p);
        else keep.push(p);
      }
      m.pending = keep;
      if (keep.length === 0) this.withPending.delete(m);
    }
  }

  /** The track ended: measures its pending crossings with what there is. */
  settle(trackId: number): void {
    const m = this.tracks.get(trackId);
    if (!m) return;
    for (const p of m.pending) this.resolve(m, p);
    m.pending.length = 0;
    this.withPending.delete(m);
  }

  drop(trackId: number): void {
    this.tracks.delete(trackId);
  }

  private resolve(m: Motion, p: PendingSpeed): void {
    const est = m.ground.fit(p.mono - SPEED_HALF_WINDOW_MS, p.mono + SPEED_HALF_WINDOW_MS, this.positionErrorM);
    const kmh = est ? est.speed_ms * 3.6 : undefined;
    p.listener?.(kmh);
    if (!est || kmh === undefined) return;
    this.outlet.send(
      makeEvent({
        type: 'speed',
        ...this.outlet.envelope(p.frame),
        object: { ...p.object, speed_kmh: round(kmh, 1), speed_uncertainty_kmh: round(est.sigma_ms * 3.6, 1) },
        rule: { kind: 'line', id: p.lineId },
        attributes: { direction: p.direction, window_s: round(est.span_s, 3), samples: est.samples, distance_m: round(est.distance_m, 2) },
      }),
    );
  }
}
