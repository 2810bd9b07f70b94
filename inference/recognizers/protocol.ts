/** Messages between a recognizer (main thread) and its worker; the same for every recognizer. */
import type { SerializedRecognizerError } from './errors.js';

/**
 * Test hooks, honoured only when set explicitly in code (never from the config file): crops of a given width
 * crash the worker or block it (a stuck run).
 */
export interface RecognizerWorkerDebug {
  crash_width?: number;
  hang_width?: number;
  hang_ms?: number;
}

export interface RecognizerWorkerInit<Init> {
  engine: Init;
  debug?: RecognizerWorkerDebug;
}

export interface RecognizeMessage {
  type: 'run';
  id: number;
  /** A private copy of the crop's bytes, transferred. */
  buffer: ArrayBuffer;
  width: number;
  height: number;
}

/** Asks the worker to finish its load or run, release its models and exit; its exit is the answer. */
export interface CloseMessage {
  type: 'close';
}

export type ToRecognizerWorker = RecognizeMessage | CloseMessage;

export type FromRecognizerWorker =
  | { type: 'ready' }
  | { type: 'init_error'; error: SerializedRecognizerError }
  | { type: 'result'; id: number; result: unknown; run_ms: number }
  | { type: 'run_error'; id: number; error: SerializedRecognizerError };
