import { z } from 'zod';

/** Identifier used in MQTT topics and file names: lowercase, digits, `-` and `_`. */
export const Slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected 1-63 lowercase letters, digits, "-" or "_" (used in MQTT topics)');

/** A point in camera pixels, [x, y]. */
export const Point = z.tuple([z.number().finite(), z.number().finite()]).describe('Point [x, y] in camera pixels');
export type Point = z.infer<typeof Point>;

/** Most corners of a zone or ROI: plenty for a road, and keeps the self-intersection check (quadratic) quick. */
export const MAX_POLYGON_POINTS = 256;

export const Polygon = z
  .array(Point)
  .min(3, 'a polygon needs at least 3 points')
  .max(MAX_POLYGON_POINTS, `a polygon has at most ${MAX_POLYGON_POINTS} points`)
  .describe('Simple polygon (edges do not cross) with some area, in camera pixels, [[x, y], ...]');

export const Seconds = (desc: string) => z.number().positive().describe(desc);
