import type { Box } from '../tracking/types.js';

export type Vec2 = [x: number, y: number];

/** Where an object touches the road: the bottom centre of its box. */
export function anchorOf(b: Box): Vec2 {
  return [(b[0] + b[2]) / 2, b[3]];
}

/** Even-odd point-in-polygon test; `poly` is [x0, y0, x1, y1, ...]. */
export function pointInPolygon(x: number, y: number, poly: Float64Array): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i]!;
    const yi = poly[2 * i + 1]!;
    const xj = poly[2 * j]!;
    const yj = poly[2 * j + 1]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Distance from a point to the segment (ax, ay)-(bx, by). */
export function segmentDistance(x: number, y: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}

/** Signed distance to the polygon's boundary: positive inside, negative outside, pixels. */
export function polygonSignedDistance(x: number, y: number, poly: Float64Array): number {
  const n = poly.length / 2;
  let d = Infinity;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const e = segmentDistance(x, y, poly[2 * j]!, poly[2 * j + 1]!, poly[2 * i]!, poly[2 * i + 1]!);
    if (e < d) d = e;
  }
  return pointInPolygon(x, y, poly) ? d : -d;
}

/** Whether the segment (ax, ay)-(bx, by) touches the box (Liang-Barsky clipping). */
export function segmentIntersectsBox(ax: number, ay: number, bx: number, by: number, box: Box): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = bx - ax;
  const dy = by - ay;
  const clip = (p: number, q: number): boolean => {
    if (p === 0) return q >= 0;
    const r = q / p;
    if (p < 0) {
      if (r > t1) return false;
      if (r > t0) t0 = r;
    } else {
      if (r < t0) return false;
      if (r < t1) t1 = r;
    }
    return true;
  };
  return clip(-dx, ax - box[0]) && clip(dx, box[2] - ax) && clip(-dy, ay - box[1]) && clip(dy, box[3] - ay) && t0 <= t1;
}
