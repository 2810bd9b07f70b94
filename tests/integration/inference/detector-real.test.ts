// The bundled NanoDet (models/nanodet.onnx) on real photos (darknet's dog.jpg and person.jpg): the decoder's
// conventions (anchor centres, sigmoid, side order) checked against reference boxes drawn by hand and checked
// by eye. Set DETECTOR_RENDER=<dir> to write the photos with reference (cyan) and detected (lime) boxes.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { BYTES_TO_FLOAT_MODEL, DEFAULT_MODEL, packageRoot } from '../../../core/paths.js';
import { DetectorSchema } from '../../../config/schema/detector.js';
import { pipelineOptions } from '../../../inference/detector/detector.js';
import { Detector, detectImage, iou, loadImageFrame, type Detection } from '../../../inference/detector/index.js';
import { byteDims, fillInput, inputByteLength, inputLayout } from '../../../inference/detector/input.js';
import { Pipeline, type PipelineOptions } from '../../../inference/detector/pipeline.js';

const MODEL = DEFAULT_MODEL();
const photo = (name: string) => join(packageRoot(), 'tests', 'fixtures', 'photos', name);
const HAVE = existsSync(MODEL) && existsSync(photo('dog.jpg')) && existsSync(photo('person.jpg'));

type Box = [number, number, number, number];
interface Ref {
  classes: string[];
  box: Box;
}
/** Drawn by hand on the photos (camera pixels) and checked visually. */
const REFS: Record<string, Ref[]> = {
  'dog.jpg': [
    { classes: ['bicycle'], box: [125, 128, 568, 418] },
    { classes: ['dog'], box: [130, 222, 312, 540] },
    { classes: ['truck', 'car'], box: [466, 82, 690, 168] }, // a white pickup: NanoDet says truck and/or car
  ],
  'person.jpg': [
    { classes: ['person'], box: [188, 98, 275, 373] },
    { classes: ['horse'], box: [405, 138, 603, 345] },
    { classes: ['dog'], box: [66, 263, 203, 345] },
  ],
};
const ALL = { classes: [] as string[], threads: 2 };

function bestIou(ds: Detection[], ref: Ref): number {
  return Math.max(0, ...ds.filter((d) => ref.classes.includes(d.class_name)).map((d) => iou(d.box, ref.box)));
}

async function render(name: string, tag: string, ds: Detection[]): Promise<void> {
  const out = process.env.DETECTOR_RENDER;
  if (!out) return;
  mkdirSync(out, { recursive: true });
  const m = await sharp(photo(name)).metadata();
  const rect = (b: readonly number[], color: string, label: string) =>
    `<rect x="${b[0]}" y="${b[1]}" width="${b[2]! - b[0]!}" height="${b[3]! - b[1]!}" fill="none" stroke="${color}" stroke-width="2"/>` +
    `<text x="${b[0]! + 3}" y="${b[3]! - 4}" fill="${color}" font-size="14">${label}</text>`;
  const svg =
    `<svg width="${m.width}" height="${m.height}" xmlns="http://www.w3.org/2000/svg">` +
    REFS[name]!.map((r) => rect(r.box, 'cyan', r.classes[0]!)).join('') +
    ds.map((d) => rect(d.box, 'lime', `${d.class_name} ${d.score.toFixed(2)}`)).join('') +
    '</svg>';
  await sharp(photo(name)).composite([{ input: Buffer.from(svg) }]).png().toFile(join(out, `${name.replace('.jpg', '')}-${tag}.png`));
}

describe.skipIf(!HAVE)('detector on real photos with the bundled NanoDet', () => {
  const detectors: Detector[] = [];
  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
  });
  async function start(cfg: Record<string, unknown>, opts = {}): Promise<Detector> {
    const d = new Detector(DetectorSchema.parse({ model_path: MODEL, ...ALL, ...cfg }), silentLogger(), opts);
    detectors.push(d);
    await d.start();
    return d;
  }

  describe.each(['stretch', 'letterbox'] as const)('resize %s', (resize) => {
    let d: Detector;
    beforeAll(async () => {
      d = await start({ resize });
    });

    it.each(Object.keys(REFS))('%s: finds every reference object (IoU >= 0.5) and nothing else', async (name) => {
      const res = await d.detectImage(photo(name));
      await render(name, resize, res.detections);
      for (const ref of REFS[name]!) {
        expect(bestIou(res.detections, ref), `${name}: ${ref.classes.join('/')}`).toBeGreaterThanOrEqual(0.5);
      }
      // No false positives at the default threshold (0.3): every detection is one of the reference objects.
      for (const det of res.detections) {
        const matched = REFS[name]!.some((ref) => ref.classes.includes(det.class_name) && iou(det.box, ref.box) >= 0.5);
        expect(matched, `${name}: unexpected ${det.class_name} ${det.score} [${det.box.join(', ')}]`).toBe(true);
      }
    });
  });

  it('anchor centres at (col + 0.5) * stride fit the photos; col * stride shifts every box by half a cell', async () => {
    const off0 = await start({}, { decoder_options: { nanodet: { centerOffset: 0 } } });
    const offHalf = await start({});
    let sum0 = 0;
    let sumHalf = 0;
    for (const name of Object.keys(REFS)) {
      const a = (await off0.detectImage(photo(name))).detections;
      const b = (await offHalf.detectImage(photo(name))).detections;
      for (const ref of REFS[name]!) {
        sum0 += bestIou(a, ref);
        sumHalf += bestIou(b, ref);
      }
    }
    const n = Object.values(REFS).flat().length;
    expect(sumHalf / n).toBeGreaterThan(0.75);
    expect(sumHalf / n).toBeGreaterThan(sum0 / n + 0.05);
  });

  it('class outputs are already sigmoid probabilities and box outputs are raw logits', async () => {
    const session = await ort.InferenceSession.create(MODEL);
    const f = await loadImageFrame(photo('dog.jpg'), { width: 416, height: 416 });
    // The model's own input (the bundled int8 model: the frame's uint8 bytes, NHWC).
    expect(inputLayout(session.inputMetadata.filter((m) => m.name === 'images'), 416, 416).layout).toBe('uint8_nhwc');
    const buf = new ArrayBuffer(inputByteLength(416, 416));
    fillInput(f.data, buf, 416, 416);
    const tensor = new ort.Tensor('uint8', new Uint8Array(buf), byteDims(416, 416));
    // The int8 model returns only its candidate anchors (models/build/candidates.mjs): fed every class and a zero
    // threshold, every anchor is a candidate, so its rows are the whole dense heads.
    const out = await session.run({
      images: tensor,
      classes: new ort.Tensor('int64', BigInt64Array.from({ length: 80 }, (_, i) => BigInt(i)), [80]),
      min_score: new ort.Tensor('float32', Float32Array.of(0), []),
    });
    for (const s of [8, 16, 32]) {
      expect(out[`anchors_s${s}`]!.data.length).toBe((416 / s) ** 2);
      const cls = out[`scores_s${s}`]!.data as Float32Array;
      const reg = out[`dists_s${s}`]!.data as Float32Array;
      expect(cls.length).toBe((416 / s) ** 2 * 80);
      expect(cls.reduce((a, b) => Math.min(a, b))).toBeGreaterThanOrEqual(0);
      expect(cls.reduce((a, b) => Math.max(a, b))).toBeLessThanOrEqual(1);
      expect(reg.reduce((a, b) => Math.min(a, b))).toBeLessThan(0);
    }
    await session.release();
  });

  it('the candidate model refuses, at load, a kept class it does not score (class_names longer than its 80)', async () => {
    const opts = (kept: number): PipelineOptions => {
      const byClass = new Array<number>(100).fill(Infinity);
      byClass[kept] = 0.3;
      const class_names = Array.from({ length: 100 }, (_, i) => `c${i}`);
      return { model_path: MODEL, threads: 1, spinning: false, decoder: 'nanodet', input_width: 416, input_height: 416, class_names, gate: { byClass, other: Infinity }, nms_iou: 0.5, min_area_px: 0, max_detections: 10 };
    };
    await expect(Pipeline.create(opts(95))).rejects.toMatchObject({
      code: 'DETECTOR_MODEL_MISMATCH',
      message: expect.stringMatching(/refuses its nanodet feeds \(classes \[95\]; min_score \[0\.3.*detector\.class_names/),
    });
    // The same names keeping a class the model has: it loads.
    const ok = await Pipeline.create(opts(7));
    await ok.release();
  });

  it('detectImage() runs the default model once with defaults (road users only)', async () => {
    const res = await detectImage(photo('person.jpg'), { threads: 2 });
    // The bundled int8 model takes the frame's bytes as they are (models/build/byte-input.mjs) and returns only
    // candidate anchors of the classes it is fed (candidates.mjs), so it does not say how many it scores.
    expect(res.model).toMatchObject({ decoder: 'nanodet', num_classes: undefined, input_name: 'images', input_dims: [1, 416, 416, 3], input_layout: 'uint8_nhwc' });
    expect(res.detections.map((x) => x.class_name)).toEqual(['person']); // horse and dog are not road users
    expect(res.timing.model_ms).toBeGreaterThan(0);
  });
});

// A float-input model (the fp32 NanoDet; YOLOv8 exports alike) is handed the frame's bytes like the int8 one; the
// worker turns them into float32 CHW RGB/255 with models/bytes-to-float.onnx. That graph must give exactly the
// floats the JavaScript conversion gave before it (byte / 255, planar R, G, B), and the model the same detections.
describe.skipIf(!HAVE)('float-input models: the bytes-to-float graph', () => {
  const FP32 = join(packageRoot(), 'models', 'nanodet.onnx');
  const floatsOf = (bytes: Uint8Array, w: number, h: number): Float32Array => {
    const out = new Float32Array(3 * w * h);
    for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) out[c * w * h + p] = bytes[p * 3 + c]! / 255;
    return out;
  };

  it('turns every byte value into byte / 255, planar in R, G, B order, at any input size', async () => {
    const session = await ort.InferenceSession.create(BYTES_TO_FLOAT_MODEL());
    try {
      for (const [w, h] of [[16, 16], [416, 416], [640, 384]] as const) {
        const bytes = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 131 + (i >> 7)) % 256);
        const out = await session.run({ bytes: new ort.Tensor('uint8', bytes, byteDims(w, h)) });
        expect(out.image!.dims).toEqual([1, 3, h, w]);
        expect(out.image!.data).toEqual(floatsOf(bytes, w, h));
      }
    } finally {
      await session.release();
    }
  });

  it('the fp32 model through the pipeline finds what it finds fed the floats directly', async () => {
    const cfg = DetectorSchema.parse({ model_path: FP32, ...ALL });
    const pipeline = await Pipeline.create(pipelineOptions(cfg));
    const direct = await ort.InferenceSession.create(FP32);
    try {
      expect(pipeline.info.input_layout).toBe('float32_nchw');
      for (const name of Object.keys(REFS)) {
        const f = await loadImageFrame(photo(name), { width: 416, height: 416 });
        const res = await pipeline.run(f);
        expect(res.timing.convert_ms).toBeGreaterThan(0);
        expect(res.timing.pre_ms).toBeGreaterThanOrEqual(res.timing.convert_ms);
        for (const ref of REFS[name]!) expect(bestIou(res.detections, ref), `${name}: ${ref.classes.join('/')}`).toBeGreaterThanOrEqual(0.5);
        // Fed the floats made in JavaScript, the model's best class score anywhere is the pipeline's best detection.
        const out = await direct.run({ images: new ort.Tensor('float32', floatsOf(f.data, 416, 416), [1, 3, 416, 416]) });
        let best = 0;
        for (const s of [8, 16, 32]) for (const v of out[`cls_s${s}`]!.data as Float32Array) best = Math.max(best, v);
        expect(Math.max(...res.detections.map((d) => d.score))).toBeCloseTo(best, 3); // scores are reported to 4 decimals
      }
    } finally {
      await Promise.all([pipeline.release(), direct.release()]);
    }
  });
});

