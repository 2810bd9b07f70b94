import { performance } from 'node:perf_hooks';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { GateSpec } from './classes.js';
import { Candidates, decoderFactory, type Decoder, type DecoderName, type DecoderOptions, type OutputInfo, type OutputTensor, type ScoreGate } from './decoders/index.js';
import { DetectorError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import { postprocess, PostprocessScratch, type FrameGeometry } from './postprocess.js';
import { BYTES_TO_FLOAT_MODEL } from '../../core/paths.js';
import { byteDims, fillInput, inputByteLength, inputLayout, type InputLayout } from './input.js';
import { createSession, type SessionMemoryOptions } from './session.js';
import type { Detection } from './types.js';

export interface PipelineOptions {
  model_path: string;
  threads: number;
  spinning: boolean;
  decoder: DecoderName;
  decoder_options?: DecoderOptions;
  input_width: number;
  input_height: number;
  /** Resolved class names, in model output order. */
  class_names: string[];
  gate: GateSpec;
  nms_iou: number;
  min_area_px: number;
  max_detections: number;
  /** ONNX Runtime memory options (benchmarks); defaults as in session.ts. */
  session?: SessionMemoryOptions;
}

export interface ModelInfo {
  input_name: string;
  input_dims: (number | string)[];
  /** What the model takes (input.ts): the frame's uint8 bytes as they are, or float32 CHW 0..1 made from them in the worker. */
  input_layout: InputLayout;
  outputs: OutputInfo[];
  decoder: DecoderName;
  /** Classes the model scores, when its layout tells. */
  num_classes: number | undefined;
}

export interface PipelineFrame extends FrameGeometry {
  data: Uint8Array;
}

/**
 * session.run and post-processing of one input; `output_bytes`: the native buffers the runs returned.
 * `convert_ms`: bytes → float input in the worker (float models; 0 for byte models).
 */
interface Inferred {
  detections: Detection[];
  timing: { convert_ms: number; model_ms: number; post_ms: number };
  output_bytes: number;
}

export interface PipelineResult {
  detections: Detection[];
  /** pre_ms: the copy into the input buffer and, for a float model, the conversion (convert_ms of it). */
  timing: { pre_ms: number; convert_ms: number; model_ms: number; post_ms: number };
}

/**
 * One ONNX session with its reused buffers: frame bytes → input buffer (a copy) → for a float model, the
 * bytes-to-float graph → session.run → decoder → camera-pixel detections. In the detector's worker the main
 * thread has already done the first step (handoff.ts) and `runInput` does the rest (session.run blocks its
 * thread); `run` does all of it in-process (benchmarks).
 */
export class Pipeline {
  /** The in-process input buffer, allocated by the first `run` (the worker gets its inputs from the host). */
  private own: { input: ArrayBuffer; tensor: Tensor } | undefined;
  private readonly candidates = new Candidates();
  private readonly scratch = new PostprocessScratch();
  private readonly gate: ScoreGate;
  private readonly dims: readonly number[];
  /** The decoder's own inputs (the candidate model's kept classes and threshold): built once, fed every run. */
  private readonly extra: Record<string, Tensor>;

  private constructor(
    private readonly session: InferenceSession,
    /** models/bytes-to-float.onnx, for a float32_nchw model; undefined for a byte model. */
    private readonly convert: InferenceSession | undefined,
    private readonly decoder: Decoder,
    readonly info: ModelInfo,
    private readonly o: PipelineOptions,
    private readonly TensorClass: typeof Tensor,
  ) {
    this.gate = { byClass: Float32Array.from(o.gate.byClass), other: o.gate.other };
    this.dims = byteDims(o.input_width, o.input_height);
    const feeds = Object.entries(decoder.feeds?.(this.gate) ?? {});
    this.extra = Object.fromEntries(feeds.map(([name, v]) => [name, v.data instanceof BigInt64Array ? new TensorClass('int64', v.data, v.dims) : new TensorClass('float32', v.data, v.dims)]));
  }

  static async create(o: PipelineOptions): Promise<Pipeline> {
    const session = await createSession(o.model_path, { threads: o.threads, spinning: o.spinning, ...o.session });
    let convert: InferenceSession | undefined;
    try {
      const outputs: OutputInfo[] = session.outputMetadata.map((m) => ({ name: m.name, dims: m.isTensor ? [...m.shape] : [] }));
      const decoder = decoderFactory(o.decoder, o.decoder_options).bind(outputs, { width: o.input_width, height: o.input_height }, o.class_names.length);
      const own = decoder.inputNames ?? [];
      const missing = own.filter((n) => !session.inputNames.includes(n));
      if (missing.length > 0) throw new DetectorError('DETECTOR_MODEL_MISMATCH', `the model has no input ${missing.join(', ')} for its ${o.decoder} outputs`);
      const images = session.inputMetadata.filter((m) => !own.includes(m.name));
      const { layout, meta: input } = inputLayout(images, o.input_width, o.input_height);
      if (decoder.numClasses !== undefined && decoder.numClasses !== o.class_names.length) {
        throw new DetectorError(
          'DETECTOR_MODEL_MISMATCH',
          `the model scores ${decoder.numClasses} classes but ${o.class_names.length} class names are configured (detector.class_names)`,
        );
      }
      for (const name of decoder.outputNames) {
        const m = session.outputMetadata.find((x) => x.name === name);
        const want = decoder.outputType?.(name) ?? 'float32';
        if (m?.isTensor && m.type !== want) {
          throw new DetectorError('DETECTOR_MODEL_MISMATCH', `model output ${name} is ${m.type}; ${want} expected`);
        }
      }
      const { Tensor: TensorClass } = await import('onnxruntime-node');
      const info: ModelInfo = {
        input_name: input.name,
        input_dims: [...input.shape],
        input_layout: layout,
        outputs,
        decoder: o.decoder,
        num_classes: decoder.numClasses,
      };
      // One thread, never spinning: ~1 ms a 416x416 frame, in front of the model on the same thread.
      convert = layout === 'float32_nchw' ? await createSession(BYTES_TO_FLOAT_MODEL(), { threads: 1, spinning: false }) : undefined;
      const pipeline = new Pipeline(session, convert, decoder, info, o, TensorClass);
      if (own.length > 0) await pipeline.checkDecoderFeeds();
      return pipeline;
    } catch (err) {
      await Promise.allSettled([session.release(), convert?.release()]);
      throw err;
    }
  }

  /** The whole path in-process: pre-processing into this pipeline's own buffer, then `runInput`. */
  async run(frame: PipelineFrame, roi?: PolygonPoints): Promise<PipelineResult> {
    const { input_width: w, input_height: h } = this.o;
    if (frame.width !== w || frame.height !== h || frame.data.length !== w * h * 3) {
      throw new DetectorError(
        'DETECTOR_BAD_FRAME',
        `frame ${frame.width}x${frame.height} with ${frame.data.length} bytes does not match the model input ${w}x${h} RGB (${w * h * 3} bytes)`,
      );
    }
    const own = this.ownInput();
    const t0 = performance.now();
    fillInput(frame.data, own.input, w, h);
    const copy_ms = performance.now() - t0;
    const res = await this.infer(own.tensor, frame, roi);
    return { detections: res.detections, timing: { pre_ms: copy_ms + res.timing.convert_ms, ...res.timing } };
  }

  /** The conversion, session.run and post-processing on an input buffer already filled with the frame's bytes (fillInput). */
  async runInput(input: ArrayBuffer, frame: FrameGeometry, roi?: PolygonPoints): Promise<Inferred> {
    const { input_width: w, input_height: h } = this.o;
    const bytes = inputByteLength(w, h);
    if (input.byteLength !== bytes || frame.width !== w || frame.height !== h) {
      throw new DetectorError(
        'DETECTOR_BAD_FRAME',
        `input of ${input.byteLength} bytes for a ${frame.width}x${frame.height} frame does not match the model input ${w}x${h} RGB (${bytes} bytes)`,
      );
    }
    return this.infer(this.tensor(input), frame, roi);
  }

  /** One run on a blank input with the decoder's feeds: feeds the model refuses (a kept class it does not score) fail at load. */
  private async checkDecoderFeeds(): Promise<void> {
    const { input_width: w, input_height: h } = this.o;
    const blank = this.tensor(new ArrayBuffer(inputByteLength(w, h)));
    try {
      await this.runSession((await this.modelInput(blank)).image);
    } catch (err) {
      const fed = Object.entries(this.extra).map(([name, t]) => `${name} [${Array.from(t.data as ArrayLike<unknown>, String).join(', ')}]`);
      throw new DetectorError(
        'DETECTOR_MODEL_MISMATCH',
        `the model refuses its ${this.info.decoder} feeds (${fed.join('; ')}): ${(err as Error).message}; are detector.class_names the model's classes?`,
        { cause: err },
      );
    }
  }

  /** session.run alone on the in-process input (benchmarks: the model's own ceiling; a float model's input converted once). */
  async runModelOnly(): Promise<void> {
    const own = this.ownInput();
    own.image ??= (await this.modelInput(own.tensor)).image;
    await this.runSession(own.image);
  }

  async release(): Promise<void> {
    await Promise.all([this.session.release(), this.convert?.release()]);
  }

  /** The model's input from a byte tensor: itself, or a float model's CHW floats from the bytes-to-float graph. */
  private async modelInput(bytes: Tensor): Promise<{ image: Tensor; output_bytes: number }> {
    if (!this.convert) return { image: bytes, output_bytes: 0 };
    let out: InferenceSession.ReturnType;
    try {
      out = await this.convert.run({ [this.convert.inputNames[0]!]: bytes });
    } catch (err) {
      throw new DetectorError('DETECTOR_RUN_FAILED', `bytes-to-float conversion failed: ${(err as Error).message}`, { cause: err });
    }
    const image = out[this.convert.outputNames[0]!]!;
    return { image, output_bytes: (image.data as Float32Array).byteLength };
  }

  /** session.run on an image with the decoder's own feeds, fetching the decoder's outputs. */
  private runSession(image: Tensor): Promise<InferenceSession.ReturnType> {
    return this.session.run({ [this.info.input_name]: image, ...this.extra }, this.decoder.outputNames);
  }

  private tensor(input: ArrayBuffer): Tensor {
    return new this.TensorClass('uint8', new Uint8Array(input), this.dims);
  }

  private ownInput(): { input: ArrayBuffer; tensor: Tensor; image?: Tensor } {
    if (!this.own) {
      const input = new ArrayBuffer(inputByteLength(this.o.input_width, this.o.input_height));
      this.own = { input, tensor: this.tensor(input) };
    }
    return this.own;
  }

  private async infer(tensor: Tensor, frame: FrameGeometry, roi: PolygonPoints | undefined): Promise<Inferred> {
    const t0 = performance.now();
    const input = await this.modelInput(tensor);
    const t1 = performance.now();
    let raw: InferenceSession.ReturnType;
    try {
      raw = await this.runSession(input.image);
    } catch (err) {
      throw new DetectorError('DETECTOR_RUN_FAILED', `session.run failed: ${(err as Error).message}`, { cause: err });
    }
    const t2 = performance.now();
    const outputs: Record<string, OutputTensor> = {};
    let output_bytes = input.output_bytes;
    for (const name of this.decoder.outputNames) {
      const t = raw[name]!;
      outputs[name] = { data: t.data as Float32Array | Int32Array, dims: t.dims };
      output_bytes += outputs[name].data.byteLength;
    }
    this.candidates.reset();
    this.decoder.decode(outputs, this.gate, this.candidates);
    const detections = postprocess(
      this.candidates,
      frame,
      roi,
      { classNames: this.o.class_names, nmsIou: this.o.nms_iou, minAreaPx: this.o.min_area_px, maxDetections: this.o.max_detections },
      this.scratch,
    );
    const t3 = performance.now();
    return { detections, timing: { convert_ms: t1 - t0, model_ms: t2 - t1, post_ms: t3 - t2 }, output_bytes };
  }
}
