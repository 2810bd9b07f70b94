#!/usr/bin/env node
// The int8 model's input as the camera delivers it: `images` uint8 [1,H,W,3], packed RGB bytes (NHWC, what
// ffmpeg's rgb24 writes at the model's input size) instead of float32 [1,3,H,W] RGB/255. The agent then hands the
// frame's bytes to its worker as they are (inference/detector: no HWC -> CHW float loop on the main thread).
//
// The graph starts with a Transpose to NCHW. The division by 255 is folded into the input's quantisation: the QDQ
// model quantises the 0..1 input with scale 1/255, zero point 0 (qdq.mjs), so byte v quantises to v itself and the
// QuantizeLinear is dropped: the first DequantizeLinear reads the transposed bytes. Any other input quantiser
// (int8 activations: zero point -128) keeps its QuantizeLinear behind a Cast, with the scale times 255.
// Same outputs as the float-input model fed bytes / 255 (quantize.mjs gates the rewritten model).
//
// quantize.mjs applies it before writing; on its own it rewrites an existing float-input QDQ model:
//   node byte-input.mjs --in float-input-int8.onnx --out ../nanodet-int8.onnx
import { basename } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { DTYPE, encodeModel, intAttr, intsAttr, loadModel, node, sha256, tensorProto } from './onnx-io.mjs';

const INPUT = 'images';
const FLOAT_INPUT_DOC = /Input images: float32 \[1,3,(\d+),(\d+)\] RGB\/255 NCHW\./;

/** Does QuantizeLinear(v / 255) with this scale and zero point give back v for every byte v (float32 maths, as ONNX Runtime)? */
export function bytesAreQuantized(scale, zp, zpType) {
  if (zpType !== DTYPE.uint8 || zp !== 0) return false;
  for (let v = 0; v < 256; v++) {
    const x = Math.fround(v / 255);
    if (Math.round(Math.fround(x / scale)) !== v) return false;
  }
  return true;
}

/**
 * Rewrites model fields (as for encodeModel: graph.node plain nodes, graph.initializer TensorProtos with rawData)
 * to take uint8 NHWC bytes. Returns new fields; throws unless the input is float32 [1,3,H,W] read by one
 * QuantizeLinear.
 */
export function byteInputModel(fields) {
  const g = fields.graph;
  const inp = g.input.find((v) => v.name === INPUT);
  const dims = inp?.type?.tensorType?.shape?.dim?.map((d) => Number(d.dimValue));
  if (g.input.length !== 1 || inp.type.tensorType.elemType !== DTYPE.float32 || dims?.length !== 4 || dims[0] !== 1 || dims[1] !== 3) {
    throw new Error(`byte-input: expected one input ${INPUT} float32 [1,3,H,W], got ${JSON.stringify(g.input)}`);
  }
  const [, , h, w] = dims;
  const readers = g.node.filter((n) => n.input.includes(INPUT));
  const q = readers[0];
  if (readers.length !== 1 || q.opType !== 'QuantizeLinear') throw new Error(`byte-input: ${INPUT} must feed exactly one QuantizeLinear (QDQ model)`);
  const init = (name) => {
    const t = g.initializer.find((x) => x.name === name);
    if (!t?.rawData) throw new Error(`byte-input: initializer ${name} missing`);
    return t;
  };
  const scaleT = init(q.input[1]);
  const zpT = init(q.input[2]);
  const raw = (t) => Uint8Array.from(t.rawData).buffer;
  const scale = new Float32Array(raw(scaleT))[0];
  const zp = zpT.dataType === DTYPE.uint8 ? new Uint8Array(raw(zpT))[0] : new Int8Array(raw(zpT))[0];

  const perm = [intsAttr('perm', [0, 3, 1, 2])];
  const nodes = g.node.filter((n) => n !== q);
  const initializer = [...g.initializer];
  let how;
  if (bytesAreQuantized(scale, zp, zpT.dataType)) {
    nodes.unshift(node('Transpose', [INPUT], [q.output[0]], `${INPUT}/Transpose`, perm));
    how = `the bytes are the input quantiser's values (scale 1/255, zero point 0)`;
  } else {
    const scaled = `${q.input[1]}_bytes`;
    initializer.push(tensorProto(scaled, { dataType: DTYPE.float32, dims: [], data: Float32Array.of(Math.fround(scale * 255)) }));
    nodes.unshift(
      node('Transpose', [INPUT], [`${INPUT}/nchw`], `${INPUT}/Transpose`, perm),
      node('Cast', [`${INPUT}/nchw`], [`${INPUT}/float`], `${INPUT}/Cast`, [intAttr('to', DTYPE.float32)]),
      node('QuantizeLinear', [`${INPUT}/float`, scaled, q.input[2]], [q.output[0]], q.name),
    );
    how = `cast to float and quantised with the input scale x 255`;
  }
  const input = {
    name: INPUT,
    type: { tensorType: { elemType: DTYPE.uint8, shape: { dim: [1, h, w, 3].map((d) => ({ dimValue: d })) } } },
  };
  const note = `Input images: uint8 [1,${h},${w},3] RGB bytes 0..255 NHWC (packed rgb24, as the camera frame); transposed to NCHW in the graph, ${how}.`;
  const docString = FLOAT_INPUT_DOC.test(fields.docString ?? '') ? fields.docString.replace(FLOAT_INPUT_DOC, note) : `${fields.docString ?? ''} ${note}`.trim();
  return { ...fields, docString, graph: { ...g, node: nodes, initializer, input: [input] } };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: o } = parseArgs({ options: { in: { type: 'string' }, out: { type: 'string' } } });
  if (!o.in || !o.out) throw new Error('usage: node byte-input.mjs --in model.onnx --out model-bytes.onnx');
  const { model } = loadModel(o.in);
  const bytes = encodeModel(byteInputModel(model));
  const digest = sha256(bytes);
  writeFileSync(o.out, bytes);
  writeFileSync(`${o.out}.sha256`, `${digest}  ${basename(o.out)}\n`);
  console.log(`byte-input: wrote ${o.out} (${(bytes.length / 1e6).toFixed(2)} MB), sha256 ${digest}`);
}
