// The model's input as the session's metadata declares it, and how a frame (packed HWC RGB bytes, as ffmpeg
// writes them at the input size) becomes that input. Two layouts:
// - uint8_nhwc: uint8 [1,H,W,3], the frame's bytes as they are (the bundled int8 model: the ÷255 is folded into
//   its input quantisation, models/build/byte-input.mjs). Pre-processing is a copy.
// - float32_nchw: float32 [1,3,H,W] RGB / 255 (fp32 NanoDet, YOLOv8 exports): hwcToChw.
import type { InferenceSession } from 'onnxruntime-node';
import { formatDims } from './decoders/index.js';
import { DetectorError } from './errors.js';
import { hwcToChw } from './preprocess.js';

export type InputLayout = 'uint8_nhwc' | 'float32_nchw';

/** Bytes of one model input buffer of `layout` for a width × height frame. */
export function inputByteLength(layout: InputLayout, width: number, height: number): number {
  return (layout === 'uint8_nhwc' ? 1 : 4) * 3 * width * height;
}

/** The tensor dims of `layout`. */
export function inputDims(layout: InputLayout, width: number, height: number): number[] {
  return layout === 'uint8_nhwc' ? [1, height, width, 3] : [1, 3, height, width];
}

/** A typed view of an input buffer, as the session takes it. */
export function inputView(layout: InputLayout, buf: ArrayBuffer): Uint8Array | Float32Array {
  return layout === 'uint8_nhwc' ? new Uint8Array(buf) : new Float32Array(buf);
}

/**
 * Fills an input buffer from a frame's packed RGB bytes: a copy for uint8 NHWC models, HWC → CHW float32 0..1
 * for float ones. DETECTOR_BAD_FRAME unless the frame and the buffer both hold width × height pixels.
 */
export function fillInput(layout: InputLayout, src: Uint8Array, dst: ArrayBuffer, width: number, height: number): void {
  const pixels = width * height;
  if (src.length !== 3 * pixels || dst.byteLength !== inputByteLength(layout, width, height)) {
    throw new DetectorError(
      'DETECTOR_BAD_FRAME',
      `frame of ${src.length} bytes / input buffer of ${dst.byteLength} bytes do not fit a ${width}x${height} ${layout} input (${3 * pixels} bytes / ${inputByteLength(layout, width, height)} bytes)`,
    );
  }
  if (layout === 'uint8_nhwc') new Uint8Array(dst).set(src);
  else hwcToChw(src, new Float32Array(dst), pixels);
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
