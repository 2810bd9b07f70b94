import { AgentError } from '../../core/errors.js';
import type { Vec2 } from './geometry.js';

/** Solves A x = b in place (Gaussian elimination with partial pivoting); A is row-major n×n. */
export function solveLinear(a: Float64Array, b: Float64Array, n: number): Float64Array {
  for (let col = 0; col < n; col++) {
    let piv = col;
    let best = Math.abs(a[col * n + col]!);
    for (let r = col + 1; r < n; r++) {
      const v = Math.abs(a[r * n + col]!);
      if (v > best) {
        best = v;
        piv = r;
      }
    }
    if (best < 1e-12) throw new AgentError('CALIBRATION_DEGENERATE', 'singular system: three of the calibration points are on one line');
    if (piv !== col) {
      for (let c = 0; c < n; c++) {
        const t = a[col * n + c]!;
        a[col * n + c] = a[piv * n + c]!;
        a[piv * n + c] = t;
      }
      const t = b[col]!;
      b[col] = b[piv]!;
      b[piv] = t;
    }
    const d = a[col * n + col]!;
    for (let r = col + 1; r < n; r++) {
      const f = a[r * n + col]! / d;
      if (f === 0) continue;
      for (let c = col; c < n; c++) a[r * n + c] = a[r * n + c]! - f * a[col * n + c]!;
      b[r] = b[r]! - f * b[col]!;
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let c = r + 1; c < n; c++) s -= a[r * n + c]! * x[c]!;
    x[r] = s / a[r * n + r]!;
  }
  return x;
}

type Mat3 = Float64Array; // row-major 3×3

function mul(a: Mat3, b: Mat3): Mat3 {
  const out = new Float64Array(9);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) out[r * 3 + c] = a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!;
  return out;
}

/** Similarity moving the points' centroid to 0 and their mean distance to √2 (Hartley), and its inverse. */
function normaliser(pts: readonly Vec2[]): { t: Mat3; inv: Mat3 } {
  const cx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
  const cy = pts.reduce((s, p) => s + p[1], 0) / pts.length;
  const mean = pts.reduce((s, p) => s + Math.hypot(p[0] - cx, p[1] - cy), 0) / pts.length;
  const k = mean > 0 ? Math.SQRT2 / mean : 1;
  return {
    t: Float64Array.of(k, 0, -k * cx, 0, k, -k * cy, 0, 0, 1),
    inv: Float64Array.of(1 / k, 0, cx, 0, 1 / k, cy, 0, 0, 1),
  };
}

/** Farther than this from the calibration points' centroid a ground position is not trusted (near the horizon), metres. */
const MAX_RANGE_M = 5000;

/**
 * Image → ground-plane projective map from four point pairs (direct linear transform with h₃₃ = 1, solved on
 * normalised coordinates). Points on the far side of the horizon, or absurdly far away, map to undefined.
 */
export class Homography {
  private readonly h: Mat3;
  private readonly sign: number;
  private readonly cx: number;
  private readonly cy: number;

  constructor(image: readonly Vec2[], world: readonly Vec2[]) {
    if (image.length !== 4 || world.length !== 4) throw new AgentError('CALIBRATION_INVALID', 'calibration needs exactly four point pairs');
    const ni = normaliser(image);
    const nw = normaliser(world);
    const a = new Float64Array(64);
    const b = new Float64Array(8);
    for (let k = 0; k < 4; k++) {
      const [u, v] = apply3(ni.t, image[k]!);
      const [x, y] = apply3(nw.t, world[k]!);
      a.set([u, v, 1, 0, 0, 0, -u * x, -v * x], (2 * k) * 8);
      a.set([0, 0, 0, u, v, 1, -u * y, -v * y], (2 * k + 1) * 8);
      b[2 * k] = x;
      b[2 * k + 1] = y;
    }
    const s = solveLinear(a, b, 8);
    const hn = Float64Array.of(s[0]!, s[1]!, s[2]!, s[3]!, s[4]!, s[5]!, s[6]!, s[7]!, 1);
    this.h = mul(nw.inv, mul(hn, ni.t));
    this.cx = world.reduce((acc, p) => acc + p[0], 0) / 4;
    this.cy = world.reduce((acc, p) => acc + p[1], 0) / 4;
    // The calibration points lie on the visible side of the horizon: remember the sign of w there.
    const w0 = this.w(image[0]![0], image[0]![1]);
    this.sign = Math.sign(w0);
    for (let k = 0; k < 4; k++) {
      const got = this.toWorld(image[k]![0], image[k]![1]);
      const want = world[k]!;
      if (!got || Math.hypot(got[0] - want[0], got[1] - want[1]) > 1e-6 * (1 + Math.hypot(want[0], want[1]))) {
        throw new AgentError('CALIBRATION_INVALID', 'the calibration points do not define a ground plane (points folded or collinear)');
      }
    }
  }

  private w(u: number, v: number): number {
    const h = this.h;
    return h[6]! * u + h[7]! * v + h[8]!;
  }

  /** Ground position [x, y] in metres of an image point, or undefined beyond the horizon. */
  toWorld(u: number, v: number): Vec2 | undefined {
    const h = this.h;
    const w = h[6]! * u + h[7]! * v + h[8]!;
    if (!(w * this.sign > 1e-12)) return undefined;
    const x = (h[0]! * u + h[1]! * v + h[2]!) / w;
    const y = (h[3]! * u + h[4]! * v + h[5]!) / w;
    if (!(Math.abs(x - this.cx) < MAX_RANGE_M && Math.abs(y - this.cy) < MAX_RANGE_M)) return undefined;
    return [x, y];
  }

  /** The 3×3 matrix, row-major. */
  matrix(): number[] {
    return Array.from(this.h);
  }
}

function apply3(m: Mat3, p: Vec2): Vec2 {
  const w = m[6]! * p[0] + m[7]! * p[1] + m[8]!;
  return [(m[0]! * p[0] + m[1]! * p[1] + m[2]!) / w, (m[3]! * p[0] + m[4]! * p[1] + m[5]!) / w];
}
