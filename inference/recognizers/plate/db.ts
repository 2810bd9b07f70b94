/**
 * DB (differentiable binarisation) post-processing as PaddleOCR does it: threshold the text probability map,
 * take connected components, fit each a minimum-area rectangle, keep those whose mean probability is high
 * enough, and grow them back by the shrink the network was trained with ("unclip": each side moves out by
 * area * ratio / perimeter).
 */
import type { Point, Quad } from './tensor.js';

export interface DbOptions {
  /** Probability above which a pixel is text. PaddleOCR: 0.3. */
  thresh: number;
  /** Mean probability a component needs. PaddleOCR: 0.6. */
  box_thresh: number;
  /** Growth of the shrunk text kernel. PaddleOCR: 1.5. */
  unclip_ratio: number;
  /** Shorter side a box needs before growing, map pixels. PaddleOCR: 3. */
  min_size: number;
  /** Most components considered (largest first). */
  max_boxes: number;
}

export const DB_DEFAULTS: DbOptions = { thresh: 0.3, box_thresh: 0.6, unclip_ratio: 1.5, min_size: 3, max_boxes: 12 };

/** A rotated rectangle: centre, unit axis `u` (the text direction, pointing right), half extents along u and v. */
export interface RotatedRect {
  cx: number;
  cy: number;
  ux: number;
  uy: number;
  /** Half width along u, half height along v = (-uy, ux). */
  hw: number;
  hh: number;
  score: number;
}

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Convex hull (Andrew's monotone chain), counter-clockwise. */
function hull(points: Point[]): Point[] {
  const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/**
 * Minimum-area rectangle of a point set (one side lies along a hull edge), with `u` the axis nearer the
 * horizontal, pointing right. Degenerate sets give an axis-aligned rectangle.
 */
export function minAreaRect(points: Point[]): Omit<RotatedRect, 'score'> {
  const h = hull(points);
  let best = { area: Infinity, ux: 1, uy: 0, minU: 0, maxU: 0, minV: 0, maxV: 0 };
  const edges = h.length >= 2 ? h.length : 1;
  for (let i = 0; i < edges; i++) {
    const a = h[i] ?? [0, 0];
    const b = h[(i + 1) % h.length] ?? [1, 0];
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const ux = len > 0 ? (b[0] - a[0]) / len : 1;
    const uy = len > 0 ? (b[1] - a[1]) / len : 0;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const p of h) {
      const pu = p[0] * ux + p[1] * uy;
      const pv = -p[0] * uy + p[1] * ux;
      minU = Math.min(minU, pu); maxU = Math.max(maxU, pu);
      minV = Math.min(minV, pv); maxV = Math.max(maxV, pv);
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < best.area) best = { area, ux, uy, minU, maxU, minV, maxV };
  }
  const cu = (best.minU + best.maxU) / 2;
  const cv = (best.minV + best.maxV) / 2;
  let { ux, uy } = best;
  let hw = (best.maxU - best.minU) / 2;
  let hh = (best.maxV - best.minV) / 2;
  const cx = cu * ux - cv * uy;
  const cy = cu * uy + cv * ux;
  // Text direction: the axis nearer the horizontal, pointing right (then v = (-uy, ux) points down).
  if (Math.abs(uy) > Math.abs(ux)) {
    [ux, uy] = [-uy, ux];
    [hw, hh] = [hh, hw];
  }
  if (ux < 0) {
    ux = -ux;
    uy = -uy;
  }
  return { cx, cy, ux, uy, hw, hh };
}

/**
 * Text rectangles on a probability map of `w` x `h`, in map pixels, best-scoring large ones first.
 *
 * Flat loops over typed arrays, no closures or maps per pixel: the agent runs under V8's lite mode (no inlining),
 * where those cost most of the time.
 */
export function dbBoxes(prob: Float32Array, w: number, h: number, o: DbOptions = DB_DEFAULTS): RotatedRect[] {
  const n = w * h;
  const thresh = o.thresh;
  const seen = new Uint8Array(n);
  const stack = new Int32Array(n);
  // Each row's leftmost and rightmost pixel of the component being filled (a 4-connected component covers a
  // contiguous range of rows, reset after use).
  const rowMin = new Int32Array(h).fill(w);
  const rowMax = new Int32Array(h).fill(-1);
  const found: Array<RotatedRect & { area: number }> = [];
  for (let start = 0; start < n; start++) {
    if (seen[start] !== 0 || !(prob[start]! > thresh)) continue;
    let sp = 0;
    stack[sp++] = start;
    seen[start] = 1;
    let count = 0;
    let sum = 0;
    let yLo = h;
    let yHi = -1;
    while (sp > 0) {
      const i = stack[--sp]!;
      const y = (i / w) | 0;
      const x = i - y * w;
      count++;
      sum += prob[i]!;
      if (x < rowMin[y]!) rowMin[y] = x;
      if (x > rowMax[y]!) rowMax[y] = x;
      if (y < yLo) yLo = y;
      if (y > yHi) yHi = y;
      let j = i - 1;
      if (x > 0 && seen[j] === 0 && prob[j]! > thresh) { seen[j] = 1; stack[sp++] = j; }
      j = i + 1;
      if (x < w - 1 && seen[j] === 0 && prob[j]! > thresh) { seen[j] = 1; stack[sp++] = j; }
      j = i - w;
      if (y > 0 && seen[j] === 0 && prob[j]! > thresh) { seen[j] = 1; stack[sp++] = j; }
      j = i + w;
      if (y < h - 1 && seen[j] === 0 && prob[j]! > thresh) { seen[j] = 1; stack[sp++] = j; }
    }
    const points: Point[] = [];
    for (let y = yLo; y <= yHi; y++) {
      points.push([rowMin[y]!, y], [rowMax[y]!, y]);
      rowMin[y] = w;
      rowMax[y] = -1;
    }
    if (count < 4) continue;
    const score = sum / count;
    if (score < o.box_thresh) continue;
    const r = minAreaRect(points);
    if (Math.min(r.hw, r.hh) * 2 < o.min_size) continue;
    // Unclip: the box of the shrunk kernel grows by area * ratio / perimeter on every side.
    const bw = 2 * r.hw;
    const bh = 2 * r.hh;
    const d = (bw * bh * o.unclip_ratio) / (2 * (bw + bh));
    found.push({ ...r, hw: r.hw + d, hh: r.hh + d, score, area: count });
  }
  found.sort((a, b) => b.area - a.area);
  return found.slice(0, o.max_boxes).map(({ area: _area, ...r }) => r);
}

/** A map-space rectangle as a crop-space quad (the map is the crop scaled by sx, sy). */
export function rectToQuad(r: RotatedRect, sx: number, sy: number): Quad {
  const vx = -r.uy;
  const vy = r.ux;
  // Pixel centres to pixel edges: map pixel i covers [i, i+1).
  const at = (a: number, b: number): Point => [(r.cx + 0.5 + a * r.ux * r.hw + b * vx * r.hh) / sx, (r.cy + 0.5 + a * r.uy * r.hw + b * vy * r.hh) / sy];
  return { tl: at(-1, -1), tr: at(1, -1), bl: at(-1, 1) };
}
