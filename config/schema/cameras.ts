import { z } from 'zod';
import { TAMPER_KINDS } from '../../contract/event.js';
import { Point, Polygon, Slug } from './common.js';

/** Where a lane starts or ends on its line: a fraction along a→b, or a point projected onto the line. */
const LaneEnd = z
  .union([z.number().min(0).max(1), Point])
  .describe('A fraction 0-1 of the way from a to b, or a point [x, y] in camera pixels (projected onto the line)');

export const LaneSchema = z.strictObject({
  id: Slug.describe('Lane id, unique on its line'),
  from: LaneEnd.describe('Where the lane starts on the line: a fraction 0-1 from a to b, or a point [x, y] (projected onto the line)'),
  to: LaneEnd.describe('Where the lane ends on the line: a fraction 0-1 from a to b, or a point [x, y] (projected onto the line)'),
});

/** Most lanes a line may be split into. */
export const MAX_LANES = 16;

export const LineSchema = z.strictObject({
  id: Slug.describe('Line id, unique per camera'),
  a: Point.describe('Start point [x, y] in camera pixels'),
  b: Point.describe('End point [x, y] in camera pixels. Crossing from the left of a→b to its right counts as "in"'),
  classes: z.array(z.string()).optional().describe('Count only these classes (default: all detected classes)'),
  stop_line: z.boolean().default(false).describe('Treat as a stop line: a crossing while `signal` is red is a violation. Default false'),
  signal: Slug.optional().describe('Signal id (analytics.signals) governing this stop line'),
  hysteresis_px: z.number().min(0).max(200).default(8).describe('Distance in pixels an object must pass beyond the line to count; stops double counts from box jitter. Default 8'),
  stop_direction: z
    .enum(['in', 'out', 'both'])
    .default('in')
    .describe('Stop lines: the crossing direction that is a violation on red ("in": from the left of a→b to its right as seen in the image; draw a→b so approaching traffic crosses "in"). Default in'),
  speed_limit_kmh: z
    .number()
    .positive()
    .max(300)
    .optional()
    .describe('Speed limit at this line, km/h (needs a calibration): a vehicle whose speed measured at the crossing, minus its stated uncertainty (one σ), exceeds it is a `speeding` violation. Unset: no speeding check'),
  lanes: z
    .array(LaneSchema)
    .min(1)
    .max(MAX_LANES)
    .optional()
    .describe('Lanes: segments of the line, each counted on its own (line_crossing events carry the lane, flow events have per-lane statistics). Lanes must not overlap; a crossing outside every lane counts for the line only'),
}).superRefine((line, ctx) => {
  if (!line.lanes) return;
  const ids = new Set<string>();
  const spans: Array<{ k: number; from: number; to: number }> = [];
  line.lanes.forEach((lane, k) => {
    if (ids.has(lane.id)) ctx.addIssue({ code: 'custom', path: ['lanes', k, 'id'], message: `duplicate lane id "${lane.id}" on line "${line.id}"` });
    ids.add(lane.id);
    for (const end of ['from', 'to'] as const) {
      const f = laneFraction(line, lane[end]);
      if (f < -LANE_TOLERANCE || f > 1 + LANE_TOLERANCE) {
        ctx.addIssue({ code: 'custom', path: ['lanes', k, end], message: `point projects outside the line "${line.id}" (at ${f.toFixed(3)} of the way from a to b; expected 0-1)` });
      }
    }
    const [from, to] = laneSpan(line, lane);
    if (to - from < 1e-6) ctx.addIssue({ code: 'custom', path: ['lanes', k, 'to'], message: `lane "${lane.id}" has no width (from and to are the same place on the line)` });
    spans.push({ k, from, to });
  });
  // In order along the line, each lane must start where the lanes before it (the furthest reaching one) end.
  spans.sort((x, y) => x.from - y.from || x.k - y.k);
  let reach = spans[0];
  for (const cur of spans.slice(1)) {
    if (reach && cur.from < reach.to - 1e-9) {
      ctx.addIssue({ code: 'custom', path: ['lanes', cur.k], message: `lane "${line.lanes[cur.k]!.id}" overlaps lane "${line.lanes[reach.k]!.id}" on line "${line.id}"` });
    }
    if (!reach || cur.to > reach.to) reach = cur;
  }
});

/** A lane end a point may project this far (fraction of the line) beyond a or b, for hand-picked pixels. */
const LANE_TOLERANCE = 0.01;

/** A lane end as a fraction of the way from the line's a to b (a point is projected onto the line). */
export function laneFraction(line: { a: Point; b: Point }, end: number | Point): number {
  if (typeof end === 'number') return end;
  const dx = line.b[0] - line.a[0];
  const dy = line.b[1] - line.a[1];
  const len2 = dx * dx + dy * dy;
  return len2 > 0 ? ((end[0] - line.a[0]) * dx + (end[1] - line.a[1]) * dy) / len2 : 0;
}

/** The lane as [from, to] fractions of the way from a to b, from ≤ to, within 0-1. */
export function laneSpan(line: { a: Point; b: Point }, lane: { from: number | Point; to: number | Point }): [number, number] {
  const clamp = (f: number) => Math.min(1, Math.max(0, f));
  const f = clamp(laneFraction(line, lane.from));
  const t = clamp(laneFraction(line, lane.to));
  return f <= t ? [f, t] : [t, f];
}

export const ZoneSchema = z.strictObject({
  id: Slug.describe('Zone id, unique per camera'),
  polygon: Polygon,
  classes: z.array(z.string()).optional().describe('Only these classes occupy the zone (default: all)'),
  dwell_threshold_s: z.number().positive().optional().describe('Seconds an object may stay before a stopped-vehicle / illegal-parking event; unset: no dwell events'),
  allowed_direction: Point.optional().describe('Allowed direction of travel as a vector [dx, dy] in camera pixels; unset: no wrong-way check'),
  wrong_way_min_distance_px: z.number().positive().default(60).describe('Travel against the allowed direction needed for a wrong-way event, pixels. Default 60'),
  speed_limit_kmh: z
    .number()
    .positive()
    .max(300)
    .optional()
    .describe('Speed limit in this zone, km/h (needs a calibration): a vehicle whose running speed, minus its stated uncertainty (one σ), exceeds it is a `speeding` violation (once per stay). Unset: no speeding check'),
  hysteresis_px: z
    .number()
    .min(0)
    .max(200)
    .default(8)
    .describe('Distance in pixels the anchor must be inside the polygon to enter and outside to leave; stops enter/exit flicker from box jitter on the edge. Default 8'),
});

export const CalibrationSchema = z
  .strictObject({
    image: z.array(Point).length(4).describe('Four image points [x, y] in camera pixels on the road plane'),
    world: z.array(Point).length(4).describe('The same four points on the ground, [x, y] in metres'),
    position_error_m: z.number().positive().default(0.5).describe('Expected ground-position error of a tracked point, metres; drives the stated speed uncertainty. Default 0.5'),
  })
  .describe('Ground-plane calibration for speed; without it no speed is ever reported');

/** Camera tamper and view-shift watch (inference/tamper): thresholds and hysteresis. */
export const TamperSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Watch the picture for tampering and degradation (camera_tamper events, health reason camera_tamper). Default true'),
    kinds: z
      .array(z.enum(TAMPER_KINDS))
      .default([...TAMPER_KINDS])
      .describe('What to watch for: covered, blurred, shifted, too_dark, overexposed, frozen. Default all'),
    check_interval_s: z.number().min(0.1).max(60).default(1).describe('Seconds between two checks (each costs well under 1 ms). Default 1'),
    reference_after_s: z
      .number()
      .min(1)
      .max(3600)
      .default(30)
      .describe('Seconds of stable picture (steady view, exposed, detailed, live) after which the reference view is taken, on first start and after rebase-reference. Default 30'),
    raise_s: z.number().min(0).max(3600).default(10).describe('A condition must hold this long before its alarm goes out, seconds. Default 10'),
    clear_s: z.number().min(0).max(3600).default(10).describe('An alarm clears when its condition has been absent this long, seconds. Default 10'),
    shift_px: z.number().positive().max(2000).default(20).describe('View offset against the reference beyond which the camera counts as moved, camera pixels. Default 20'),
    min_match: z
      .number()
      .min(0)
      .max(1)
      .default(0.15)
      .describe('Edge similarity with the reference below which the view counts as changed altogether (shifted, offset unknown), 0-1. Default 0.15'),
    covered_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(0.3)
      .describe('Detail below this fraction of the reference\'s (and flat for its contrast) counts as covered, 0-1. Default 0.3'),
    blur_ratio: z.number().min(0).max(1).default(0.7).describe('Sharpness below this fraction of the reference\'s counts as blurred, 0-1. Default 0.7'),
    dark_luma: z.number().min(0).max(255).default(35).describe('95th percentile of the luminance below this counts as too dark, 0-255. Default 35'),
    bright_luma: z.number().min(0).max(255).default(225).describe('5th percentile of the luminance above this counts as overexposed, 0-255. Default 225'),
    frozen_diff: z
      .number()
      .min(0)
      .max(10)
      .default(0.1)
      .describe('Mean grey-level difference between checks at or below which the picture counts as unchanged (frozen); well below the noise of a live sensor. Default 0.1'),
  })
  .prefault({})
  .describe('Camera tamper watch: a reference view per camera (stored in device.data_dir), then covered, blurred, shifted, too dark, overexposed and frozen pictures are reported with hysteresis');
export type TamperConfig = z.infer<typeof TamperSchema>;

export const RecordingSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Record the original stream (no re-encode, same RTSP connection) into a ring of short segments for violation evidence. Default true'),
    segment_s: z.number().min(1).max(10).default(2).describe('Segment length, seconds (segments start at keyframes, so a segment lasts at least one GOP). Default 2'),
    keep_s: z.number().min(10).max(3600).default(60).describe('Seconds of video kept; older segments are deleted. Must exceed evidence pre_s + post_s. Default 60'),
    max_mb: z.number().min(8).max(100_000).default(256).describe('Space for the ring, MB; the oldest segments are deleted beyond it. Default 256'),
  })
  .prefault({})
  .describe('Recording ring under <data_dir>/recordings/<camera id>/ (the clips and full-resolution stills of evidence packages are cut from it)');
export type RecordingConfig = z.infer<typeof RecordingSchema>;

export const CameraSchema = z.strictObject({
  id: Slug.describe('Camera id, unique on this box; used in MQTT topics'),
  url: z
    .string()
    .min(1)
    .describe('rtsp://host[:port]/path, or a local video file (looped; for the demo and tests). Credentials go in username/password, never in the URL'),
  username: z.string().optional().describe('RTSP user name (env ROADSIDE_CAMERA_<ID>_USERNAME overrides)'),
  password: z.string().optional().describe('RTSP password (env ROADSIDE_CAMERA_<ID>_PASSWORD overrides); never logged'),
  transport: z.enum(['tcp', 'udp']).default('tcp').describe('RTSP transport. TCP survives lossy links and NAT. Default tcp'),
  frame: z
    .strictObject({
      width: z.number().int().min(16).max(8192).describe('Camera frame width, pixels'),
      height: z.number().int().min(16).max(8192).describe('Camera frame height, pixels'),
    })
    .describe('Native frame size of the camera; lines, zones, ROI and calibration are in these pixels'),
  detection_fps: z.number().min(0.2).max(30).default(5).describe('Frames per second handed to the detector, 0.2-30. Default 5'),
  stall_timeout_s: z
    .number()
    .positive()
    .max(600)
    .optional()
    .describe('No frame for this long while connected counts as a stall and restarts ffmpeg, seconds. Default max(5, 5 / detection_fps)'),
  hwdecode: z
    .enum(['none', 'rkmpp', 'v4l2m2m', 'vaapi'])
    .default('none')
    .describe('Hardware decode preset passed to ffmpeg (rkmpp: Rockchip; v4l2m2m: Raspberry Pi and others). Default none'),
  roi: Polygon.optional().describe('Detections whose box centre is outside this polygon are dropped'),
  motion: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Skip inference when the scene is still. Default true'),
      threshold: z.number().min(0).max(1).default(0.004).describe('Fraction of changed pixels that counts as motion, 0-1. Default 0.004'),
      force_interval_s: z.number().positive().default(2).describe('Run detection at least this often even on a still scene, seconds, so parked objects stay tracked. Default 2'),
      pixel_delta: z.number().int().min(1).max(255).default(15).describe('Grey-level change (0-255) of a pixel of the 64x48 motion thumbnail that counts it as changed; above sensor and compression noise. Default 15'),
    })
    .prefault({})
    .describe('Motion gating'),
  tamper: TamperSchema,
  recording: RecordingSchema,
  lines: z.array(LineSchema).default([]).describe('Counting lines'),
  zones: z.array(ZoneSchema).default([]).describe('Zones: occupancy, dwell, wrong way'),
  calibration: CalibrationSchema.optional(),
});
export type CameraConfig = z.infer<typeof CameraSchema>;
export type LineConfig = z.infer<typeof LineSchema>;
export type ZoneConfig = z.infer<typeof ZoneSchema>;
export type LaneConfig = z.infer<typeof LaneSchema>;
export type CalibrationConfig = z.infer<typeof CalibrationSchema>;

export const CamerasSchema = z.array(CameraSchema).min(1, 'at least one camera is required').describe('Cameras served by this box');
