// Pure parts of the detector, without ONNX Runtime or threads: geometry, pre-processing, decoders bound to
// output shapes, post-processing, class names and score gates, the frame scheduler, the run message and the
// hand-over parts (claims, input buffers, the model input's layout and filling).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Frame } from '../../../ingest/types.js';
import { buildGate, resolveClassNames } from '../../../inference/detector/classes.js';
import { Candidates, decoderFactory, type OutputTensor, type ScoreGate } from '../../../inference/detector/decoders/index.js';
import { DetectorError } from '../../../inference/detector/errors.js';
import { iou, pointInPolygon } from '../../../inference/detector/geometry.js';
import type { DetectorFrame } from '../../../inference/detector/index.js';
import { postprocess } from '../../../inference/detector/postprocess.js';
import { InputBuffers, nextRunId, RunClaims } from '../../../inference/detector/handoff.js';
import { runMessage } from '../../../inference/detector/protocol.js';
import { FrameScheduler, type Pending } from '../../../inference/detector/scheduler.js';
import { byteDims, fillInput, inputByteLength, inputLayout } from '../../../inference/detector/input.js';
import { sessionOptions } from '../../../inference/detector/session.js';
import { encodeScene, type SceneBox } from '../../../testkit/onnx-models.js';

const gate = (n: number, t = 0.3): ScoreGate => ({ byClass: new Float32Array(n).fill(t), other: Infinity });
const tensors = (outs: ReturnType<typeof encodeScene>): Record<string, OutputTensor> =>
  Object.fromEntries(outs.map((o) => [o.name, { data: o.data, dims: o.dims }]));
const rowsOf = (c: Candidates) =>
  Array.from({ length: c.count }, (_, i) => [c.cls[i], +c.score[i]!.toFixed(4), [c.x1[i], c.y1[i], c.x2[i], c.y2[i]].map((v) => +v!.toFixed(3))]);

describe('types', () => {
  it("the camera source's frames go to detect() as they are", () => {
    expectTypeOf<Frame>().toExtend<DetectorFrame>();
  });
});

describe('geometry', () => {
  it('pointInPolygon handles convex and concave polygons', () => {
    const square: [number, number][] = [[0, 0], [10, 0], [10, 10], [0, 10]];
    expect(pointInPolygon(5, 5, square)).toBe(true);
    expect(pointInPolygon(15, 5, square)).toBe(false);
    const u: [number, number][] = [[0, 0], [30, 0], [30, 30], [20, 30], [20, 10], [10, 10], [10, 30], [0, 30]];
    expect(pointInPolygon(15, 20, u)).toBe(false); // inside the notch
    expect(pointInPolygon(5, 20, u)).toBe(true);
    expect(pointInPolygon(25, 20, u)).toBe(true);
  });
  it('iou', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3);
  });
});

describe('decoders', () => {
  const size = { width: 64, height: 64 };
  const scene: SceneBox[] = [
    { class_id: 1, score: 0.7, box: [8, 8, 24, 40] },
    { class_id: 0, score: 0.9, box: [30, 30, 60, 62], level: 32 },
    { class_id: 2, score: 0.2, box: [40, 4, 52, 20] },
  ];
  const expected = [
    [1, 0.7, [8, 8, 24, 40]],
    [0, 0.9, [30, 30, 60, 62]],
  ];

  it.each(['nanodet', 'yolov8', 'decoded'] as const)('%s decodes a scene to boxes in input pixels, gated per class', (layout) => {
    const outs = encodeScene(layout, scene, { ...size, numClasses: 3 });
    const dec = decoderFactory(layout).bind(outs, size, 3);
    const c = new Candidates();
    dec.decode(tensors(outs), gate(3), c);
    expect(rowsOf(c).sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual([...expected].sort((a, b) => (a[0] as number) - (b[0] as number)));
    // A class gated off costs nothing and yields nothing.
    const c2 = new Candidates();
    dec.decode(tensors(outs), { byClass: Float32Array.from([0.3, Infinity, 0.3]), other: Infinity }, c2);
    expect(rowsOf(c2)).toEqual([[0, 0.9, [30, 30, 60, 62]]]);
  });

  it('nanodet box distances survive logits that overflow or underflow exp (softmax is shift-invariant)', () => {
    for (const shift of [0, 800, -800]) {
      const outs = encodeScene('nanodet', scene, { ...size, numClasses: 3 });
      for (const o of outs) if (o.name.startsWith('reg')) o.data = o.data.map((v) => v + shift);
      const c = new Candidates();
      decoderFactory('nanodet').bind(outs, size, 3).decode(tensors(outs), gate(3), c);
      expect(rowsOf(c).sort((a, b) => (a[0] as number) - (b[0] as number)), `shift ${shift}`).toEqual([...expected].sort((a, b) => (a[0] as number) - (b[0] as number)));
    }
  });

  it('nanodet applies a sigmoid when the class outputs are logits', () => {
    const outs = encodeScene('nanodet', [{ class_id: 0, score: 0.9, box: [8, 8, 24, 40] }], { ...size, numClasses: 2 });
    for (const o of outs) if (o.name.startsWith('cls')) o.data = o.data.map((p) => (p > 0 ? Math.log(p / (1 - p)) : -20));
    const dec = decoderFactory('nanodet', { nanodet: { logits: true } }).bind(outs, size, 2);
    const c = new Candidates();
    dec.decode(tensors(outs), gate(2, 0.85), c);
    expect(rowsOf(c)).toEqual([[0, 0.9, [8, 8, 24, 40]]]);
  });

  it('nanodet reads the candidate layout (models/build/candidates.mjs): the rows of its anchors decode to the dense boxes', () => {
    const dense = encodeScene('nanodet', scene, { ...size, numClasses: 3 });
    const byName = tensors(dense);
    const g: ScoreGate = { byClass: Float32Array.from([0.5, 0.3, Infinity]), other: Infinity };
    // What the graph returns for these feeds: per level the anchors whose best fed class reaches min_score.
    const emulate = (classes: number[], min: number) =>
      dense
        .filter((o) => o.name.startsWith('cls_s'))
        .flatMap((o) => {
          const s = o.name.slice('cls_s'.length);
          const [, n, C] = o.dims as [number, number, number];
          const reg = byName[`reg_s${s}`]!.data;
          const W = reg.length / n;
          const anchors = [...Array(n).keys()].filter((i) => Math.max(...classes.map((k) => o.data[i * C + k]!)) >= min);
          return [
            { name: `anchors_s${s}`, dims: [anchors.length], data: Int32Array.from(anchors) },
            { name: `scores_s${s}`, dims: [1, anchors.length, classes.length], data: Float32Array.from(anchors.flatMap((i) => classes.map((k) => o.data[i * C + k]!))) },
            { name: `dists_s${s}`, dims: [1, anchors.length, W], data: Float32Array.from(anchors.flatMap((i) => [...reg.subarray(i * W, (i + 1) * W)])) },
          ];
        });
    const meta = emulate([0, 1], 0).map((o) => ({ name: o.name, dims: [o.dims[0] === 1 ? 1 : 'n', ...o.dims.slice(1).map((d, i) => (i === 0 ? 'n' : i === 1 && o.name.startsWith('scores') ? 'classes' : d))] }));
    const dec = decoderFactory('nanodet').bind(meta, size, 3);
    expect(dec.numClasses).toBeUndefined();
    expect(dec.inputNames).toEqual(['classes', 'min_score']);
    expect(dec.outputType?.('anchors_s8')).toBe('int32');
    const feeds = dec.feeds!(g);
    expect([...feeds.classes!.data]).toEqual([0n, 1n]);
    expect(feeds.min_score!.data[0]).toBeCloseTo(0.3);
    const outs = emulate([0, 1], feeds.min_score!.data[0] as number);
    expect(outs.filter((o) => o.name.startsWith('anchors')).reduce((n, o) => n + o.data.length, 0)).toBe(2);
    const c = new Candidates();
    dec.decode(tensors(outs as ReturnType<typeof encodeScene>), g, c);
    const d = new Candidates();
    decoderFactory('nanodet').bind(dense, size, 3).decode(byName, g, d);
    expect(rowsOf(c)).toEqual(rowsOf(d));
    expect(rowsOf(c).map((r) => r[0]).sort()).toEqual([0, 1]);
    // No class kept: an unreachable threshold, so the model returns no rows.
    const none = dec.feeds!({ byClass: Float32Array.from([Infinity, Infinity, Infinity]), other: Infinity });
    expect(none.min_score!.data[0]).toBe(Infinity);
    expect(() => decoderFactory('nanodet').bind(meta.filter((o) => !o.name.startsWith('scores_s8')), size, 3)).toThrow(/anchors_s8 needs scores_s8/);
  });

  it('nanodet finds its outputs by shape when they are not named cls_s*/reg_s*', () => {
    const outs = encodeScene('nanodet', scene, { ...size, numClasses: 3 }).map((o, i) => ({ ...o, name: `out${i}` }));
    const dec = decoderFactory('nanodet').bind(outs, size, 3);
    const c = new Candidates();
    dec.decode(tensors(outs), gate(3), c);
    expect(c.count).toBe(2);
  });

  it('yolov8 accepts the transposed [1, N, 4+C] export', () => {
    const [o] = encodeScene('yolov8', scene, { ...size, numClasses: 3, slots: 20 });
    const [, ch, n] = o!.dims as [number, number, number];
    const t = new Float32Array(o!.data.length);
    for (let r = 0; r < ch; r++) for (let j = 0; j < n; j++) t[j * ch + r] = o!.data[r * n + j]!;
    const outs = [{ name: 'output0', dims: [1, n, ch], data: t }];
    const dec = decoderFactory('yolov8').bind(outs, size, 3);
    const c = new Candidates();
    dec.decode(tensors(outs), gate(3), c);
    expect(rowsOf(c)).toEqual(expected);
  });

  it('explains a model that does not fit, and names the decoder that would', () => {
    const yolo = [{ name: 'output0', dims: [1, 84, 8400] }];
    const nano = ['cls_s8', 'reg_s8', 'cls_s16', 'reg_s16', 'cls_s32', 'reg_s32'].map((name, i) => ({
      name,
      dims: [1, [2704, 2704, 676, 676, 169, 169][i]!, name.startsWith('cls') ? 80 : 44],
    }));
    const input = { width: 416, height: 416 };
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as DetectorError;
      }
      throw new Error('no error');
    };
    const e1 = err(() => decoderFactory('nanodet').bind(yolo, input, 80));
    expect(e1).toBeInstanceOf(DetectorError);
    expect(e1.code).toBe('DETECTOR_MODEL_MISMATCH');
    expect(e1.message).toMatch(/^model output \[1,84,8400\] does not fit decoder nanodet \(.*\); try decoder: yolov8$/);
    expect(err(() => decoderFactory('yolov8').bind(nano, input, 80)).message).toMatch(/does not fit decoder yolov8 .*try decoder: nanodet$/);
    expect(err(() => decoderFactory('decoded').bind(yolo, input, 80)).message).toMatch(/does not fit decoder decoded .*try decoder: yolov8$/);
    expect(err(() => decoderFactory('nanodet').bind([{ name: 'boxes', dims: [1, 100, 6] }], input, 80)).message).toMatch(/try decoder: decoded$/);
    expect(err(() => decoderFactory('yolov8').bind([{ name: 'output0', dims: [1, 85, 25200] }], input, 80)).message).toMatch(/objectness/);
    // The real layout binds, with symbolic batch dimensions too.
    expect(decoderFactory('nanodet').bind(nano.map((o) => ({ ...o, dims: ['batch', ...o.dims.slice(1)] })), input, 80).numClasses).toBe(80);
    expect(decoderFactory('yolov8').bind(yolo, input, 80).numClasses).toBe(80);
  });
});

describe('post-processing', () => {
  const opts = { classNames: ['person', 'car'], nmsIou: 0.5, minAreaPx: 0, maxDetections: 100 };
  const geo = { width: 100, height: 100, source_width: 200, source_height: 100 };
  function cands(rows: [number, number, number, number, number, number][]): Candidates {
    const c = new Candidates();
    for (const r of rows) c.push(...r);
    return c;
  }

  it('sorts best first, suppresses per class, caps the count, names unknown ids', () => {
    const c = cands([
      [0, 0, 10, 10, 0.5, 0],
      [1, 1, 11, 11, 0.6, 0], // suppresses the first (same class)
      [1, 1, 11, 11, 0.4, 1], // other class: kept
      [50, 50, 60, 60, 0.3, 7], // unnamed class
    ]);
    const ds = postprocess(c, geo, undefined, opts);
    expect(ds.map((d) => [d.class_name, d.score, d.box])).toEqual([
      ['person', 0.6, [2, 1, 22, 11]],
      ['car', 0.4, [2, 1, 22, 11]],
      ['class_7', 0.3, [100, 50, 120, 60]],
    ]);
    expect(postprocess(c, geo, undefined, { ...opts, maxDetections: 1 })).toHaveLength(1);
  });

  it('grows past its initial capacity', () => {
    const c = new Candidates();
    for (let i = 0; i < 1000; i++) c.push(i % 100, 0, (i % 100) + 1, 1, i / 1000, i % 2);
    expect(c.count).toBe(1000);
    expect(c.score[999]).toBeCloseTo(0.999);
    expect(postprocess(c, geo, undefined, opts).length).toBe(100);
  });
});

describe('class names and score gate', () => {
  it('reads the bundled list or a configured one; JSON array, {names} or {"0": name}', () => {
    const dir = mkdtempSync(join(tmpdir(), 'detector-classes-'));
    try {
      const f = join(dir, 'c.json');
      writeFileSync(f, JSON.stringify(['a', 'b']));
      expect(resolveClassNames({}, f)).toEqual(['a', 'b']);
      writeFileSync(f, JSON.stringify({ names: ['x'] }));
      expect(resolveClassNames({}, f)).toEqual(['x']);
      writeFileSync(f, JSON.stringify({ 1: 'b', 0: 'a' }));
      expect(resolveClassNames({}, f)).toEqual(['a', 'b']);
      expect(resolveClassNames({ class_names: ['q'] }, f)).toEqual(['q']);
      expect(() => resolveClassNames({}, join(dir, 'missing.json'))).toThrow(expect.objectContaining({ code: 'DETECTOR_CONFIG' }) as Error);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const coco = resolveClassNames({});
    expect(coco).toHaveLength(80);
    expect([coco[0], coco[2], coco[7], coco[16], coco[17]]).toEqual(['person', 'car', 'truck', 'dog', 'horse']);
  });

  it('folds threshold, per-class thresholds and the class filter into one minimum per class', () => {
    const names = ['person', 'car', 'dog'];
    expect(buildGate({ classes: ['person', 'car'], class_thresholds: { car: 0.5 }, score_threshold: 0.3 }, names)).toEqual({
      byClass: [0.3, 0.5, Infinity],
      other: Infinity,
    });
    expect(buildGate({ classes: [], class_thresholds: {}, score_threshold: 0.4 }, names)).toEqual({ byClass: [0.4, 0.4, 0.4], other: 0.4 });
    expect(() => buildGate({ classes: ['cars'], class_thresholds: {}, score_threshold: 0.3 }, names)).toThrow(/unknown class name\(s\) "cars"/);
  });
});

describe('frame scheduler', () => {
  const pending = (cameraId: string): Pending => ({
    cameraId,
    frame: { data: new Uint8Array(3), width: 1, height: 1, source_width: 1, source_height: 1 },
    queuedAt: 0,
    resolve: () => undefined,
    reject: () => undefined,
  });

  it('serves cameras round-robin from the one after the last served; a newer frame replaces the waiting one', () => {
    const q = new FrameScheduler();
    const a1 = pending('a');
    expect(q.offer(a1)).toBeUndefined();
    const a2 = pending('a');
    expect(q.offer(a2)).toBe(a1);
    q.offer(pending('b'));
    q.offer(pending('c'));
    expect(q.take()).toBe(a2);
    q.offer(pending('a'));
    expect([q.take()?.cameraId, q.take()?.cameraId, q.take()?.cameraId, q.take()]).toEqual(['b', 'c', 'a', undefined]);
    q.offer(pending('b'));
    q.offer(pending('a'));
    expect(q.drain().map((p) => p.cameraId)).toEqual(['b', 'a']);
    expect(q.take()).toBeUndefined();
  });
});

describe('frame scheduler: a frame queued in the worker', () => {
  const pending = (cameraId: string): Pending => ({
    cameraId,
    frame: { data: new Uint8Array(3), width: 1, height: 1, source_width: 1, source_height: 1 },
    queuedAt: 0,
    resolve: () => undefined,
    reject: () => undefined,
  });

  it('stays first until a camera served before it or a newer frame of its camera arrives; put back, the round-robin resumes as if never taken', () => {
    const q = new FrameScheduler();
    const x1 = pending('a');
    q.offer(x1);
    expect(q.take()).toBe(x1); // the worker runs a
    const x2 = pending('a');
    q.offer(x2);
    expect(q.take()).toBe(x2); // a again, queued: nothing else waits
    expect(q.stillFirst(x2)).toBe(true);
    const y1 = pending('b');
    q.offer(y1); // b comes after a in the round-robin: it should go before a's second frame
    expect(q.stillFirst(x2)).toBe(false);
    expect(q.putBack(x2)).toBeUndefined();
    expect(q.take()).toBe(y1);
    expect(q.stillFirst(y1)).toBe(true);
    const y2 = pending('b');
    q.offer(y2); // a newer frame of b: the queued one is superseded
    expect(q.stillFirst(y1)).toBe(false);
    expect(q.putBack(y1)).toBe(y1);
    expect([q.take(), q.take(), q.take()]).toEqual([y2, x2, undefined]);
  });

  it('restores a frame whose worker died unless a newer frame of its camera waits', () => {
    const q = new FrameScheduler();
    const a1 = pending('a');
    q.offer(a1);
    expect(q.take()).toBe(a1);
    expect(q.restore(a1)).toBeUndefined();
    expect(q.take()).toBe(a1);
    const a2 = pending('a');
    q.offer(a2);
    expect(q.restore(a1)).toBe(a1);
    expect([q.take(), q.take()]).toEqual([a2, undefined]);
  });
});

describe('hand-over', () => {
  it('a run message carries the geometry and the input buffer, never the frame bytes', () => {
    const input = new ArrayBuffer(12);
    const frame = { data: new Uint8Array(3), width: 1, height: 1, source_width: 4, source_height: 4, letterbox: { scale: 0.25, pad_x: 0, pad_y: 0 } };
    const m = runMessage(7, 'a', frame, input, [[0, 0], [1, 0], [1, 1]]);
    expect(m).toEqual({ type: 'run', id: 7, camera_id: 'a', input, width: 1, height: 1, source_width: 4, source_height: 4, letterbox: { scale: 0.25, pad_x: 0, pad_y: 0 }, roi: [[0, 0], [1, 0], [1, 1]] });
    expect(Object.values(m)).not.toContain(frame.data);
    expect(runMessage(8, 'a', { ...frame, letterbox: undefined }, input, undefined)).not.toHaveProperty('letterbox');
  });

  it('exactly one of worker and host gets a queued run: a claimed run cannot be cancelled, a cancelled one cannot be claimed', () => {
    const host = new RunClaims();
    const worker = new RunClaims(host.buffer); // the same cells, as the worker thread sees them
    host.offer(5);
    expect(worker.claim(5)).toBe(true);
    expect(host.cancel(5)).toBe(false);
    host.offer(6);
    expect(host.cancel(6)).toBe(true);
    expect(worker.claim(6)).toBe(false);
    // A stale id never matches the cell of a newer run sharing it.
    host.offer(6 + 64);
    expect(worker.claim(6)).toBe(false);
    expect(worker.claim(6 + 64)).toBe(true);
    expect(nextRunId(0x3fff_ffff)).toBe(1);
  });

  it('reuses input buffers returned with replies, keeps at most a few, ignores foreign sizes', () => {
    const pool = new InputBuffers(24, 2);
    const a = pool.take();
    expect(a.byteLength).toBe(24);
    pool.give(a);
    expect(pool.take()).toBe(a);
    pool.give(new ArrayBuffer(8));
    expect(pool.take()).not.toBe(a);
    const bufs = [pool.take(), pool.take(), pool.take()];
    for (const b of bufs) pool.give(b);
    expect([pool.take(), pool.take()]).toEqual([bufs[1], bufs[0]]);
    expect(bufs).not.toContain(pool.take()); // only two were kept
  });
});

describe('model input layout', () => {
  type Meta = Parameters<typeof inputLayout>[0][number];
  const meta = (type: string, shape: (number | string)[]): Meta => ({ name: 'images', isTensor: true, type, shape }) as Meta;
  const mismatch = (metas: Meta[], w = 416, h = 416) => {
    try {
      inputLayout(metas, w, h);
    } catch (e) {
      expect(e).toBeInstanceOf(DetectorError);
      return e as DetectorError;
    }
    throw new Error('no error');
  };

  it('tells uint8 [1,H,W,3] bytes from float32 [1,3,H,W] by the session metadata (symbolic dims fit)', () => {
    expect(inputLayout([meta('uint8', [1, 416, 320, 3])], 320, 416).layout).toBe('uint8_nhwc');
    expect(inputLayout([meta('float32', [1, 3, 416, 320])], 320, 416).layout).toBe('float32_nchw');
    expect(inputLayout([meta('float32', ['batch', 3, 'h', 'w'])], 640, 640).layout).toBe('float32_nchw');
    expect(inputLayout([meta('uint8', ['batch', 'h', 'w', 3])], 640, 640).layout).toBe('uint8_nhwc');
  });

  it('refuses other inputs with DETECTOR_MODEL_MISMATCH, with the input size to set when it can tell', () => {
    for (const m of [meta('uint8', [1, 3, 416, 416]), meta('float32', [1, 416, 416, 3]), meta('int8', [1, 416, 416, 3]), meta('float16', [1, 3, 416, 416]), meta('uint8', [416, 416, 3])]) {
      expect(mismatch([m]).code).toBe('DETECTOR_MODEL_MISMATCH');
    }
    expect(mismatch([meta('uint8', [1, 320, 256, 3])]).message).toMatch(/uint8 \[1,320,256,3\] does not fit input_size 416x416.*set detector.input_size to 256x320$/);
    expect(mismatch([meta('float32', [1, 3, 320, 256])]).message).toMatch(/set detector.input_size to 256x320$/);
    expect(mismatch([meta('float32', [1, 416, 416, 3])]).message).not.toMatch(/set detector.input_size/);
    expect(mismatch([meta('uint8', [1, 416, 416, 3]), meta('uint8', [1, 416, 416, 3])]).message).toMatch(/2 inputs/);
  });

  it('sizes the buffers: 3 bytes a pixel, NHWC, whatever the model takes', () => {
    expect(inputByteLength(416, 416)).toBe(416 * 416 * 3);
    expect(byteDims(320, 240)).toEqual([1, 240, 320, 3]);
  });

  it('hands the worker the frame bytes as they are (a copy into the buffer)', () => {
    const [w, h] = [5, 3];
    const frame = Uint8Array.from({ length: w * h * 3 + 2 }, (_, i) => (i * 53 + 7) % 256).subarray(1, 1 + w * h * 3); // any offset
    const bytes = new ArrayBuffer(inputByteLength(w, h));
    fillInput(frame, bytes, w, h);
    expect(new Uint8Array(bytes)).toEqual(Uint8Array.from(frame));
    frame[0] = (frame[0]! + 1) % 256; // a copy: the frame stays the caller's
    expect(new Uint8Array(bytes)[0]).not.toBe(frame[0]);
  });

  it('a frame or a buffer of the wrong size is DETECTOR_BAD_FRAME, nothing written', () => {
    const [w, h] = [4, 4];
    const buf = new ArrayBuffer(inputByteLength(w, h));
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return e instanceof DetectorError ? e.code : String(e);
      }
      return 'no error';
    };
    expect(code(() => fillInput(new Uint8Array(w * h * 3 - 1).fill(9), buf, w, h))).toBe('DETECTOR_BAD_FRAME');
    expect(code(() => fillInput(new Uint8Array(w * h * 3 + 3).fill(9), buf, w, h))).toBe('DETECTOR_BAD_FRAME');
    expect(new Uint8Array(buf).every((v) => v === 0)).toBe(true);
    // A buffer of another size (a pool of another input size) is refused too.
    expect(code(() => fillInput(new Uint8Array(w * h * 3), new ArrayBuffer(inputByteLength(w, h + 1)), w, h))).toBe('DETECTOR_BAD_FRAME');
  });
});

describe('session options', () => {
  it('memory patterns are off unless asked for; the arena and pre-packing stay on unless turned off', () => {
    const base = sessionOptions({ threads: 2, spinning: false });
    expect(base.enableMemPattern).toBe(false);
    expect(base.enableCpuMemArena).toBeUndefined();
    expect(JSON.stringify(base.extra)).not.toContain('disable_prepacking');
    expect(sessionOptions({ threads: 2, spinning: false, mem_pattern: true }).enableMemPattern).toBe(true);
    const off = sessionOptions({ threads: 1, spinning: true, cpu_mem_arena: false, prepacking: false });
    expect(off).toMatchObject({ enableCpuMemArena: false, intraOpNumThreads: 1 });
    expect(JSON.stringify(off.extra)).toContain('"disable_prepacking":"1"');
    expect(JSON.stringify(off.extra)).toContain('"allow_spinning":"1"');
  });
});
