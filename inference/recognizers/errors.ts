import { AgentError } from '../../core/errors.js';

/**
 * Stable codes of second-stage recognizer errors:
 * - RECOGNIZER_MODEL_LOAD: a model or dictionary file is missing or ONNX Runtime refused it
 * - RECOGNIZER_BAD_CROP: the crop is empty or its byte length does not match width x height x 3
 * - RECOGNIZER_RUN_FAILED: a run threw for this crop (the worker stays up)
 * - RECOGNIZER_BUSY: the queue in front of the worker is full; the crop was not read
 * - RECOGNIZER_STUCK: a run took longer than the stuck timeout (the worker was terminated), or the models did not load in time
 * - RECOGNIZER_CRASHED: the worker thread died; the next crop starts a new one
 * - RECOGNIZER_FAILED: too many worker failures in the window; the recognizer gave up
 * - RECOGNIZER_NOT_RUNNING: recognize() before start() or after stop()
 */
export type RecognizerErrorCode =
  | 'RECOGNIZER_MODEL_LOAD'
  | 'RECOGNIZER_BAD_CROP'
  | 'RECOGNIZER_RUN_FAILED'
  | 'RECOGNIZER_BUSY'
  | 'RECOGNIZER_STUCK'
  | 'RECOGNIZER_CRASHED'
  | 'RECOGNIZER_FAILED'
  | 'RECOGNIZER_NOT_RUNNING';

export class RecognizerError extends AgentError {
  declare readonly code: RecognizerErrorCode;
  constructor(code: RecognizerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** What crosses the worker boundary (structured clone drops the class). */
export interface SerializedRecognizerError {
  code: RecognizerErrorCode;
  message: string;
}

export function serializeRecognizerError(err: unknown, fallback: RecognizerErrorCode): SerializedRecognizerError {
  if (err instanceof RecognizerError) return { code: err.code, message: err.message };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

export function deserializeRecognizerError(e: SerializedRecognizerError): RecognizerError {
  return new RecognizerError(e.code, e.message);
}
