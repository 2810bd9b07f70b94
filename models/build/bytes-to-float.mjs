#!/usr/bin/env node
// A two-node graph that turns camera bytes into the input a float model takes: uint8 [1,H,W,3] packed RGB
// (NHWC, what ffmpeg's rgb24 writes) -> Transpose to NCHW -> Cast to float32 -> Div by 255 -> float32 [1,3,H,W]
// RGB/255. H and W are symbolic, so one file serves any input size.
//
// The agent runs it in the detector's worker in front of a float-input model (the fp32 NanoDet, YOLOv8 exports):
// the main thread then hands every model the frame's bytes as they are, as it does for the int8 model, instead of
// converting HWC bytes to CHW floats in JavaScript (~15 ms a 416x416 frame under V8's lite mode; ONNX Runtime
// does it in ~1 ms). Division rather than a multiplication by 1/255: float32 division is
// correctly rounded, so every byte v gives exactly Math.fround(v / 255).
//
//   node bytes-to-float.mjs [--out ../bytes-to-float.onnx]
import { basename, dirname, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { DTYPE, encodeModel, intAttr, intsAttr, node, sha256, tensorProto } from './onnx-io.mjs';

export const INPUT = 'bytes';
export const OUTPUT = 'image';

const tensorType = (elemType, dims) => ({ tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } });

/** The model's fields (for encodeModel). */
export function bytesToFloatModel() {
  return {
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'roadside-agent models/build/bytes-to-float.mjs',
    docString: `Input ${INPUT}: uint8 [1,H,W,3] RGB bytes NHWC. Output ${OUTPUT}: float32 [1,3,H,W] RGB/255 NCHW.`,
    graph: {
      name: 'bytes_to_float',
      node: [
        node('Transpose', [INPUT], ['nchw'], 'Transpose', [intsAttr('perm', [0, 3, 1, 2])]),
        node('Cast', ['nchw'], ['float'], 'Cast', [intAttr('to', DTYPE.float32)]),
        node('Div', ['float', 'full_scale'], [OUTPUT], 'Div'),
      ],
      initializer: [tensorProto('full_scale', { dataType: DTYPE.float32, dims: [], data: Float32Array.of(255) })],
      input: [{ name: INPUT, type: tensorType(DTYPE.uint8, [1, 'height', 'width', 3]) }],
      output: [{ name: OUTPUT, type: tensorType(DTYPE.float32, [1, 3, 'height', 'width']) }],
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: o } = parseArgs({ options: { out: { type: 'string' } } });
  const out = o.out ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bytes-to-float.onnx');
  const bytes = encodeModel(bytesToFloatModel());
  const digest = sha256(bytes);
  writeFileSync(out, bytes);
  writeFileSync(`${out}.sha256`, `${digest}  ${basename(out)}\n`);
  console.log(`bytes-to-float: wrote ${out} (${bytes.length} bytes), sha256 ${digest}`);
}
