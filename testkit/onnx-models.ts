/**
 * Tiny ONNX models for the detector tests, written with onnx-proto: each model's outputs are constants
 * (plus 0 × max(input), so the graph depends on its input as a real detector's does). A "scene" of boxes in
 * model-input pixels is encoded into each decoder's layout (nanodet, yolov8, decoded), so one contract suite
 * can expect the same detections from all three.
 *
 * The tests generate the models into a temporary directory at setup (always in step with this file).
 * Run it directly to write the contract scene's models here for a look: `npx tsx testkit/onnx-models.ts`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto, { type onnx as Onnx } from 'onnx-proto';

// onnx-proto is CommonJS: its `onnx` namespace is a property of the default export under ESM.
const { onnx } = onnxProto;

export type Layout = 'nanodet' | 'yolov8' | 'decoded';
export const LAYOUTS: readonly Layout[] = ['nanodet', 'yolov8', 'decoded'];

export interface ConstOutput {
  name: string;
  dims: number[];
  data: Float32Array;
}

export interface ModelSpec {
  width: number;
  height: number;
  inputName?: string;
  /** float32 [1,3,H,W] (default) or uint8 [1,H,W,3], the frame's bytes as they are (like models/nanodet-int8.onnx). */
  inputType?: 'float32' | 'uint8';
  outputs: ConstOutput[];
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name: string, dims: number[], elemType: number = FLOAT): Onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

function tensor(name: string, dims: number[], data: Float32Array): Onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** A model with one input (float32 [1,3,H,W] or uint8 [1,H,W,3]) whose outputs are the given constants. */
export function constantModel(spec: ModelSpec): Uint8Array {
  const input = spec.inputName ?? 'images';
  const bytes = spec.inputType === 'uint8';
  const nodes: Onnx.INodeProto[] = [
    ...(bytes ? [{ opType: 'Cast', input: [input], output: ['input_float'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] }] : []),
    { opType: 'ReduceMax', input: [bytes ? 'input_float' : input], output: ['input_max'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
    { opType: 'Mul', input: ['input_max', 'zero'], output: ['input_zero'] },
  ];
  const initializer: Onnx.ITensorProto[] = [tensor('zero', [], new Float32Array([0]))];
  for (const [k, o] of spec.outputs.entries()) {
    if (o.data.length !== o.dims.reduce((a, b) => a * b, 1)) throw new Error(`${o.name}: ${o.data.length} values for ${o.dims.join('x')}`);
    initializer.push(tensor(`const_${k}`, o.dims, o.data));
    nodes.push({ opType: 'Add', input: [`const_${k}`, 'input_zero'], output: [o.name] });
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'roadside-agent testkit/onnx-models.ts',
    graph: {
      name: 'constant_detector',
      node: nodes,
      initializer,
      input: [bytes ? valueInfo(input, [1, spec.height, spec.width, 3], onnx.TensorProto.DataType.UINT8) : valueInfo(input, [1, 3, spec.height, spec.width])],
      output: spec.outputs.map((o) => valueInfo(o.name, o.dims)),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A box the model "sees", in model-input pixels. */
export interface SceneBox {
  box: [number, number, number, number];
  score: number;
  class_id: number;
  /** nanodet only: the stride level carrying it (default 8). */
  level?: 8 | 16 | 32;
}

export interface SceneOptions {
  width: number;
  height: number;
  numClasses: number;
  /** nanodet: distance bins per side (11) and anchor centre offset (0.5, as the bundled model). */
  bins?: number;
  centerOffset?: number;
  /** yolov8: anchors (columns); decoded: rows. Unused ones score 0. */
  slots?: number;
}

/** Encodes the scene into a layout's output tensors. */
export function encodeScene(layout: Layout, boxes: readonly SceneBox[], o: SceneOptions): ConstOutput[] {
  switch (layout) {
    case 'decoded': {
      const k = Math.max(o.slots ?? 0, boxes.length + 2);
      const data = new Float32Array(k * 6);
      boxes.forEach((b, i) => data.set([...b.box, b.score, b.class_id], i * 6));
      return [{ name: 'detections', dims: [1, k, 6], data }];
    }
    case 'yolov8': {
      const n = Math.max(o.slots ?? 0, boxes.length + 4);
      const c = o.numClasses;
      const data = new Float32Array((4 + c) * n);
      // Leave the first anchors empty, so decoding is not just reading from index 0.
      boxes.forEach((b, k) => {
        const j = k + 2;
        const [x1, y1, x2, y2] = b.box;
        data[j] = (x1 + x2) / 2;
        data[n + j] = (y1 + y2) / 2;
        data[2 * n + j] = x2 - x1;
        data[3 * n + j] = y2 - y1;
        data[(4 + b.class_id) * n + j] = b.score;
      });
      return [{ name: 'output0', dims: [1, 4 + c, n], data }];
    }
    case 'nanodet':
      return encodeNanodet(boxes, o);
  }
}

function encodeNanodet(boxes: readonly SceneBox[], o: SceneOptions): ConstOutput[] {
  const bins = o.bins ?? 11;
  const off = o.centerOffset ?? 0.5;
  const C = o.numClasses;
  const levels = [8, 16, 32].map((s) => {
    const cols = Math.ceil(o.width / s);
    const rows = Math.ceil(o.height / s);
    const n = cols * rows;
    return { s, cols, rows, n, cls: new Float32Array(n * C), reg: new Float32Array(n * 4 * bins).fill(-50), used: new Set<number>() };
  });
  for (const b of boxes) {
    const L = levels.find((l) => l.s === (b.level ?? 8))!;
    const [x1, y1, x2, y2] = b.box;
    const mx = (x1 + x2) / 2;
    const my = (y1 + y2) / 2;
    let best = -1;
    let bestD = Infinity;
    for (let i = 0; i < L.n; i++) {
      if (L.used.has(i)) continue;
      const cx = ((i % L.cols) + off) * L.s;
      const cy = (Math.floor(i / L.cols) + off) * L.s;
      const ds = [(cx - x1) / L.s, (cy - y1) / L.s, (x2 - cx) / L.s, (y2 - cy) / L.s];
      if (ds.some((d) => d < 0 || d > bins - 1)) continue;
      const dist = Math.hypot(cx - mx, cy - my);
      if (dist < bestD) {
        bestD = dist;
        best = i;
      }
    }
    if (best < 0) throw new Error(`no free stride-${L.s} anchor can carry box ${b.box.join(',')}`);
    L.used.add(best);
    const cx = ((best % L.cols) + off) * L.s;
    const cy = (Math.floor(best / L.cols) + off) * L.s;
    L.cls[best * C + b.class_id] = b.score;
    [(cx - x1) / L.s, (cy - y1) / L.s, (x2 - cx) / L.s, (y2 - cy) / L.s].forEach((d, side) => {
      // Two adjacent bins whose softmax weights average to d exactly: logits log(1-f) and log(f).
      const base = best * 4 * bins + side * bins;
      const k = Math.min(Math.floor(d), bins - 1);
      const f = d - k;
      L.reg[base + k] = f < 1 ? Math.log(1 - f) : -50;
      if (f > 0) L.reg[base + k + 1] = Math.log(f);
    });
  }
  return levels.flatMap((l) => [
    { name: `cls_s${l.s}`, dims: [1, l.n, C], data: l.cls },
    { name: `reg_s${l.s}`, dims: [1, l.n, 4 * bins], data: l.reg },
  ]);
}

export function sceneModel(layout: Layout, boxes: readonly SceneBox[], o: SceneOptions): Uint8Array {
  return constantModel({ width: o.width, height: o.height, outputs: encodeScene(layout, boxes, o) });
}

/** Writes `<dir>/<layout>.onnx` for each layout; returns the paths by layout. */
export function writeSceneModels(dir: string, boxes: readonly SceneBox[], o: SceneOptions, prefix = ''): Record<Layout, string> {
  mkdirSync(dir, { recursive: true });
  const out = {} as Record<Layout, string>;
  for (const layout of LAYOUTS) {
    const file = join(dir, `${prefix}${layout}.onnx`);
    writeFileSync(file, sceneModel(layout, boxes, o));
    out[layout] = file;
  }
  return out;
}

/**
 * The contract scene (model input 64×64, classes person, bicycle, car, dog):
 * A/B overlap (same class, IoU 0.70), C overlaps A with another class, D a dog (filtered by default),
 * E a bicycle under the default threshold, F small, G a person apart from A.
 */
export const CONTRACT_INPUT = { width: 64, height: 64 } as const;
export const CONTRACT_CLASSES = ['person', 'bicycle', 'car', 'dog'];
export const CONTRACT_SCENE: Record<'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G', SceneBox> = {
  A: { class_id: 0, score: 0.9, box: [8, 8, 24, 40] },
  B: { class_id: 0, score: 0.8, box: [10, 10, 26, 42] },
  C: { class_id: 2, score: 0.85, box: [9, 9, 25, 41] },
  D: { class_id: 3, score: 0.95, box: [40, 40, 56, 56], level: 16 },
  E: { class_id: 1, score: 0.25, box: [40, 8, 56, 24] },
  F: { class_id: 0, score: 0.5, box: [32, 32, 40, 40] },
  G: { class_id: 0, score: 0.6, box: [12, 44, 28, 60] },
};

export function writeContractModels(dir: string): Record<Layout, string> {
  return writeSceneModels(dir, Object.values(CONTRACT_SCENE), { ...CONTRACT_INPUT, numClasses: CONTRACT_CLASSES.length });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = dirname(fileURLToPath(import.meta.url));
  console.log(writeContractModels(dir));
}
