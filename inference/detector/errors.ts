import { AgentError } from '../../core/errors.js';

/**
 * Stable codes of detector errors:
 * - DETECTOR_CONFIG: the detector section contradicts itself (unknown class in `classes`, class names unreadable)
 * - DETECTOR_MODEL_LOAD: the model file is missing or ONNX Runtime refused it
 * - DETECTOR_MODEL_MISMATCH: the model's inputs/outputs do not fit the configured input size or decoder
 * - DETECTOR_BAD_FRAME: the frame does not match the model input (size, byte length)
 * - DETECTOR_RUN_FAILED: session.run threw for this frame (the worker stays up)
 * - DETECTOR_STUCK: a run took longer than stuck_timeout_s; the worker was restarted
 * - DETECTOR_CRASHED: the worker thread died; it was restarted
 * - DETECTOR_FAILED: too many restarts in the window; the detector gave up (fatal)
 * - DETECTOR_NOT_RUNNING: detect() before start() or after stop()
 */
export type DetectorErrorCode =
  | 'DETECTOR_CONFIG'
  | 'DETECTOR_MODEL_LOAD'
  | 'DETECTOR_MODEL_MISMATCH'
  | 'DETECTOR_BAD_FRAME'
  | 'DETECTOR_RUN_FAILED'
  | 'DETECTOR_STUCK'
  | 'DETECTOR_CRASHED'
  | 'DETECTOR_FAILED'
  | 'DETECTOR_NOT_RUNNING';

export class DetectorError extends AgentError {
  declare readonly code: DetectorErrorCode;
  constructor(code: DetectorErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** What crosses the worker boundary (structured clone drops the class). */
export interface SerializedError {
  code: DetectorErrorCode;
  message: string;
}

export function serializeError(err: unknown, fallback: DetectorErrorCode): SerializedError {
  if (err instanceof DetectorError) return { code: err.code, message: err.message };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

export function deserializeError(e: SerializedError): DetectorError {
  return new DetectorError(e.code, e.message);
}
