import type { Box } from './types.js';

// Noise, as fractions of the object size (the larger side of its box).
const MEAS_STD = 0.05; // detector box jitter, per coordinate
const INIT_POS_STD = 0.1; // first measurement
const INIT_VEL_STD = [3, 3, 0.5, 0.5] as const; // unknown velocity at birth, size per second (3σ: 9 sizes/s)
const ACC_STD = [1, 1, 0.5, 0.5] as const; // white-noise acceleration, size per second²
const MIN_SIZE = 1;

/**
 * Constant-velocity Kalman filter on the box (cx, cy, w, h), with time steps in seconds so irregular frames
 * (motion gating, dropped frames) are handled. With the usual diagonal noise the 8-state filter of SORT and
 * ByteTrack splits exactly into four independent (position, velocity) filters, one per coordinate, which is
 * what this is: same estimate, a fraction of the arithmetic.
 */
export class BoxKalman {
  /** Position per axis: cx, cy, w, h (pixels). */
  readonly pos = new Float64Array(4);
  /** Velocity per axis, pixels per second. */
  readonly vel = new Float64Array(4);
  private readonly p00 = new Float64Array(4);
  private readonly p01 = new Float64Array(4);
  private readonly p11 = new Float64Array(4);

  constructor(box: Box) {
    const z = measure(box);
    for (let i = 0; i < 4; i++) {
      const s = this.scale(z);
      this.pos[i] = z[i]!;
      this.vel[i] = 0;
      this.p00[i] = (INIT_POS_STD * s) ** 2;
      this.p01[i] = 0;
      this.p11[i] = (INIT_VEL_STD[i]! * s) ** 2;
    }
  }

  /** Advances the state by `dt_s` seconds. */
  predict(dt_s: number): void {
    if (!(dt_s > 0)) return;
    const dt2 = dt_s * dt_s;
    for (let i = 0; i < 4; i++) {
      const q = (ACC_STD[i]! * this.scale(this.pos)) ** 2;
      const p00 = this.p00[i]!;
      const p01 = this.p01[i]!;
      const p11 = this.p11[i]!;
      this.pos[i] = this.pos[i]! + this.vel[i]! * dt_s;
      this.p00[i] = p00 + 2 * dt_s * p01 + dt2 * p11 + (q * dt2 * dt_s) / 3;
      this.p01[i] = p01 + dt_s * p11 + (q * dt2) / 2;
      this.p11[i] = p11 + q * dt_s;
    }
    if (this.pos[2]! < MIN_SIZE) this.pos[2] = MIN_SIZE;
    if (this.pos[3]! < MIN_SIZE) this.pos[3] = MIN_SIZE;
  }

  /** Corrects the state with a measured box. */
  update(box: Box): void {
    const z = measure(box);
    for (let i = 0; i < 4; i++) {
      const r = (MEAS_STD * this.scale(z)) ** 2;
      const p00 = this.p00[i]!;
      const p01 = this.p01[i]!;
      const s = p00 + r;
      const k0 = p00 / s;
      const k1 = p01 / s;
      const y = z[i]! - this.pos[i]!;
      this.pos[i] = this.pos[i]! + k0 * y;
      this.vel[i] = this.vel[i]! + k1 * y;
      this.p00[i] = (1 - k0) * p00;
      this.p01[i] = (1 - k0) * p01;
      this.p11[i] = this.p11[i]! - k1 * p01;
    }
  }

  /** Stops the size from drifting while the object is unseen (ByteTrack does the same for the height). */
  freezeSize(): void {
    this.vel[2] = 0;
    this.vel[3] = 0;
  }

  /** Standard deviation of the position estimate on an axis (0 cx, 1 cy, 2 w, 3 h), pixels. */
  std(axis: number): number {
    return Math.sqrt(this.p00[axis]!);
  }

  /** Standard deviation of a measurement around the prediction on an axis (state and box jitter), pixels. */
  innovationStd(axis: number): number {
    return Math.sqrt(this.p00[axis]! + (MEAS_STD * this.scale(this.pos)) ** 2);
  }

  box(): Box {
    const [cx, cy, w, h] = this.pos as unknown as [number, number, number, number];
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
  }

  /** Noise scales with the object's size: the larger side of its box (a sliver entering the frame is not a
   * small object). */
  private scale(v: ArrayLike<number>): number {
    return Math.max(MIN_SIZE, v[2]!, v[3]!);
  }
}

function measure(b: Box): [number, number, number, number] {
  const w = Math.max(MIN_SIZE, b[2] - b[0]);
  const h = Math.max(MIN_SIZE, b[3] - b[1]);
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, w, h];
}
