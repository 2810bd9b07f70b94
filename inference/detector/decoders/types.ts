import { DetectorError } from '../errors.js';

export type DecoderName = 'nanodet' | 'yolov8' | 'decoded';

/** A model output as the session describes it; a string dimension is symbolic (dynamic). */
export interface OutputInfo {
  name: string;
  dims: readonly (number | string)[];
}

export interface OutputTensor {
  /** float32 for scores and boxes; int32 where a decoder says so (`outputType`). */
  data: Float32Array | Int32Array;
  dims: readonly number[];
}

/** A model input a decoder feeds besides the image (the same every run for a given gate). */
export interface DecoderInput {
  data: BigInt64Array | Float32Array;
  dims: number[];
}

export interface InputSize {
  width: number;
  height: number;
}

/**
 * Minimum score per class id (`Infinity` = class not kept); ids at or beyond `byClass.length` use `other`.
 * Decoders skip anything below it, so dropped classes cost no decoding work.
 */
export interface ScoreGate {
  byClass: Float32Array;
  other: number;
}

export function gateFor(gate: ScoreGate, classId: number): number {
  return classId < gate.byClass.length ? gate.byClass[classId]! : gate.other;
}

/** Growable struct-of-arrays of candidate boxes in model input pixels. */
export class Candidates {
  count = 0;
  x1 = new Float32Array(256);
  y1 = new Float32Array(256);
  x2 = new Float32Array(256);
  y2 = new Float32Array(256);
  score = new Float32Array(256);
  cls = new Int32Array(256);

  reset(): void {
    this.count = 0;
  }

  push(x1: number, y1: number, x2: number, y2: number, score: number, cls: number): void {
    if (this.count === this.x1.length) this.grow();
    const i = this.count++;
    this.x1[i] = x1;
    this.y1[i] = y1;
    this.x2[i] = x2;
    this.y2[i] = y2;
    this.score[i] = score;
    this.cls[i] = cls;
  }

  private grow(): void {
    const n = this.x1.length * 2;
    const f = (a: Float32Array) => {
      const b = new Float32Array(n);
      b.set(a);
      return b;
    };
    this.x1 = f(this.x1);
    this.y1 = f(this.y1);
    this.x2 = f(this.x2);
    this.y2 = f(this.y2);
    this.score = f(this.score);
    const c = new Int32Array(n);
    c.set(this.cls);
    this.cls = c;
  }
}

/** A decoder bound to one model's outputs. */
export interface Decoder {
  readonly name: DecoderName;
  /** Classes the model scores, when the layout tells (not for `decoded`). */
  readonly numClasses: number | undefined;
  /** The outputs to fetch from session.run. */
  readonly outputNames: readonly string[];
  /** Model inputs this decoder feeds (not the image), with their values for a gate. */
  readonly inputNames?: readonly string[];
  feeds?(gate: ScoreGate): Record<string, DecoderInput>;
  /** The element type of an output when it is not float32. */
  outputType?(name: string): 'int32' | undefined;
  /** Appends candidates (boxes in model input pixels, one class per box) scoring at least their class's gate. */
  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void;
}

export interface DecoderFactory {
  readonly name: DecoderName;
  /** Throws DETECTOR_MODEL_MISMATCH when the outputs do not fit this layout. */
  bind(outputs: readonly OutputInfo[], input: InputSize, numClassesHint?: number): Decoder;
}

export function formatDims(dims: readonly (number | string)[]): string {
  return `[${dims.join(',')}]`;
}

export function formatOutputs(outputs: readonly OutputInfo[]): string {
  return outputs.map((o) => `${o.name} ${formatDims(o.dims)}`).join(', ');
}

/** Best guess of the layout a model's outputs follow, for error messages. */
export function suggestDecoder(outputs: readonly OutputInfo[]): DecoderName | undefined {
  const r3 = outputs.filter((o) => o.dims.length === 3);
  if (outputs.some((o) => (o.dims.length === 3 || o.dims.length === 2) && o.dims[o.dims.length - 1] === 6)) return 'decoded';
  if (r3.length >= 2 && r3.length % 2 === 0 && r3.every((o) => /cls|reg/i.test(o.name) || typeof o.dims[1] === 'number')) {
    const ns = new Set(r3.map((o) => o.dims[1]));
    if (ns.size === r3.length / 2) return 'nanodet';
  }
  const one = r3[0];
  if (r3.length === 1 && one && typeof one.dims[1] === 'number' && one.dims[1] >= 5) return 'yolov8';
  if (r3.length === 1 && one && typeof one.dims[2] === 'number' && one.dims[2] >= 5) return 'yolov8';
  return undefined;
}

export function mismatch(decoder: DecoderName, outputs: readonly OutputInfo[], why: string): DetectorError {
  const hint = suggestDecoder(outputs);
  const tail = hint && hint !== decoder ? `; try decoder: ${hint}` : '';
  const what = outputs.length === 1 ? `model output ${formatDims(outputs[0]!.dims)}` : `model outputs ${formatOutputs(outputs)}`;
  return new DetectorError('DETECTOR_MODEL_MISMATCH', `${what} does not fit decoder ${decoder} (${why})${tail}`);
}

export function isNum(d: number | string | undefined): d is number {
  return typeof d === 'number';
}
