import { z } from 'zod';
import { Point, Polygon, Slug } from './common.js';

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
});

export const ZoneSchema = z.strictObject({
  id: Slug.describe('Zone id, unique per camera'),
  polygon: Polygon,
  classes: z.array(z.string()).optional().describe('Only these classes occupy the zone (default: all)'),
  dwell_threshold_s: z.number().positive().optional().describe('Seconds an object may stay before a stopped-vehicle / illegal-parking event; unset: no dwell events'),
  allowed_direction: Point.optional().describe('Allowed direction of travel as a vector [dx, dy] in camera pixels; unset: no wrong-way check'),
  wrong_way_min_distance_px: z.number().positive().default(60).describe('Travel against the allowed direction needed for a wrong-way event, pixels. Default 60'),
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
  lines: z.array(LineSchema).default([]).describe('Counting lines'),
  zones: z.array(ZoneSchema).default([]).describe('Zones: occupancy, dwell, wrong way'),
  calibration: CalibrationSchema.optional(),
});
export type CameraConfig = z.infer<typeof CameraSchema>;
export type LineConfig = z.infer<typeof LineSchema>;
export type ZoneConfig = z.infer<typeof ZoneSchema>;
export type CalibrationConfig = z.infer<typeof CalibrationSchema>;

export const CamerasSchema = z.array(CameraSchema).min(1, 'at least one camera is required').describe('Cameras served by this box');
