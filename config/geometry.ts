// Plane geometry the config checks need: a zone or ROI must be a simple polygon (edges meet only at their
// shared corners) enclosing some area, or "inside" means nothing the analytics can rely on.
import type { Point } from './schema/common.js';

const cross = (o: Point, a: Point, b: Point): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
const same = (a: Point, b: Point): boolean => a[0] === b[0] && a[1] === b[1];

/** Is `p` on segment a-b, given that the three are collinear? */
const within = (a: Point, b: Point, p: Point): boolean =>
  Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);

/** Do segments a-b and c-d share any point (crossing, touching or overlapping)? Exact for integer pixels. */
export function segmentsMeet(a: Point, b: Point, c: Point, d: Point): boolean {
  const d1 = cross(c, d, a);
  const d2 = cross(c, d, b);
  const d3 = cross(a, b, c);
  const d4 = cross(a, b, d);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  return (d1 === 0 && within(c, d, a)) || (d2 === 0 && within(c, d, b)) || (d3 === 0 && within(a, b, c)) || (d4 === 0 && within(a, b, d));
}

/** Twice the signed area (shoelace). */
export function area2(points: readonly Point[]): number {
  let s = 0;
  points.forEach((p, i) => {
    const q = points[(i + 1) % points.length]!;
    s += p[0] * q[1] - q[0] * p[1];
  });
  return s;
}

/** Smallest area a zone may enclose, pixels squared: anything less is a line or a point drawn by mistake. */
const MIN_AREA_PX2 = 1;

/**
 * Why `points` is not a usable polygon, or undefined. The ring closes by itself; a last point equal to the
 * first (as GIS tools write it) is accepted. Quadratic in the points: the schema caps them.
 */
export function polygonProblem(input: readonly Point[]): string | undefined {
  const pts = input.length > 3 && same(input[0]!, input[input.length - 1]!) ? input.slice(0, -1) : [...input];
  const n = pts.length;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    if (same(pts[i]!, pts[j]!)) return `points ${i} and ${j} are the same point [${pts[i]!.join(', ')}]: each corner once`;
  }
  const noArea = `the polygon encloses no area (less than ${MIN_AREA_PX2} px²: its points are on one line)`;
  if (pts.every((p) => cross(pts[0]!, pts[1]!, p) === 0)) return noArea;
  for (let i = 0; i < n; i++) {
    const a = pts[i]!;
    const b = pts[(i + 1) % n]!;
    // Neighbouring edges share a corner; they must not fold back over each other.
    const c = pts[(i + 2) % n]!;
    if (cross(a, b, c) === 0 && (c[0] - b[0]) * (b[0] - a[0]) + (c[1] - b[1]) * (b[1] - a[1]) < 0) {
      return `edges ${i}→${(i + 1) % n} and ${(i + 1) % n}→${(i + 2) % n} fold back over each other: the polygon must not cross itself`;
    }
    for (let k = i + 2; k < n; k++) {
      if (i === 0 && k === n - 1) continue; // the closing edge is a neighbour of the first
      if (segmentsMeet(a, b, pts[k]!, pts[(k + 1) % n]!)) {
        return `edges ${i}→${(i + 1) % n} and ${k}→${(k + 1) % n} cross: the polygon must not cross itself (list the corners in order around it)`;
      }
    }
  }
  if (Math.abs(area2(pts)) / 2 < MIN_AREA_PX2) return noArea;
  return undefined;
}

/** True when three of four points are (nearly) collinear. */
export function degenerate(pts: readonly Point[]): boolean {
  for (let i = 0; i < 4; i++) {
    const [a, b, c] = pts.filter((_, k) => k !== i) as [Point, Point, Point];
    const twice = Math.abs(cross(a, b, c));
    const scale = Math.max(1e-9, Math.hypot(b[0] - a[0], b[1] - a[1]) * Math.hypot(c[0] - a[0], c[1] - a[1]));
    if (twice / scale < 1e-3) return true;
  }
  return false;
}
