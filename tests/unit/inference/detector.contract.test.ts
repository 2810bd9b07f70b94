// One contract, every decoder (STYLE: contract test suites). Each decoder gets a tiny generated ONNX model whose
// outputs encode the same scene (testkit/onnx-models.ts) and must yield the same detections, end to end:
// worker thread, ONNX Runtime, decoder, thresholds, class filter, NMS, min area, ROI, mapping to camera pixels.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { DetectorSchema } from '../../../config/schema/detector.js';
import { buildGate } from '../../../inference/detector/classes.js';
import { Detector, DetectorError, type Detection, type DetectorFrame, type DetectResult } from '../../../inference/detector/index.js';
import { Pipeline } from '../../../inference/detector/pipeline.js';
import { CONTRACT_CLASSES, CONTRACT_INPUT, CONTRACT_SCENE, constantModel, encodeScene, LAYOUTS, writeContractModels, type Layout } from '../../../testkit/onnx-models.js';

const { width: W, height: H } = CONTRACT_INPUT;
let dir: string;
let models: Record<Layout, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'detector-contract-'));
  models = writeContractModels(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame(source_width = 640, source_height = 480, letterbox?: DetectorFrame['letterbox']): DetectorFrame {
  return { data: new Uint8Array(W * H * 3).fill(90), width: W, height: H, source_width, source_height, letterbox };
}

function done(r: DetectResult): Detection[] {
  if (r.status !== 'done') throw new Error(`expected done, got ${r.status}`);
  return r.detections;
}

/** [class, score, box] rows, easy to read in a failing diff. */
const rows = (ds: Detection[]) => ds.map((d) => [d.class_name, d.score, d.box]);

/** The contract's stand-in for the default road-user classes. */
const ROAD = ['person', 'bicycle', 'car'];

describe.each(LAYOUTS)('detector contract: decoder %s', (layout) => {
  const detectors: Detector[] = [];
  async function start(overrides: Record<string, unknown> = {}, roi?: Record<string, [number, number][]>): Promise<Detector> {
    const cfg = DetectorSchema.parse({ model_path: models[layout], decoder: layout, input_size: CONTRACT_INPUT, class_names: CONTRACT_CLASSES, classes: ROAD, threads: 1, ...overrides });
    const d = new Detector(cfg, silentLogger(), { roi });
    detectors.push(d);
    await d.start();
    return d;
  }
  let base: Detector;
  beforeAll(async () => {
    base = await start({}, { roi_cam: [[0, 0], [300, 0], [300, 480], [0, 480]] });
  });
  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
  });

  it('maps boxes to camera pixels (stretch), keeps the default classes above the threshold, suppresses same-class overlaps', async () => {
    const ds = done(await base.detect('cam', frame()));
    // 64x64 input → 640x480 camera: x * 10, y * 7.5. B (IoU 0.70 with A) suppressed; C (car over A) kept;
    // D (dog) not in the kept classes; E (0.25) under score_threshold 0.3.
    expect(rows(ds)).toEqual([
      ['person', 0.9, [80, 60, 240, 300]],
      ['car', 0.85, [90, 67.5, 250, 307.5]],
      ['person', 0.6, [120, 330, 280, 450]],
      ['person', 0.5, [320, 240, 400, 300]],
    ]);
    expect(ds.map((d) => d.class_id)).toEqual([0, 2, 0, 0]);
  });

  it('undoes a letterbox (scale, padding) and clips to the camera frame', async () => {
    // 640x320 camera letterboxed into 64x64: scale 0.1, 16 px bars top and bottom.
    const ds = done(await base.detect('cam', frame(640, 320, { scale: 0.1, pad_x: 0, pad_y: 16 })));
    expect(rows(ds)).toEqual([
      ['person', 0.9, [80, 0, 240, 240]],
      ['car', 0.85, [90, 0, 250, 250]],
      ['person', 0.6, [120, 280, 280, 320]],
      ['person', 0.5, [320, 160, 400, 240]],
    ]);
  });

  it('drops detections whose box centre is outside the camera ROI', async () => {
    const ds = done(await base.detect('roi_cam', frame()));
    expect(ds.map((d) => d.box[0])).toEqual([80, 90, 120]); // F (centre x 360) is outside x < 300
  });

  it('applies per-class thresholds over score_threshold', async () => {
    const d = await start({ class_thresholds: { bicycle: 0.2, person: 0.7 } });
    expect(rows(done(await d.detect('cam', frame())))).toEqual([
      ['person', 0.9, [80, 60, 240, 300]],
      ['car', 0.85, [90, 67.5, 250, 307.5]],
      ['bicycle', 0.25, [400, 60, 560, 180]],
    ]);
  });

  it('keeps only the configured classes; an empty list keeps all', async () => {
    const cars = await start({ classes: ['car'] });
    expect(rows(done(await cars.detect('cam', frame())))).toEqual([['car', 0.85, [90, 67.5, 250, 307.5]]]);
    const all = await start({ classes: [] });
    expect(done(await all.detect('cam', frame())).map((x) => x.class_name)).toEqual(['dog', 'person', 'car', 'person', 'person']);
  });

  it('suppresses only above nms_iou', async () => {
    const d = await start({ nms_iou: 0.8 });
    const ds = done(await d.detect('cam', frame()));
    expect(rows(ds)).toContainEqual(['person', 0.8, [100, 75, 260, 315]]); // B survives: IoU 0.70 < 0.8
    expect(ds).toHaveLength(5);
  });

  it('drops boxes smaller than min_area_px in camera pixels', async () => {
    const d = await start({ min_area_px: 5000 }); // F is 80 x 60 = 4800 camera px²
    expect(done(await d.detect('cam', frame())).map((x) => x.score)).toEqual([0.9, 0.85, 0.6]);
  });

  it('rejects a frame that does not match the model input', async () => {
    const bad = { ...frame(), width: 32, data: new Uint8Array(32 * 64 * 3) };
    await expect(base.detect('cam', bad)).rejects.toMatchObject({ code: 'DETECTOR_BAD_FRAME' });
  });

  it('refuses a model of another layout with a typed error naming the decoder that fits', async () => {
    const other = LAYOUTS.find((l) => l !== layout)!;
    const cfg = DetectorSchema.parse({ model_path: models[other], decoder: layout, input_size: CONTRACT_INPUT, class_names: CONTRACT_CLASSES, classes: ROAD });
    const err = await new Detector(cfg, silentLogger()).start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DetectorError);
    expect(err).toMatchObject({ code: 'DETECTOR_MODEL_MISMATCH' });
    expect((err as Error).message).toMatch(new RegExp(`does not fit decoder ${layout}.*try decoder: ${other}`));
  });

  it('refuses an input size that does not match the model', async () => {
    const cfg = DetectorSchema.parse({ model_path: models[layout], decoder: layout, input_size: { width: 96, height: 96 }, class_names: CONTRACT_CLASSES, classes: ROAD });
    await expect(new Detector(cfg, silentLogger()).start()).rejects.toMatchObject({
      code: 'DETECTOR_MODEL_MISMATCH',
      message: expect.stringMatching(/does not fit input_size 96x96.*set detector.input_size to 64x64/) as unknown,
    });
  });
});

// A model that takes the frame's bytes as they are (uint8 [1,H,W,3], like models/nanodet-int8.onnx): the main
// thread copies them into a pooled uint8 buffer instead of converting to CHW floats; same contract otherwise.
describe('detector contract: a uint8 NHWC input', () => {
  const detectors: Detector[] = [];
  let bytesModel: string;
  beforeAll(() => {
    const outputs = encodeScene('nanodet', Object.values(CONTRACT_SCENE), { ...CONTRACT_INPUT, numClasses: CONTRACT_CLASSES.length });
    bytesModel = join(dir, 'nanodet-bytes.onnx');
    writeFileSync(bytesModel, constantModel({ ...CONTRACT_INPUT, inputType: 'uint8', outputs }));
  });
  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
  });
  async function start(model_path: string, overrides: Record<string, unknown> = {}): Promise<Detector> {
    const cfg = DetectorSchema.parse({ model_path, decoder: 'nanodet', input_size: CONTRACT_INPUT, class_names: CONTRACT_CLASSES, classes: ROAD, threads: 1, ...overrides });
    const d = new Detector(cfg, silentLogger());
    detectors.push(d);
    await d.start();
    return d;
  }

  it('is recognised from the session metadata and gives the float model’s detections, frame after frame', async () => {
    const [bytes, float] = [await start(bytesModel), await start(models.nanodet)];
    expect(bytes.modelInfo).toMatchObject({ input_layout: 'uint8_nhwc', input_dims: [1, H, W, 3] });
    expect(float.modelInfo).toMatchObject({ input_layout: 'float32_nchw', input_dims: [1, 3, H, W] });
    const want = rows(done(await float.detect('cam', frame())));
    expect(want.length).toBeGreaterThan(0);
    // Two cameras keep a run queued behind the running one: the pooled buffers go round and come back.
    const results = await Promise.all(['a', 'b'].flatMap((cam) => [0, 1, 2].map(() => bytes.detect(cam, frame()))));
    const doneRows = results.filter((r) => r.status === 'done').map((r) => rows(done(r)));
    expect(doneRows.length).toBeGreaterThanOrEqual(2);
    for (const r of doneRows) expect(r).toEqual(want);
    expect(bytes.stats()).toMatchObject({ errors: 0, frame_copies: 0 });
  });

  it('rejects a frame of the wrong size with a typed error, and keeps running', async () => {
    const d = await start(bytesModel);
    await expect(d.detect('cam', { ...frame(), data: new Uint8Array(W * H * 3 - 3) })).rejects.toMatchObject({ code: 'DETECTOR_BAD_FRAME' });
    await expect(d.detect('cam', { ...frame(), height: 32, data: new Uint8Array(W * 32 * 3) })).rejects.toMatchObject({ code: 'DETECTOR_BAD_FRAME' });
    expect(done(await d.detect('cam', frame())).length).toBeGreaterThan(0);
  });

  it('names the input size of a uint8 model that does not fit', async () => {
    const cfg = DetectorSchema.parse({ model_path: bytesModel, decoder: 'nanodet', input_size: { width: 96, height: 96 }, class_names: CONTRACT_CLASSES, classes: ROAD });
    await expect(new Detector(cfg, silentLogger()).start()).rejects.toMatchObject({
      code: 'DETECTOR_MODEL_MISMATCH',
      message: expect.stringMatching(/uint8 \[1,64,64,3\] does not fit input_size 96x96.*set detector.input_size to 64x64/) as unknown,
    });
  });

  it('in-process (Pipeline.run, benchmarks): the copy is the pre-processing, same detections', async () => {
    const o = {
      threads: 1,
      spinning: false,
      decoder: 'nanodet' as const,
      input_width: W,
      input_height: H,
      class_names: CONTRACT_CLASSES,
      gate: buildGate(DetectorSchema.parse({ class_names: CONTRACT_CLASSES, classes: ROAD }), CONTRACT_CLASSES),
      nms_iou: 0.5,
      min_area_px: 0,
      max_detections: 100,
    };
    const [bytes, float] = [await Pipeline.create({ ...o, model_path: bytesModel }), await Pipeline.create({ ...o, model_path: models.nanodet })];
    try {
      const f = frame();
      const [a, b] = [await bytes.run(f), await float.run(f)];
      expect(a.detections).toEqual(b.detections);
      expect(a.detections.length).toBeGreaterThan(0);
      await expect(bytes.runInput(new ArrayBuffer(4 * 3 * W * H), f)).rejects.toMatchObject({ code: 'DETECTOR_BAD_FRAME' });
    } finally {
      await Promise.all([bytes.release(), float.release()]);
    }
  });
});
