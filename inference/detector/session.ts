import type { InferenceSession } from 'onnxruntime-node';
import { DetectorError } from './errors.js';

export interface SessionOptions {
  threads: number;
  spinning: boolean;
}

/** ONNX Runtime session options: intra-op threads, spinning as a session config entry, full graph optimisation. */
export function sessionOptions(o: SessionOptions): InferenceSession.SessionOptions {
  const spin = o.spinning ? '1' : '0';
  return {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Flattened by the Node binding into config entries session.intra_op.allow_spinning etc.
    // (onnxruntime_session_options_config_keys.h). Spinning off: idle threads sleep instead of burning a core.
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}

/** Loads the model; DETECTOR_MODEL_LOAD when the file is missing or ONNX Runtime refuses it. */
export async function createSession(modelPath: string, o: SessionOptions): Promise<InferenceSession> {
  const ort = await import('onnxruntime-node');
  try {
    return await ort.InferenceSession.create(modelPath, sessionOptions(o));
  } catch (err) {
    throw new DetectorError('DETECTOR_MODEL_LOAD', `cannot load model ${modelPath}: ${(err as Error).message}`, { cause: err });
  }
}
