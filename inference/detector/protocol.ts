/** Messages between the Detector (main thread) and its worker. */
import type { SerializedError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import type { ModelInfo, PipelineOptions } from './pipeline.js';
import type { Detection, DetectorFrame, Letterbox } from './types.js';

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
  /** The thread blocks this long before loading the model (a slow InferenceSession.create). */
  load_delay_ms?: number;
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

/**
 * Asks the worker to finish what it is inside (a model load, a run), release its ONNX session and exit.
 * Its exit is the answer: terminating a thread that is inside ONNX Runtime aborts the whole process.
 */
export interface CloseMessage {
  type: 'close';
}

export type ToWorker = RunMessage | CloseMessage;

/** A run's answer. */
export type RunReply = Extract<FromWorker, { type: 'result' | 'run_error' }>;

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

/**
 * A frame as a run message. Its bytes are transferred without a copy when the view covers a whole
 * ArrayBuffer, read in place when shared, and copied (`copied`) when the view is part of a larger buffer
 * (e.g. a pooled Buffer): transferring that would take its neighbours along.
 */
export function runMessage(id: number, cameraId: string, frame: DetectorFrame, roi: PolygonPoints | undefined): { msg: RunMessage; transfer: ArrayBuffer[]; copied: boolean } {
  const { data } = frame;
  let buffer: ArrayBufferLike = data.buffer;
  let offset = data.byteOffset;
  const transfer: ArrayBuffer[] = [];
  let copied = false;
  if (!(data.buffer instanceof ArrayBuffer)) {
    // SharedArrayBuffer: the worker reads it in place; nothing to transfer.
  } else if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
    transfer.push(data.buffer);
  } else {
    const copy = data.slice();
    buffer = copy.buffer;
    offset = 0;
    transfer.push(copy.buffer);
    copied = true;
  }
  const msg: RunMessage = {
    type: 'run',
    id,
    camera_id: cameraId,
    buffer,
    byte_offset: offset,
    length: data.length,
    width: frame.width,
    height: frame.height,
    source_width: frame.source_width,
    source_height: frame.source_height,
    letterbox: frame.letterbox,
    roi,
  };
  return { msg, transfer, copied };
}
