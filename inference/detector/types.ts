/** Types shared by the detector and its callers. */
import type { Letterbox } from '../../ingest/types.js';
import type { Detection } from '../tracking/types.js';

/** One detected object, in camera (source) pixels: the tracker's input type (inference/tracking/types.ts). */
export type { Detection };

/** How a camera frame was fitted into the model input: input = source * scale + pad. */
export type { Letterbox };

/**
 * A frame already scaled to the model input size (ffmpeg does that): packed HWC RGB, 8 bits per channel.
 * The camera source's `Frame` (ingest/types.ts) fits as is.
 * Without `letterbox` the frame was stretched from `source_width` x `source_height`.
 *
 * Ownership: `data` stays the caller's and is never detached or copied: the main thread reads it once to fill the
 * model input (inference/detector/handoff.ts). Do not change it until `detect()` has settled.
 */
export interface DetectorFrame {
  data: Uint8Array;
  width: number;
  height: number;
  source_width: number;
  source_height: number;
  letterbox?: Letterbox;
}

export interface DetectTiming {
  /**
   * Frame → model input: the copy of its bytes on the main thread (overlapping the worker's previous run when one
   * was running), plus for a float model the bytes-to-float graph in the worker, before session.run.
   */
  pre_ms: number;
  /** session.run. */
  model_ms: number;
  /** Decode, thresholds, mapping to camera pixels, ROI, NMS, in the worker. */
  post_ms: number;
  /** From the moment the frame became the worker's current run until its result was back on the main thread. */
  total_ms: number;
  /** Time the frame waited (its camera's slot, then queued behind the previous run) before it became the current run. */
  wait_ms: number;
}

export type DetectResult =
  | {
      status: 'done';
      detections: Detection[];
      timing: DetectTiming;
      /** The frame's `data.buffer` (never detached): reuse it for a later frame if you like. */
      buffer: ArrayBufferLike;
    }
  | {
      /** A newer frame of the same camera took this one's place before the worker was free (counted as skipped). */
      status: 'replaced';
      buffer: ArrayBufferLike;
    };

export type DetectorState = 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';

export interface CameraDetectorStats {
  submitted: number;
  done: number;
  /** Frames replaced by a newer frame of the same camera while waiting. */
  skipped: number;
  errors: number;
}

export interface DetectorStats {
  state: DetectorState;
  decoder: string;
  threads: number;
  input_width: number;
  input_height: number;
  /** Completed inferences since start. */
  runs: number;
  /** Frames that failed (run error, stuck or crashed worker). */
  errors: number;
  /** Worker restarts since start (stuck + crashed). */
  restarts: number;
  restarts_last_hour: number;
  last_restart_reason: RestartReason | null;
  /** Over the last 256 runs, milliseconds. */
  inference_ms_mean: number;
  inference_ms_p95: number;
  pre_ms_mean: number;
  post_ms_mean: number;
  /** Worker round trip (pre + model + post + messaging), mean, ms. */
  total_ms_mean: number;
  /** Time frames waited for the worker, mean, ms. */
  wait_ms_mean: number;
  /** (pre + post) / model, percent. */
  prepost_share_pct: number;
  /**
   * Time inside session.run over the wall time while at least one frame was waiting for its detection (submitted,
   * not yet answered), since start, percent. 100 would be a worker that never waits while a frame is ready.
   */
  busy_share_pct: number;
  /** Seconds inside session.run since start. */
  model_s_total: number;
  /** Seconds during which at least one frame was waiting for its detection, since start. */
  frames_waiting_s_total: number;
  /** Frames skipped (replaced) over all cameras. */
  skipped: number;
  /** Frames taken back from the worker's queue because another frame had to go first (pre-processing redone). */
  requeued: number;
  /**
   * Frames copied on the way to the worker besides into the model input: always 0 (frames are read in place on the
   * main thread; kept for dashboards).
   */
  frame_copies: number;
  cameras: Record<string, CameraDetectorStats>;
}

export type RestartReason = 'stuck' | 'crash' | 'init';

export interface RestartEvent {
  reason: RestartReason;
  /** Restarts so far, this one included. */
  restarts: number;
  error: Error;
}
