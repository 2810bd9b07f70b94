/** Messages between the Detector (main thread) and its worker. */
import type { SerializedError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import type { ModelInfo, PipelineOptions } from './pipeline.js';
import type { Detection, Letterbox } from './types.js';

/**
 * Test hooks, honoured only when set explicitly through DetectorOptions.debug (never from the config file):
 * make the worker hang, crash or slow down on frames of one camera.
 */
export interface WorkerDebug {
  /** Frames of this camera block the worker thread for `hang_ms` (a stuck run). */
  hang_camera?: string;
  hang_ms?: number;
  /** Frames of this camera crash the worker (an uncaught exception). */
  crash_camera?: string;
  /** Every run takes at least this long (slow inference). */
  delay_ms?: number;
}

export interface WorkerInit {
  pipeline: PipelineOptions;
  debug?: WorkerDebug;
}

export interface RunMessage {
  type: 'run';
  id: number;
  camera_id: string;
  /** Transferred (or shared) bytes; the frame is `length` bytes from `byte_offset`. */
  buffer: ArrayBufferLike;
  byte_offset: number;
  length: number;
  width: number;
  height: number;
  source_width: number;
  source_height: number;
  letterbox?: Letterbox;
  roi?: PolygonPoints;
}

export type ToWorker = RunMessage;

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'init_error'; error: SerializedError }
  | {
      type: 'result';
      id: number;
      detections: Detection[];
      timing: { pre_ms: number; model_ms: number; post_ms: number };
      buffer: ArrayBufferLike;
    }
  | { type: 'run_error'; id: number; error: SerializedError; buffer: ArrayBufferLike };
