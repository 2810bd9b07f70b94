// The seam between health/status and the modules that own the figures (camera ingest, detector, outbox,
// uplink, analytics). The controller implements AgentFigures from the real modules; tests use testkit/static-figures.ts.
import type { CameraHealth, DetectorHealth, EvidenceHealth, OutboxHealth, UplinkHealth } from '../../contract/health.js';
import type { CameraConfig } from '../../config/schema/index.js';
import type { RgbFrame } from '../../ingest/frame.js';

export type { CameraState, DetectorState } from '../../contract/health.js';

/** Figures of one camera (the same shape as in the health payload). */
export type CameraFigures = CameraHealth;
export type DetectorFigures = DetectorHealth;
export type OutboxFigures = OutboxHealth;
export type UplinkFigures = UplinkHealth;

/** One detection on the latest processed frame, in camera pixels. */
export interface DetectionFigure {
  /** [x1, y1, x2, y2] in camera pixels (the camera's `frame` size, not the model input). */
  box: [number, number, number, number];
  class_name: string;
  score: number;
  track_id?: number | string;
}

/** What the status page draws over a camera's preview, in camera pixels. */
export interface CameraOverlay {
  frame: { width: number; height: number };
  lines: { id: string; a: [number, number]; b: [number, number] }[];
  zones: { id: string; polygon: [number, number][] }[];
}

/** A decoded frame (packed RGB, 3 bytes per pixel): the one definition lives with the frame loop. */
export type RawFrame = RgbFrame;

/**
 * Live figures from the agent's modules. Every method is synchronous and cheap (reads counters kept by
 * the module): it is called on every health sample, every /metrics scrape and every /api/status poll.
 * A method that throws is logged and its section reported as unavailable.
 */
export interface AgentFigures {
  cameras(): CameraFigures[];
  detector(): DetectorFigures;
  outbox(): OutboxFigures;
  uplink(): UplinkFigures;
  /** The most recent traffic events, newest first (payloads as published). */
  recentEvents(limit: number): unknown[];
  /** Detections on the camera's latest processed frame; [] when none or unknown camera. */
  latestDetections(cameraId: string): DetectionFigure[];
  /** Lines and zones of the camera as currently configured; undefined for an unknown camera. */
  cameraOverlay(cameraId: string): CameraOverlay | undefined;
  /**
   * Optional: the camera's latest decoded frame, used for `/api/cameras/:id/frame.jpg` when no live
   * preview is running. Frames at the detector's input size are fine (the page scales them).
   */
  latestFrame?(cameraId: string): RawFrame | undefined;
  /** Optional: the evidence packages kept on the box. */
  evidence?(): EvidenceHealth;
}

/** The overlay of a camera from its config: what a provider's `cameraOverlay` returns without a reload. */
export function overlayFromConfig(cam: CameraConfig): CameraOverlay {
  return {
    frame: { width: cam.frame.width, height: cam.frame.height },
    lines: cam.lines.map((l) => ({ id: l.id, a: [l.a[0], l.a[1]], b: [l.b[0], l.b[1]] })),
    zones: cam.zones.map((z) => ({ id: z.id, polygon: z.polygon.map((p): [number, number] => [p[0], p[1]]) })),
  };
}
