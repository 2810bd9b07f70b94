// The statically quantised NanoDet (models/nanodet-int8.onnx, built by models/build/quantize.mjs) through the
// agent's real detector finds what the fp32 model finds: on the reference photos (sharp, as detectImage loads
// them) and on frames of the demo clip (ffmpeg with the camera source's own filter chain), stretched and
// letterboxed. The gate is models/build's (gfl.mjs GATE): on the photos object by object, on the clip by its
// statistics (same classes, IoU >= 0.9, mean score drop <= 0.05; see models/build/README.md for why).
// And the counts: `analyze` of the demo clip counts the demo line with the int8 model exactly as it was counted
// by eye, at 5 and 10 detection fps, and never further from that than the fp32 model.
// The int8 model takes the frame's uint8 bytes (NHWC; models/build/byte-input.mjs): through the detector it gives
// exactly the detections of the same model with the float32 CHW input the fp32 model has (rebuilt here).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { EventDraft } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { packageRoot } from '../../../core/paths.js';
import { DetectorSchema } from '../../../config/schema/detector.js';
import { filterChain, letterboxGeometry } from '../../../ingest/ffmpeg-args.js';
import { Detector, iou, type Detection, type DetectorFrame } from '../../../inference/detector/index.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const execFileP = promisify(execFile);
const FP32 = join(packageRoot(), 'models', 'nanodet.onnx');
const INT8 = join(packageRoot(), 'models', 'nanodet-int8.onnx');
const PHOTOS = ['dog.jpg', 'person.jpg'].map((f) => join(packageRoot(), 'tests', 'fixtures', 'photos', f));
const HAVE = [FP32, INT8, DEMO_CLIP, ...PHOTOS].every((f) => existsSync(f));

// models/build/gfl.mjs GATE.
const THRESHOLD = 0.3;
/** The allowed mean score drop; both models report down to THRESHOLD - MARGIN so near-threshold objects pair up. */
const MARGIN = 0.05;
const CONFIDENT = THRESHOLD + MARGIN;
const MIN_IOU = 0.9;
const SIZE = 416;
const RESIZES = ['stretch', 'letterbox'] as const;

interface Pair {
  iou: number;
  drop: number;
  ref: Detection;
}
interface Comparison {
  pairs: Pair[];
  lost: Detection[];
  extra: Detection[];
  /** int8 detections >= THRESHOLD. */
  tested: number;
}

/**
 * models/build/gfl.mjs compareDetections on the agent's detections (camera pixels; IoU is scale-invariant):
 * each fp32 object >= THRESHOLD paired with the same-class int8 box overlapping it most (found at IoU >= 0.5,
 * else lost); int8 objects >= THRESHOLD overlapping no fp32 box of their class are extra.
 */
function compare(ref: Detection[], test: Detection[]): Comparison {
  const out: Comparison = { pairs: [], lost: [], extra: [], tested: 0 };
  for (const r of ref.filter((d) => d.score >= THRESHOLD)) {
    let best: Detection | undefined;
    let bestIou = 0;
    for (const t of test) {
      const v = t.class_name === r.class_name ? iou(r.box, t.box) : 0;
      if (v > bestIou) [best, bestIou] = [t, v];
    }
    if (best && bestIou >= 0.5) out.pairs.push({ iou: bestIou, drop: r.score - best.score, ref: r });
    else out.lost.push(r);
  }
  for (const t of test.filter((d) => d.score >= THRESHOLD)) {
    out.tested++;
    if (!ref.some((r) => r.class_name === t.class_name && iou(r.box, t.box) >= 0.5)) out.extra.push(t);
  }
  return out;
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** Five frames per second of the demo clip (100), fitted by the camera source's ffmpeg filter chain. */
async function clipFrames(resize: (typeof RESIZES)[number]): Promise<DetectorFrame[]> {
  const vf = filterChain({ width: SIZE, height: SIZE, resize }, 5);
  const { stdout } = await execFileP('ffmpeg', ['-nostdin', '-v', 'error', '-i', DEMO_CLIP, '-vf', vf, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  const bytes = SIZE * SIZE * 3;
  const lb = letterboxGeometry(768, 576, SIZE, SIZE);
  const frames: DetectorFrame[] = [];
  for (let off = 0; off + bytes <= stdout.length; off += bytes) {
    frames.push({
      data: Uint8Array.from(stdout.subarray(off, off + bytes)),
      width: SIZE,
      height: SIZE,
      source_width: 768,
      source_height: 576,
      ...(resize === 'letterbox' ? { letterbox: { scale: lb.scale, pad_x: lb.pad_x, pad_y: lb.pad_y } } : {}),
    });
  }
  return frames;
}

async function detectFrame(d: Detector, frame: DetectorFrame): Promise<Detection[]> {
  const res = await d.detect('clip', { ...frame, data: frame.data.slice() });
  if (res.status !== 'done') throw new Error('frame replaced');
  return res.detections;
}

describe.skipIf(!HAVE)('models/nanodet-int8.onnx against fp32 through the agent detector', () => {
  const detectors: Detector[] = [];
  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
  });
  async function start(model_path: string, resize: (typeof RESIZES)[number]): Promise<Detector> {
    // Every class, no size floor, reported down to THRESHOLD - MARGIN.
    const cfg = DetectorSchema.parse({ model_path, resize, classes: [], score_threshold: THRESHOLD - MARGIN, min_area_px: 0, threads: 2 });
    const d = new Detector(cfg, silentLogger());
    detectors.push(d);
    await d.start();
    return d;
  }

  describe.each(RESIZES)('resize %s', (resize) => {
    let fp32: Detector;
    let int8: Detector;
    beforeAll(async () => {
      [fp32, int8] = [await start(FP32, resize), await start(INT8, resize)];
    });

    it('the int8 model takes the frame bytes (uint8 NHWC) and returns only candidate anchors of the same strides', () => {
      expect(int8.modelInfo).toMatchObject({ input_name: 'images', input_dims: [1, SIZE, SIZE, 3], input_layout: 'uint8_nhwc', decoder: 'nanodet', num_classes: undefined });
      expect(fp32.modelInfo).toMatchObject({ input_name: 'images', input_dims: [1, 3, SIZE, SIZE], input_layout: 'float32_nchw', decoder: 'nanodet', num_classes: 80 });
      const strides = (names: string[], re: RegExp) => names.flatMap((n) => re.exec(n)?.[1] ?? []).sort();
      const dense = strides(fp32.modelInfo!.outputs.map((o) => o.name), /^cls_s(\d+)$/);
      expect(dense).toEqual(['16', '32', '8']);
      expect(strides(int8.modelInfo!.outputs.map((o) => o.name), /^anchors_s(\d+)$/)).toEqual(dense);
      expect(int8.modelInfo!.outputs.map((o) => o.name).filter((n) => /^(cls|reg)_/.test(n))).toEqual([]);
    });

    it.each(PHOTOS)('%s: every confident fp32 object found with IoU >= 0.9, none extra, mean score drop <= 0.05', async (photo) => {
      const c = compare((await fp32.detectImage(photo)).detections, (await int8.detectImage(photo)).detections);
      const confident = c.pairs.filter((p) => p.ref.score >= CONFIDENT);
      // Objects within MARGIN of the threshold may drop under it: they count in the clip's statistics instead.
      expect(c.lost.filter((d) => d.score >= CONFIDENT)).toEqual([]);
      expect(c.extra.filter((d) => d.score >= CONFIDENT)).toEqual([]);
      expect(confident.length).toBeGreaterThanOrEqual(2); // bicycle + dog, person + horse (+ dog)
      for (const p of confident) expect(p.iou, `${p.ref.class_name} ${p.ref.score}`).toBeGreaterThanOrEqual(MIN_IOU);
      expect(mean(c.pairs.map((p) => p.drop))).toBeLessThanOrEqual(MARGIN);
    });

    it('demo clip at 5 fps: >= 98 % of the fp32 objects found, <= 2 % extra, >= 95 % at IoU >= 0.9, mean score drop <= 0.05', { timeout: 240_000 }, async () => {
      const frames = await clipFrames(resize);
      expect(frames).toHaveLength(100);
      const all: Comparison = { pairs: [], lost: [], extra: [], tested: 0 };
      for (const f of frames) {
        const c = compare(await detectFrame(fp32, f), await detectFrame(int8, f));
        all.pairs.push(...c.pairs);
        all.lost.push(...c.lost);
        all.extra.push(...c.extra);
        all.tested += c.tested;
      }
      const ious = all.pairs.map((p) => p.iou);
      expect(all.pairs.filter((p) => p.ref.class_name === 'person').length).toBeGreaterThanOrEqual(500); // ~10 people a frame
      expect(all.pairs.length / (all.pairs.length + all.lost.length)).toBeGreaterThanOrEqual(0.98);
      expect(all.extra.length / all.tested).toBeLessThanOrEqual(0.02);
      expect(ious.filter((v) => v >= MIN_IOU).length / ious.length).toBeGreaterThanOrEqual(0.95);
      expect(mean(ious)).toBeGreaterThanOrEqual(MIN_IOU);
      expect(mean(all.pairs.map((p) => p.drop))).toBeLessThanOrEqual(MARGIN);
    });
  });
});

/**
 * The demo line's crossings per direction, counted by eye on the clip (config/examples/demo.yaml, line `mid`):
 * two people walking in, four walking out (two of them side by side at 3.9 s).
 */
const DEMO_LINE_TRUTH = { in: 2, out: 4 };

/** `analyze` of the demo clip (the compiled CLI, as a technician runs it) with `model`: crossings of `mid` per direction. */
async function demoLineCounts(model: string, fps: number): Promise<Record<string, number>> {
  const demo = parse(readFileSync(join(packageRoot(), 'config/examples/demo.yaml'), 'utf8')) as {
    device: Record<string, unknown>;
    cameras: Array<Record<string, unknown>>;
    detector: Record<string, unknown>;
  };
  const dir = makeTempDir('int8count');
  demo.device.data_dir = join(dir, 'data');
  demo.cameras[0]!.url = DEMO_CLIP;
  demo.detector.model_path = model;
  const config = join(dir, 'demo.yaml');
  writeFileSync(config, stringify(demo));
  const cli = join(packageRoot(), 'dist/cli/main.js');
  const { stdout } = await execFileP('node', [cli, 'analyze', '--config', config, '--camera', 'cam1', '--fps', String(fps), DEMO_CLIP], { maxBuffer: 64 << 20 });
  const counts: Record<string, number> = { in: 0, out: 0 };
  for (const line of stdout.trim().split('\n')) {
    const e = JSON.parse(line) as EventDraft;
    if (e.type === 'line_crossing' && e.rule.id === 'mid') counts[e.attributes.direction] = (counts[e.attributes.direction] ?? 0) + 1;
  }
  return counts;
}

const miss = (c: Record<string, number>) => Math.abs(c.in! - DEMO_LINE_TRUTH.in) + Math.abs(c.out! - DEMO_LINE_TRUTH.out);

describe.skipIf(!HAVE || !existsSync(join(packageRoot(), 'dist/cli/main.js')))('counts of the demo line, int8 against fp32 and the truth', () => {
  it.each([5, 10])('at %i detection fps the int8 model counts every crossing once, no further from the truth than fp32', { timeout: 120_000 }, async (fps) => {
    const [int8, fp32] = [await demoLineCounts(INT8, fps), await demoLineCounts(FP32, fps)];
    expect(int8).toEqual(DEMO_LINE_TRUTH);
    expect(miss(int8)).toBeLessThanOrEqual(miss(fp32));
  });
});

/**
 * models/nanodet-int8.onnx with the float input it had before byte-input.mjs: float32 [1,3,H,W] RGB / 255 quantised
 * by a QuantizeLinear with the parameters its first DequantizeLinear reads, in place of the input Transpose.
 */
function floatInputVariant(bytes: Uint8Array): Uint8Array {
  const { onnx } = onnxProto;
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph!;
  const t = g.node!.find((n) => n.opType === 'Transpose' && n.input![0] === 'images')!;
  const dq = g.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === t.output![0])!;
  g.node = g.node!.map((n) => (n === t ? onnx.NodeProto.create({ name: 'images/QuantizeLinear', opType: 'QuantizeLinear', input: ['images', dq.input![1]!, dq.input![2]!], output: [t.output![0]!] }) : n));
  const shape = { dim: [1, 3, SIZE, SIZE].map((d) => ({ dimValue: d })) };
  // The image input replaced; the candidate outputs' own inputs (classes, min_score) kept.
  g.input = [onnx.ValueInfoProto.create({ name: 'images', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape } } }), ...g.input!.filter((v) => v.name !== 'images')];
  return onnx.ModelProto.encode(m).finish();
}

describe.skipIf(!HAVE)('models/nanodet-int8.onnx: the byte input against the float input it replaced', () => {
  const detectors: Detector[] = [];
  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
  });
  async function start(model_path: string): Promise<Detector> {
    const d = new Detector(DetectorSchema.parse({ model_path, classes: [], score_threshold: 0.2, min_area_px: 0, threads: 2 }), silentLogger());
    detectors.push(d);
    await d.start();
    return d;
  }

  it('same detections to the last digit on the photos and the clip; the main thread only copies bytes', { timeout: 120_000 }, async () => {
    const floatModel = join(makeTempDir('int8float'), 'nanodet-int8-float.onnx');
    writeFileSync(floatModel, floatInputVariant(readFileSync(INT8)));
    const [bytes, float] = [await start(INT8), await start(floatModel)];
    expect([bytes.modelInfo!.input_layout, float.modelInfo!.input_layout]).toEqual(['uint8_nhwc', 'float32_nchw']);
    let objects = 0;
    for (const photo of PHOTOS) {
      const [a, b] = [(await bytes.detectImage(photo)).detections, (await float.detectImage(photo)).detections];
      expect(a).toEqual(b);
      objects += a.length;
    }
    const frames = (await clipFrames('stretch')).filter((_, i) => i % 5 === 0);
    for (const f of frames) {
      const a = await detectFrame(bytes, f);
      expect(a).toEqual(await detectFrame(float, f));
      objects += a.length;
    }
    expect(objects).toBeGreaterThan(100);
    expect(bytes.stats().runs).toBe(PHOTOS.length + frames.length);
  });
});
