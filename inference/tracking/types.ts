import type { RgbFrame } from '../../ingest/frame.js';

/** Axis-aligned box [x1, y1, x2, y2] in camera pixels (x right, y down). */
export type Box = [x1: number, y1: number, x2: number, y2: number];

/** One detection from the detector, in camera pixels (the detector maps model-input coordinates back). */
export interface Detection {
  box: Box;
  /** Confidence, 0-1. */
  score: number;
  class_id: number;
  class_name: string;
  /**
   * Set when boxes of several classes on one object were merged (see mergeDetections): the best score of
   * each class, this detection's own class included. The track's class vote counts every one of them.
   */
  class_scores?: readonly ClassScore[];
}

export interface ClassScore {
  class_name: string;
  class_id: number;
  score: number;
}

/** When and where a frame was captured. */
export interface FrameContext {
  camera_id: string;
  /** Wall-clock capture time, epoch ms (may jump when NTP syncs: see `clock_synced`). */
  captured_at_ms: number;
  /** Monotonic capture time, ms (performance.now() or similar); every duration and speed is measured on it. */
  mono_ms: number;
  /** True once the box's clock is NTP-synchronised; copied into every event. */
  clock_synced: boolean;
  /**
   * Pixels of the analysed frame, for evidence only (copied when evidence is taken, so the caller may reuse
   * them). Boxes stay in camera pixels; this frame may be smaller (e.g. scaled to the model input) as long as
   * it shows the whole camera view: crops are scaled by `width / camera.frame.width` and `height / camera.frame.height`.
   */
  frame?: RgbFrame;
}
