// The model's input as the session's metadata declares it, and how a frame (packed HWC RGB bytes, as ffmpeg
// writes them at the input size) reaches it. Every model is handed the frame's bytes as they are (a copy into
// a pooled buffer, handoff.ts); two layouts take them:
// - uint8_nhwc: uint8 [1,H,W,3], the bytes themselves (the bundled int8 model: the ÷255 is folded into its input
//   quantisation, models/build/byte-input.mjs).
// - float32_nchw: float32 [1,3,H,W] RGB / 255 (fp32 NanoDet, YOLOv8 exports): the worker turns the bytes into
//   that with a two-node ONNX graph (models/bytes-to-float.onnx, pipeline.ts) in ~1 ms a 416x416 frame.
//   The same loop in JavaScript took ~15 ms a 416x416 frame on the main thread under V8's lite mode.
import type { InferenceSession } from 'onnxruntime-node';
import { formatDims } from './decoders/index.js';
import { DetectorError } from './errors.js';

export type InputLayout = 'uint8_nhwc' | 'float32_nchw';

/** Bytes of one frame as the worker is handed it: width × height packed RGB. */
export function inputByteLength(width: number, height: number): number {
  return 3 * width * height;
}

/** The dims of the byte tensor a frame becomes (NHWC). */
export function byteDims(width: number, height: number): number[] {
  return [1, height, width, 3];
}

/**
 * Copies a frame's packed RGB bytes into an input buffer. DETECTOR_BAD_FRAME unless the frame and the buffer
 * both hold width × height pixels.
 */
export function fillInput(src: Uint8Array, dst: ArrayBuffer, width: number, height: number): void {
  const bytes = inputByteLength(width, height);
  if (src.length !== bytes || dst.byteLength !== bytes) {
    throw new DetectorError(
      'DETECTOR_BAD_FRAME',
      `frame of ${src.length} bytes / input buffer of ${dst.byteLength} bytes do not fit a ${width}x${height} RGB input (${bytes} bytes each)`,
    );
  }
  new Uint8Array(dst).set(src);
}

/**
 * The input layout of a model with this input metadata (InferenceSession.inputMetadata), checked against the
 * configured input size: uint8 [1,H,W,3] or float32 [1,3,H,W] (symbolic dims accepted). DETECTOR_MODEL_MISMATCH
 * for anything else.
 */
export function inputLayout(metas: readonly InferenceSession.ValueMetadata[], width: number, height: number): { layout: InputLayout; meta: InferenceSession.TensorValueMetadata } {
  const m = metas[0];
  const size = `${width}x${height}`;
  if (metas.length !== 1 || !m?.isTensor) {
    throw new DetectorError('DETECTOR_MODEL_MISMATCH', `the model has ${metas.length} inputs; one image input (float32 [1,3,H,W] or uint8 [1,H,W,3]) expected`);
  }
  const d = m.shape;
  const fits = (v: number | string | undefined, want: number) => typeof v !== 'number' || v === want;
  if (d.length === 4 && fits(d[0], 1)) {
    if (m.type === 'float32' && fits(d[1], 3) && fits(d[2], height) && fits(d[3], width)) return { layout: 'float32_nchw', meta: m };
    if (m.type === 'uint8' && fits(d[3], 3) && fits(d[1], height) && fits(d[2], width)) return { layout: 'uint8_nhwc', meta: m };
  }
  const [h, w, c] = m.type === 'uint8' ? [d[1], d[2], d[3]] : [d[2], d[3], d[1]];
  const hint = typeof h === 'number' && typeof w === 'number' && c === 3 && d.length === 4 ? `; set detector.input_size to ${w}x${h}` : '';
  throw new DetectorError(
    'DETECTOR_MODEL_MISMATCH',
    `model input ${m.name} ${m.type} ${formatDims(d)} does not fit input_size ${size} (float32 [1,3,H,W] RGB/255 or uint8 [1,H,W,3] RGB bytes expected)${hint}`,
  );
}
