// The quantised model is what models/build/quantize.mjs produced (hash), and it is the QDQ model it claims to
// be: the fp32 model's outputs, int8 per-channel Conv weights, 8-bit activations, float head outputs, and an input
// that takes the camera's RGB bytes (uint8 NHWC) as the input quantiser's values (models/build/byte-input.mjs), and
// outputs that return only the candidate anchors of the classes fed (models/build/candidates.mjs).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

describe('models/nanodet-int8.onnx', () => {
  const bytes = readFileSync('models/nanodet-int8.onnx');

  it('matches the sha256 recorded by models/build', () => {
    const [hash, name] = readFileSync('models/nanodet-int8.onnx.sha256', 'utf8').trim().split(/\s+/);
    expect(name).toBe('nanodet-int8.onnx');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(hash);
  });

  it('takes uint8 [1,416,416,3] RGB bytes, transposed straight into the first DequantizeLinear (scale 1/255, zero point 0)', () => {
    const q = onnx.ModelProto.decode(bytes);
    const g = q.graph!;
    const input = g.input!.map((v) => [v.name, v.type!.tensorType!.elemType, v.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue))]);
    expect(input).toEqual([
      ['images', DT.UINT8, [1, 416, 416, 3]],
      ['classes', DT.INT64, [0]], // symbolic: as many as fed
      ['min_score', DT.FLOAT, []],
    ]);
    const readers = g.node!.filter((n) => n.input!.includes('images'));
    expect(readers.map((n) => [n.opType, n.attribute!.map((a) => [a.name, a.ints!.map(Number)])])).toEqual([['Transpose', [['perm', [0, 3, 1, 2]]]]]);
    const dqs = g.node!.filter((n) => n.input![0] === readers[0]!.output![0]);
    expect(dqs.map((n) => n.opType)).toEqual(['DequantizeLinear']);
    const init = (name: string) => g.initializer!.find((t) => t.name === name)!;
    const raw = (name: string) => Uint8Array.from(init(name).rawData!).buffer;
    expect(init(dqs[0]!.input![2]!).dataType).toBe(DT.UINT8);
    expect(new Uint8Array(raw(dqs[0]!.input![2]!))[0]).toBe(0);
    expect(new Float32Array(raw(dqs[0]!.input![1]!))[0]).toBe(Math.fround(1 / 255));
    expect(q.docString).toMatch(/Input images: uint8 \[1,416,416,3\] RGB bytes/);
  });

  it('is a QDQ model of the fp32 heads: int8 per-channel Conv weights, float head outputs, candidate anchors out', () => {
    const q = onnx.ModelProto.decode(bytes);
    const f = onnx.ModelProto.decode(readFileSync('models/nanodet.onnx'));
    const outputs = (m: typeof q) => m.graph!.output!.map((v) => [v.name, v.type!.tensorType!.elemType]);
    // Per stride of the fp32 model's cls_s*/reg_s*: anchors (int32), their scores and distance logits (float).
    const strides = outputs(f).flatMap(([n]) => /^cls_s(\d+)$/.exec(n as string)?.[1] ?? []);
    expect(strides).toEqual(['8', '16', '32']);
    expect(outputs(q)).toEqual(strides.flatMap((s) => [[`anchors_s${s}`, DT.INT32], [`scores_s${s}`, DT.FLOAT], [`dists_s${s}`, DT.FLOAT]]));
    // The dense heads are still computed inside: each candidate output gathers from the fp32 model's output tensor.
    for (const [name] of outputs(f)) expect(q.graph!.node!.some((n) => n.opType === 'Gather' && n.input![0] === name), `${name} gathered`).toBe(true);
    expect(q.producerName).toBe('roadside-agent models/build/quantize.mjs');

    const inits = new Map(q.graph!.initializer!.map((t) => [t.name!, t]));
    const convs = q.graph!.node!.filter((n) => n.opType === 'Conv');
    expect(convs).toHaveLength(34);
    const dqOf = (tensor: string) => q.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.output![0] === tensor);
    // 31 convolutions read int8 weights through a per-output-channel DequantizeLinear; the 3 head outputs stay float.
    const quantized = convs.filter((c) => dqOf(c.input![1]!));
    expect(quantized).toHaveLength(31);
    for (const c of quantized) {
      const dq = dqOf(c.input![1]!)!;
      const w = inits.get(dq.input![0]!)!;
      expect(w.dataType).toBe(DT.INT8);
      expect(inits.get(dq.input![1]!)!.dims!.map(Number)).toEqual([Number(w.dims![0])]);
      expect(dqOf(c.input![0]!), `${c.name} input is dequantised`).toBeDefined();
    }
    for (const c of convs.filter((x) => !quantized.includes(x))) expect(inits.get(c.input![1]!)!.dataType).toBe(DT.FLOAT);
    // Activation zero points are 8-bit.
    const zps = q.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').map((n) => inits.get(n.input![2]!)!.dataType);
    expect(zps.length).toBeGreaterThan(70);
    expect(new Set(zps).size).toBe(1);
    expect([DT.UINT8, DT.INT8]).toContain(zps[0]);
    // A quarter of the fp32 size, give or take the float heads and quantisation parameters.
    expect(bytes.length).toBeLessThan(readFileSync('models/nanodet.onnx').length / 3);
  });
});
