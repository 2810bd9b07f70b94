/** Messages between the Detector (main thread) and its worker. */
import type { SerializedError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import type { ModelInfo, PipelineOptions } from './pipeline.js';
import type { Detection, DetectorFrame } from './types.js';

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
  /** CPUs the thread pins itself to before the session loads (detector.cpus); its ONNX threads inherit them. */
  cpus?: number[];
  debug?: WorkerDebug;
}

/** A worker thread's workerData: the init, and the claim cells of RunClaims (handoff.ts) it shares with its host. */
export interface WorkerData extends WorkerInit {
  claims: SharedArrayBuffer;
}

/** The frame's geometry, all the worker needs of it besides the pre-processed input (handoff.ts). */
export type RunGeometry = Pick<DetectorFrame, 'width' | 'height' | 'source_width' | 'source_height' | 'letterbox'>;

export interface RunMessage extends RunGeometry {
  type: 'run';
  id: number;
  camera_id: string;
  /** The model input in its layout (input.ts), filled on the main thread; transferred, and back with the reply. */
  input: ArrayBuffer;
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

/** A run's answer (`skipped`: it was cancelled before the worker claimed it). */
export type RunReply = Extract<FromWorker, { type: 'result' | 'run_error' | 'skipped' }>;

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  /** Where the thread runs after pinning itself (sent before `ready`), or why it could not. */
  | { type: 'pinned'; cpus: string; error?: string }
  | { type: 'init_error'; error: SerializedError }
  | {
      type: 'result';
      id: number;
      detections: Detection[];
      timing: { convert_ms: number; model_ms: number; post_ms: number };
      input: ArrayBuffer;
    }
  | { type: 'run_error'; id: number; error: SerializedError; input: ArrayBuffer }
  /** The host cancelled the run before the worker claimed it: only its input buffer comes back. */
  | { type: 'skipped'; id: number; input: ArrayBuffer };

/** A run message for a frame whose input buffer is already filled; the buffer is the only transfer. */
export function runMessage(id: number, cameraId: string, frame: RunGeometry, input: ArrayBuffer, roi: PolygonPoints | undefined): RunMessage {
  const msg: RunMessage = {
    type: 'run',
    id,
    camera_id: cameraId,
    input,
    width: frame.width,
    height: frame.height,
    source_width: frame.source_width,
    source_height: frame.source_height,
    roi,
  };
  if (frame.letterbox) msg.letterbox = frame.letterbox;
  return msg;
}
