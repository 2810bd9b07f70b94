// Ground positions of one track over time, the speed fitted to them, and the speed meter of a camera.
import { makeEvent, type EventObject } from '../../contract/event.js';
import type { Box } from '../tracking/types.js';
import type { Vec2 } from './geometry.js';
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
/** The bottom centre is fitted when it was whole over at least this fraction of the longest whole span. */
const CENTRE_PREFERENCE = 0.8;
/**
 * The bottom edge of a box is where the vehicle meets the road, but its sides are not ground points: motion
 * along the image rows (across the image) is measured from them and is off by several per cent in oblique
 * views (a simulated 60° view reads 3-11 % low; a view down the road, where vehicles move across the rows,
 * is exact). Stated as this fraction of the speed's component along the rows, one σ.
 */
const ALONG_ROWS_SIGMA = 0.07;
/** A box side this close to the frame edge (pixels, or this fraction of the frame size if more) is cut off. */
const EDGE_MARGIN_PX = 2;
const EDGE_MARGIN_FRACTION = 0.004;

/** The point of a box whose ground positions are fitted. */
export type SpeedReference = 'bottom_centre' | 'bottom_left' | 'bottom_right';
const REFS: readonly SpeedReference[] = ['bottom_centre', 'bottom_left', 'bottom_right'];
/** Bit of the bottom centre in a sample's mask (reference r has bit 1 << r). */
const CENTRE = 1;

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
  /** The box point fitted. */
  reference: SpeedReference;
  /** Positions in the window not fitted: the reference point was on a side of the box cut off by the frame edge. */
  cut_off: number;
}

/**
 * Ring buffer of ground positions over time: per sample (monotonic ms) the ground position of each reference
 * point of the box (bottom centre, bottom-left and bottom-right corner), or none where the box was cut off by
 * the frame edge there: a box cut off at the frame edge is not the vehicle's, its centre and cut side move
 * slower than the vehicle (or not at all).
 */
export class GroundTrack {
  private readonly t = new Float64Array(CAPACITY);
  private readonly x = new Float64Array(CAPACITY * 3);
  private readonly y = new Float64Array(CAPACITY * 3);
  private readonly mask = new Uint8Array(CAPACITY);
  private start = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  /** `points`: ground position of each reference (REFS order), undefined where it is not whole. */
  push(mono_ms: number, points: ReadonlyArray<Vec2 | undefined>): void {
    if (this.n > 0 && mono_ms <= this.t[(this.start + this.n - 1) % CAPACITY]!) return; // same frame twice
    while (this.n > 0 && mono_ms - this.t[this.start]! > KEEP_MS) this.drop();
    if (this.n === CAPACITY) this.drop();
    const i = (this.start + this.n) % CAPACITY;
    this.t[i] = mono_ms;
    let mask = 0;
    for (let r = 0; r < 3; r++) {
      const p = points[r];
      if (!p) continue;
      mask |= 1 << r;
      this.x[i * 3 + r] = p[0];
      this.y[i * 3 + r] = p[1];
    }
    this.mask[i] = mask;
    this.n++;
  }

  private drop(): void {
    this.start = (this.start + 1) % CAPACITY;
    this.n--;
  }

  /** Whether a position in from_ms ≤ t ≤ to_ms was of a box cut off by the frame edge. */
  cutOffIn(from_ms: number, to_ms: number): boolean {
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      const t = this.t[i]!;
      if (t >= from_ms && t <= to_ms && !(this.mask[i]! & CENTRE)) return true;
    }
    return false;
  }

  /**
   * Least-squares constant-velocity fit over the positions with from_ms ≤ t ≤ to_ms of one reference point:
   * the bottom centre where the box stayed whole over (nearly) as long a span as any, else the bottom corner
   * on the side that stayed whole longest (a vehicle entering or leaving through a side of the frame).
   *
   * Uncertainty, from the positions actually fitted: a speed is a displacement over a time, and each end of
   * the displacement is off by about `position_error_m` (box edge, calibration), so σ_v = √2·σ_p / span. This
   * is deliberately the two-point value: successive positions of one vehicle share most of their error (same
   * box bias, same spot of the calibration), so fitting more of them does not average it away. It is combined
   * in quadrature with the fit's own standard error from its residuals, which grows when the track is erratic
   * (a bad association).
   */
  fit(from_ms: number, to_ms: number, position_error_m: number): SpeedEstimate | undefined {
    let total = 0;
    const count = [0, 0, 0];
    const t0 = [Infinity, Infinity, Infinity];
    const t1 = [-Infinity, -Infinity, -Infinity];
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      const t = this.t[i]!;
      if (t < from_ms || t > to_ms) continue;
      total++;
      for (let r = 0; r < 3; r++) {
        if (!(this.mask[i]! & (1 << r))) continue;
        count[r]!++;
        if (t < t0[r]!) t0[r] = t;
        if (t > t1[r]!) t1[r] = t;
      }
    }
    const span = (r: number) => (count[r]! >= MIN_SAMPLES && t1[r]! - t0[r]! >= MIN_SPAN_MS ? t1[r]! - t0[r]! : -1);
    const spans = [span(0), span(1), span(2)];
    const longest = Math.max(...spans);
    if (longest < 0) return undefined;
    // The centre averages the jitter of both sides: preferred unless a corner was followed much longer.
    let ref = 0;
    if (spans[0]! < CENTRE_PREFERENCE * longest) ref = spans[1]! > spans[2]! || (spans[1] === spans[2] && count[1]! >= count[2]!) ? 1 : 2;
    const est = this.fitRef(ref, from_ms, to_ms, position_error_m);
    if (est) est.cut_off = total - est.samples;
    return est;
  }

  private fitRef(r: number, from_ms: number, to_ms: number, position_error_m: number): SpeedEstimate | undefined {
    const bit = 1 << r;
    const inside = (i: number) => {
      const t = this.t[i]!;
      return t >= from_ms && t <= to_ms && (this.mask[i]! & bit) !== 0;
    };
    let n = 0;
    let st = 0;
    let sx = 0;
    let sy = 0;
    let t0 = Infinity;
    let t1 = -Infinity;
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      if (!inside(i)) continue;
      const t = this.t[i]!;
      n++;
      st += t;
      sx += this.x[i * 3 + r]!;
      sy += this.y[i * 3 + r]!;
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
      if (!inside(i)) continue;
      const dt = (this.t[i]! - tm) / 1000;
      stt += dt * dt;
      stx += dt * (this.x[i * 3 + r]! - xm);
      sty += dt * (this.y[i * 3 + r]! - ym);
    }
    const vx = stx / stt;
    const vy = sty / stt;
    let rxx = 0;
    let ryy = 0;
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % CAPACITY;
      if (!inside(i)) continue;
      const dt = (this.t[i]! - tm) / 1000;
      const ex = this.x[i * 3 + r]! - xm - vx * dt;
      const ey = this.y[i * 3 + r]! - ym - vy * dt;
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
      reference: REFS[r]!,
      cut_off: 0,
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
/**
 * Near the frame edge the window may hold too few whole boxes: then it widens to this either side of the
 * crossing (and the speed waits for it), ms.
 */
export const SPEED_WIDE_HALF_WINDOW_MS = 1200;
/** The running speed of an object is fitted over its positions this far back, ms. */
export const SPEED_TRAIL_MS = 1200;
/** A fit spanning less than this fraction of its window is short (widened when boxes were cut off). */
const SHORT_FRACTION = 0.75;

/** Told the speed measured at a crossing, km/h, or undefined when none could be fitted. */
export type SpeedListener = (kmh: number | undefined) => void;

interface PendingSpeed {
  lineId: string;
  /** Where the crossing was, image pixels. */
  point: Vec2;
  lane: string | undefined;
  direction: 'in' | 'out';
  /** Crossing time. */
  mono: number;
  due: number;
  /** Waiting for the wide window (the narrow one was short for boxes cut off by the frame edge). */
  wide: boolean;
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
 * Positions come from the detector's box (the filtered box lags); a box side at the frame edge is cut off, so
 * the points on that side are not used (see GroundTrack.fit). When that leaves the window around a crossing
 * short, the window widens to SPEED_WIDE_HALF_WINDOW_MS.
 */
export class SpeedMeter {
  private readonly tracks = new Map<number, Motion>();
  private readonly withPending = new Set<Motion>();
  private readonly marginX: number;
  private readonly marginY: number;

  /** `frame`: camera frame size, to tell boxes cut off by its edge (none without it). */
  constructor(
    private readonly homography: Homography | undefined,
    private readonly positionErrorM: number,
    private readonly outlet: EventOutlet,
    private readonly frame?: { width: number; height: number },
  ) {
    this.marginX = frame ? Math.max(EDGE_MARGIN_PX, EDGE_MARGIN_FRACTION * frame.width) : 0;
    this.marginY = frame ? Math.max(EDGE_MARGIN_PX, EDGE_MARGIN_FRACTION * frame.height) : 0;
  }

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
    const h = this.homography;
    if (!m || !raw || !h) return;
    const f = this.frame;
    const left = f !== undefined && raw[0] <= this.marginX;
    const right = f !== undefined && raw[2] >= f.width - this.marginX;
    const bottom = f !== undefined && raw[3] >= f.height - this.marginY;
    // The bottom is where the box meets the road: cut off there, no point of the box is on the ground.
    const y = raw[3];
    const points: Array<Vec2 | undefined> = [
      left || right || bottom ? undefined : h.toWorld((raw[0] + raw[2]) / 2, y),
      left || bottom ? undefined : h.toWorld(raw[0], y),
      right || bottom ? undefined : h.toWorld(raw[2], y),
    ];
    m.ground.push(mono, points);
    const est = m.ground.fit(mono - SPEED_TRAIL_MS, mono, this.positionErrorM);
    if (!est) return;
    this.addGeometry(est, (raw[0] + raw[2]) / 2, y);
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
    m.pending.push({
      lineId: c.line.id,
      point: c.point,
      lane: c.lane,
      direction: c.direction,
      mono: c.mono,
      due: c.mono + SPEED_HALF_WINDOW_MS,
      wide: false,
      frame: c.now,
      object: c.object,
      listener,
    });
    this.withPending.add(m);
  }

  /** Measures the crossings whose window is complete by `mono`. */
  resolveDue(mono: number): void {
    for (const m of this.withPending) {
      const keep: PendingSpeed[] = [];
      for (const p of m.pending) {
        if (mono < p.due || !this.resolve(m, p, false)) keep.push(p);
      }
      m.pending = keep;
      if (keep.length === 0) this.withPending.delete(m);
    }
  }

  /** The track ended: measures its pending crossings with what there is. */
  settle(trackId: number): void {
    const m = this.tracks.get(trackId);
    if (!m) return;
    for (const p of m.pending) this.resolve(m, p, true);
    m.pending.length = 0;
    this.withPending.delete(m);
  }

  drop(trackId: number): void {
    this.tracks.delete(trackId);
  }

  /** Adds the uncertainty of motion along the image rows at image point (u, v) (see ALONG_ROWS_SIGMA). */
  private addGeometry(est: SpeedEstimate, u: number, v: number): void {
    const h = this.homography!;
    const a = h.toWorld(u, v);
    const b = h.toWorld(u + 10, v);
    if (!a || !b) return;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (!(len > 0)) return;
    const along = Math.abs((est.heading[0] * (b[0] - a[0]) + est.heading[1] * (b[1] - a[1])) / len);
    const geo = ALONG_ROWS_SIGMA * along * est.speed_ms;
    est.sigma_ms = Math.sqrt(est.sigma_ms * est.sigma_ms + geo * geo);
  }

  /** Measures a crossing; false when it waits for the wide window instead (only when not `final`). */
  private resolve(m: Motion, p: PendingSpeed, final: boolean): boolean {
    const H = SPEED_HALF_WINDOW_MS;
    const W = SPEED_WIDE_HALF_WINDOW_MS;
    let est = m.ground.fit(p.mono - H, p.mono + H, this.positionErrorM);
    const short = !est || est.span_s * 1000 < SHORT_FRACTION * 2 * H;
    if (short && (p.wide || m.ground.cutOffIn(p.mono - H, p.mono + H))) {
      if (!final && !p.wide) {
        p.wide = true;
        p.due = p.mono + W;
        return false;
      }
      const wide = m.ground.fit(p.mono - W, p.mono + W, this.positionErrorM);
      if (wide && (!est || wide.span_s > est.span_s)) est = wide;
    }
    if (est) this.addGeometry(est, p.point[0], p.point[1]);
    const kmh = est ? est.speed_ms * 3.6 : undefined;
    p.listener?.(kmh);
    if (!est || kmh === undefined) return true;
    this.outlet.send(
      makeEvent({
        type: 'speed',
        ...this.outlet.envelope(p.frame),
        object: { ...p.object, speed_kmh: round(kmh, 1), speed_uncertainty_kmh: round(est.sigma_ms * 3.6, 1) },
        rule: { kind: 'line', id: p.lineId },
        attributes: {
          direction: p.direction,
          window_s: round(est.span_s, 3),
          samples: est.samples,
          distance_m: round(est.distance_m, 2),
          ...(p.lane !== undefined ? { lane: p.lane } : {}),
          reference: est.reference,
          samples_cut_off: est.cut_off,
        },
      }),
    );
    return true;
  }
}
