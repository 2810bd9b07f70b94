import type { InferenceSession } from 'onnxruntime-node';
import { loadOrt } from '../ort.js';
import { DetectorError } from './errors.js';

/**
 * ONNX Runtime's memory features (bench/memory.ts measures what they cost): the arena and pre-packing on unless
 * set false; memory patterns off unless set true.
 */
export interface SessionMemoryOptions {
  /** The CPU arena allocator (enableCpuMemArena): keeps freed blocks for reuse, grows in chunks. */
  cpu_mem_arena?: boolean;
  /**
   * Memory pattern planning (enableMemPattern): one pre-planned block per run for the intermediate tensors. Off by
   * default: with the arena on it only holds a second copy of that space. Five alternating rounds, int8 detector,
   * one session each: 22.7 MB RssAnon against 28.2 (medians), run 11.3 against 14.0 ms (not slower).
   */
  mem_pattern?: boolean;
  /** Pre-packing of constant weights into the kernels' layouts (session.disable_prepacking when false). */
  prepacking?: boolean;
}

export interface SessionOptions extends SessionMemoryOptions {
  threads: number;
  spinning: boolean;
}

/** ONNX Runtime session options: intra-op threads, spinning as a session config entry, full graph optimisation. */
export function sessionOptions(o: SessionOptions): InferenceSession.SessionOptions {
  const spin = o.spinning ? '1' : '0';
  const session: Record<string, unknown> = { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } };
  if (o.prepacking === false) session.disable_prepacking = '1';
  return {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(o.cpu_mem_arena === false ? { enableCpuMemArena: false } : {}),
    enableMemPattern: o.mem_pattern === true,
    // Flattened by the Node binding into config entries session.intra_op.allow_spinning etc.
    // (onnxruntime_session_options_config_keys.h). Spinning off: idle threads sleep instead of burning a core.
    extra: { session },
  };
}

/** Loads the model; DETECTOR_MODEL_LOAD when the file is missing or ONNX Runtime refuses it. */
export async function createSession(modelPath: string, o: SessionOptions): Promise<InferenceSession> {
  const ort = await loadOrt();
  try {
    return await ort.InferenceSession.create(modelPath, sessionOptions(o));
  } catch (err) {
    throw new DetectorError('DETECTOR_MODEL_LOAD', `cannot load model ${modelPath}: ${(err as Error).message}`, { cause: err });
  }
}
