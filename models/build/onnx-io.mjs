// Reading and writing ONNX models with onnx-proto: initializers as typed arrays, tensors and nodes as plain
// objects. Shared by calibrate.mjs and qdq.mjs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
export const DTYPE = { float32: DT.FLOAT, uint8: DT.UINT8, int8: DT.INT8, int32: DT.INT32, int64: DT.INT64 };
const ARRAYS = {
  [DT.FLOAT]: Float32Array,
  [DT.UINT8]: Uint8Array,
  [DT.INT8]: Int8Array,
  [DT.INT32]: Int32Array,
  [DT.INT64]: BigInt64Array,
};

/** Decodes a model; `inits` maps initializer name -> { dataType, dims: number[], data: typed array (a copy) }. */
export function loadModel(path) {
  const bytes = readFileSync(path);
  const model = onnx.ModelProto.decode(bytes);
  const inits = new Map();
  for (const t of model.graph.initializer) {
    const Arr = ARRAYS[t.dataType];
    if (!Arr || !t.rawData?.length) throw new Error(`${path}: initializer ${t.name} is not raw ${Object.keys(ARRAYS)}`);
    // rawData is a view at an arbitrary offset into the file: copy to get an aligned typed array.
    const raw = Uint8Array.from(t.rawData);
    inits.set(t.name, { dataType: t.dataType, dims: t.dims.map(Number), data: new Arr(raw.buffer, 0, raw.byteLength / Arr.BYTES_PER_ELEMENT) });
  }
  return { model, inits, bytes, sha256: sha256(bytes) };
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

export function tensorProto(name, { dataType, dims, data }) {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** A plain node object for onnx-proto (attributes copied from an existing node, or given as protos). */
export function node(opType, input, output, name, attribute = [], domain = '') {
  return { name, opType, input, output, attribute, domain };
}

export function intAttr(name, i) {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

export function intsAttr(name, ints) {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

/** A graph output / value info of element type float with an unspecified shape (calibration outputs). */
export function floatValueInfo(name, dims) {
  const shape = dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined;
  return { name, type: { tensorType: { elemType: DT.FLOAT, shape } } };
}

export function encodeModel(fields) {
  const m = onnx.ModelProto.create(fields);
  const err = onnx.ModelProto.verify(m);
  if (err) throw new Error(`onnx-proto verify: ${err}`);
  return onnx.ModelProto.encode(m).finish();
}
