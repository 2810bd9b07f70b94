import { describe, expect, it } from 'vitest';
import { area2, polygonProblem, segmentsMeet } from '../../../config/geometry.js';
import type { Point } from '../../../config/schema/common.js';

const square: Point[] = [[0, 0], [100, 0], [100, 100], [0, 100]];

describe('polygonProblem', () => {
  it('accepts simple polygons, in either winding, closed or not', () => {
    expect(polygonProblem(square)).toBeUndefined();
    expect(polygonProblem([...square].reverse())).toBeUndefined();
    expect(polygonProblem([...square, [0, 0]])).toBeUndefined();
    expect(polygonProblem([[0, 0], [10, 0], [5, 8]])).toBeUndefined();
    // Concave (an L shape) is simple.
    expect(polygonProblem([[0, 0], [20, 0], [20, 10], [10, 10], [10, 20], [0, 20]])).toBeUndefined();
  });

  it('refuses a bow-tie, with the edges that cross', () => {
    expect(polygonProblem([[0, 0], [100, 100], [100, 0], [0, 100]])).toMatch(/edges 0→1 and 2→3 cross/);
  });

  it('refuses a polygon that touches itself at a corner or runs back along an edge', () => {
    // Figure eight through a shared corner [50, 50].
    expect(polygonProblem([[0, 0], [50, 50], [100, 0], [100, 100], [50, 50], [0, 100]])).toMatch(/cross/);
    expect(polygonProblem([[0, 0], [100, 0], [50, 0], [50, 50]])).toMatch(/fold back/);
  });

  it('refuses zero area: collinear points, one repeated point, repeated corners', () => {
    expect(polygonProblem([[0, 0], [50, 0], [100, 0]])).toMatch(/encloses no area/);
    expect(polygonProblem([[5, 5], [5, 5], [5, 5]])).toMatch(/points 0 and 1 are the same point \[5, 5\]/);
    expect(polygonProblem([[0, 0], [100, 0], [100, 0], [0, 100]])).toMatch(/same point/);
    expect(polygonProblem([[0, 0], [0.5, 0], [0, 0.5]])).toMatch(/encloses no area/);
  });

  it('segmentsMeet and area2 agree with hand-computed cases', () => {
    expect(segmentsMeet([0, 0], [10, 10], [0, 10], [10, 0])).toBe(true);
    expect(segmentsMeet([0, 0], [10, 0], [10, 0], [20, 5])).toBe(true);
    expect(segmentsMeet([0, 0], [10, 0], [11, 0], [20, 0])).toBe(false);
    expect(segmentsMeet([0, 0], [10, 0], [0, 1], [10, 1])).toBe(false);
    expect(area2(square)).toBe(20_000);
  });
});
