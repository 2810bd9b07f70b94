// The quantised model is what models/build/quantize.mjs produced (hash), and it is the QDQ model it claims to
// be: the fp32 model's input and outputs, int8 per-channel Conv weights, 8-bit activations, float head outputs.
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

  it('is a QDQ model with the fp32 interface: int8 per-channel Conv weights, float head outputs', () => {
    const q = onnx.ModelProto.decode(bytes);
    const f = onnx.ModelProto.decode(readFileSync('models/nanodet.onnx'));
    const io = (m: typeof q) => ({ input: m.graph!.input!.map((v) => v.name), output: m.graph!.output!.map((v) => [v.name, v.type!.tensorType!.elemType]) });
    expect(io(q)).toEqual(io(f));
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
