/**
 * The plate reader's work on one vehicle crop, run inside its worker thread: (1) the PP-OCRv4 DB detector
 * finds text regions on the crop scaled to `det_side_px`; (2) each region is warped upright to the full-resolution
 * crop's pixels and all are read in one batch by the PP-OCRv4 CTC recogniser; (3) regions become one- and
 * two-line plate candidates, each normalised and checked against the national format; the best valid one
 * (else the most confident) is the read.
 */
import { readFile } from 'node:fs/promises';
import type { InferenceSession } from 'onnxruntime-node';
import { sessionOptions } from '../../detector/session.js';
import type { RgbFrame } from '../../../ingest/frame.js';
import { loadOrt } from '../../ort.js';
import { RecognizerError } from '../errors.js';
import type { RecognizerEngine } from '../types.js';
import { CtcDictionary } from './ctc.js';
import { DB_DEFAULTS, dbBoxes, rectToQuad } from './db.js';
import { normalizePlate } from './format.js';
import { plateCandidates, type Bounds, type PlateCandidate } from './layout.js';
import type { PlateModelPaths } from './models.js';
import { detInput, recInput, REC_HEIGHT, type Quad } from './tensor.js';

export interface PlateEngineOptions extends PlateModelPaths {
  /** ONNX Runtime intra-op threads of each session. */
  threads: number;
  /** Longer side of the detector input, pixels (a multiple of 32 works best). Default DEFAULT_DET_SIDE_PX. */
  det_side_px?: number;
  /** Most text regions read per crop (largest first). Default 6. */
  max_regions?: number;
}

/** One read plate. */
export interface PlateRead {
  /** Canonical (`51F-123.45`, `59X1-234.56`) when valid_format, else the cleaned OCR text. */
  text: string;
  /** Mean character probability, times 0.9 per character the confusion maps changed, 0-1. */
  confidence: number;
  valid_format: boolean;
  layout: 'one_line' | 'two_line';
  /** The recogniser's text, lines joined by ` / `. */
  raw: string;
  /** Where the plate is in the crop, pixels. */
  box: Bounds;
}

export interface PlateResult {
  /** null when no text region was found. */
  plate: PlateRead | null;
  /** Text regions read. */
  regions: number;
  timing: { det_ms: number; rec_ms: number; total_ms: number };
}

/**
 * Detector input side: 320 keeps det + rec within 60 ms a vehicle on a 2-core box; plates of realistic size
 * (car plates 110+ px wide, motorbike plates 80+ px at full resolution) still read exactly.
 */
export const DEFAULT_DET_SIDE_PX = 320;
/** A region smaller than this (text height in crop pixels) is not worth a recogniser run. */
const MIN_TEXT_PX = 6;
/** Detector input never enlarges a small crop more than this. */
const MAX_UPSCALE = 2;

const ms = (t0: number) => performance.now() - t0;

type Ort = Awaited<ReturnType<typeof loadOrt>>;

async function loadSession(ort: Ort, path: string, threads: number): Promise<InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, sessionOptions({ threads, spinning: false }));
  } catch (err) {
    throw new RecognizerError('RECOGNIZER_MODEL_LOAD', `cannot load plate model ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function scoreCandidate(c: PlateCandidate): PlateRead {
  const f = normalizePlate(c.lines);
  const mean = c.char_conf.length ? c.char_conf.reduce((s, p) => s + p, 0) / c.char_conf.length : 0;
  return { text: f.text, confidence: mean * 0.9 ** f.substitutions, valid_format: f.valid_format, layout: c.layout, raw: c.lines.join(' / '), box: c.box };
}

/** The best of the candidates: valid ones first, then by confidence. */
export function bestRead(candidates: readonly PlateCandidate[]): PlateRead | null {
  let best: PlateRead | null = null;
  for (const c of candidates) {
    const r = scoreCandidate(c);
    if (!best || (r.valid_format && !best.valid_format) || (r.valid_format === best.valid_format && r.confidence > best.confidence)) best = r;
  }
  return best;
}

export class PlateEngine implements RecognizerEngine<PlateResult> {
  private constructor(
    private readonly ort: Ort,
    private readonly det: InferenceSession,
    private readonly rec: InferenceSession,
    private readonly dict: CtcDictionary,
    private readonly detSide: number,
    private readonly maxRegions: number,
  ) {}

  static async create(o: PlateEngineOptions): Promise<PlateEngine> {
    let text: string;
    try {
      text = await readFile(o.dictionary, 'utf8');
    } catch (err) {
      throw new RecognizerError('RECOGNIZER_MODEL_LOAD', `cannot read plate dictionary ${o.dictionary}: ${(err as Error).message}`, { cause: err });
    }
    const ort = await loadOrt();
    const det = await loadSession(ort, o.det_model, o.threads);
    const rec = await loadSession(ort, o.rec_model, o.threads).catch(async (err: unknown) => {
      await det.release();
      throw err;
    });
    return new PlateEngine(ort, det, rec, new CtcDictionary(text), o.det_side_px ?? DEFAULT_DET_SIDE_PX, o.max_regions ?? 6);
  }

  async run(crop: RgbFrame): Promise<PlateResult> {
    const { width, height, data } = crop;
    if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
      throw new RecognizerError('RECOGNIZER_BAD_CROP', `plate crop is ${width}x${height} with ${data.length} bytes; expected ${width}x${height}x3 packed RGB`);
    }
    const t0 = performance.now();
    const quads = await this.detect(crop);
    const det_ms = ms(t0);
    const t1 = performance.now();
    const regions = quads.length ? await this.read(crop, quads) : [];
    const rec_ms = ms(t1);
    const plate = bestRead(plateCandidates(regions));
    return { plate, regions: quads.length, timing: { det_ms, rec_ms, total_ms: ms(t0) } };
  }

  async release(): Promise<void> {
    await Promise.allSettled([this.det.release(), this.rec.release()]);
  }

  /** Text regions on the crop, crop pixels, largest first. */
  private async detect(crop: RgbFrame): Promise<Quad[]> {
    const input = await detInput(crop, this.detSide, MAX_UPSCALE);
    const out = await this.det.run({ [this.det.inputNames[0]!]: new this.ort.Tensor('float32', input.data, [1, 3, input.height, input.width]) });
    const prob = out[this.det.outputNames[0]!]!;
    const [, , mh = 0, mw = 0] = prob.dims;
    const rects = dbBoxes(prob.data as Float32Array, mw, mh, { ...DB_DEFAULTS, max_boxes: this.maxRegions });
    return rects.map((r) => rectToQuad(r, input.sx, input.sy)).filter((q) => Math.hypot(q.bl[0] - q.tl[0], q.bl[1] - q.tl[1]) >= MIN_TEXT_PX);
  }

  /** Reads the regions in one recogniser batch. */
  private async read(crop: RgbFrame, quads: Quad[]) {
    const input = recInput(crop, quads);
    const out = await this.rec.run({ [this.rec.inputNames[0]!]: new this.ort.Tensor('float32', input.data, [quads.length, 3, REC_HEIGHT, input.width]) });
    const probs = out[this.rec.outputNames[0]!]!;
    const [, steps = 0, classes = 0] = probs.dims;
    if (classes !== this.dict.classes) {
      throw new RecognizerError('RECOGNIZER_RUN_FAILED', `plate recogniser gives ${classes} classes but its dictionary has ${this.dict.classes}`);
    }
    return quads.map((quad, n) => {
      // Frames past a region's own width look at padding: decode only its share.
      const own = Math.max(1, Math.round((steps * input.widths[n]!) / input.width));
      return { quad, ...this.dict.decode(probs.data as Float32Array, n, steps, classes, own) };
    });
  }
}
