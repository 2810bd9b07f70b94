// The QDQ rewrite of the fp32 NanoDet graph (used by quantize.mjs).
//
// - Every activation of the backbone, FPN/PAN and the heads' 3x3 convolutions is quantised: the producer's output
//   goes through QuantizeLinear once and each consumer reads its own DequantizeLinear (one DQ per consumer, as
//   ONNX Runtime's QDQ node-unit selectors expect). 8-bit, asymmetric (per-tensor scale and zero point), uint8 or
//   int8 (`act`; uint8 is the one ONNX Runtime fuses on x86, see README.md).
// - Conv weights: int8 initializers, symmetric per output channel (zero point 0, DQ axis 0), range +-127 or, with
//   weightBits 7, +-63 (no 16-bit overflow in the u8 x s8 pair sums of x86 CPUs without VNNI, see README.md).
//   Biases: int32 with scale input_scale x weight_scale[c], as QLinearConv takes them, bias-corrected for the
//   weight rounding (correctBias).
// - MaxPool and Resize outputs reuse their input's parameters (ORT then runs them on 8-bit data directly).
// - The last convolution of each head (1x1 -> 80 class + 44 box channels), the Split, Sigmoid, Reshape and
//   Transpose after it stay float: the outputs keep their full precision, as in the fp32 model.
// With graph optimisation on, ONNX Runtime's CPU EP fuses DQ -> Conv -> Q into QLinearConv, DQ -> LeakyRelu -> Q
// into QLinearLeakyRelu, Add into QLinearAdd and Concat into QLinearConcat.
import { DTYPE, intAttr, node } from './onnx-io.mjs';

const QUANTIZED_OPS = new Set(['Conv', 'LeakyRelu', 'Concat', 'Add', 'MaxPool', 'Resize']);
const SHARES_INPUT_PARAMS = new Set(['MaxPool', 'Resize']);

/** Which tensors get Q/DQ, which reuse another's parameters, which nodes stay float (`keepFloat`: tensors not to quantise). */
export function planQuantization(model, keepFloat = new Set()) {
  const nodes = model.graph.node;
  const consumers = new Map();
  for (const n of nodes) for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  // Float region: each head's last Conv (the one feeding Split) and everything after it.
  const floatNodes = new Set();
  const markFloat = (n) => {
    if (floatNodes.has(n)) return;
    floatNodes.add(n);
    for (const o of n.output) for (const c of consumers.get(o) ?? []) markFloat(c);
  };
  const headConvs = nodes.filter((n) => n.opType === 'Conv' && (consumers.get(n.output[0]) ?? []).some((c) => c.opType === 'Split'));
  if (headConvs.length !== 3) throw new Error(`expected 3 head convolutions feeding Split, found ${headConvs.length}`);
  headConvs.forEach(markFloat);

  const quantized = new Set(keepFloat.has('images') ? [] : ['images']);
  const shareWith = new Map(); // tensor -> tensor whose parameters it reuses
  const calibrated = [];
  for (const n of nodes) {
    if (floatNodes.has(n)) continue;
    if (!QUANTIZED_OPS.has(n.opType)) throw new Error(`no quantisation rule for ${n.opType} (${n.name})`);
    if (SHARES_INPUT_PARAMS.has(n.opType)) shareWith.set(n.output[0], shareWith.get(n.input[0]) ?? n.input[0]);
    else calibrated.push(n.output[0]);
    if (!keepFloat.has(n.output[0])) quantized.add(n.output[0]);
  }
  const convInputs = [...new Set(nodes.filter((n) => n.opType === 'Conv' && !floatNodes.has(n)).map((n) => n.input[0]))];
  // The float head convolutions' inputs (LeakyRelu outputs) and the LeakyRelus' inputs: sparse, large values at
  // the objects themselves, so their ranges are not clipped (quantize.mjs --head-calib).
  const producerOf = (t) => nodes.find((n) => n.output.includes(t));
  const headTensors = headConvs.flatMap((c) => {
    const p = producerOf(c.input[0]);
    return p?.opType === 'LeakyRelu' ? [c.input[0], p.input[0]] : [c.input[0]];
  });
  return { floatNodes, quantized, shareWith, calibrated, headConvs, convInputs, headTensors };
}

/** Scale and zero point of an asymmetric 8-bit quantiser over [lo, hi] (lo <= 0 <= hi): 0 maps to an integer. */
export function activationParams([lo, hi], act) {
  const scale = Math.fround((hi - lo) / 255);
  const qmin = act === 'uint8' ? 0 : -128;
  const zp = Math.min(qmin + 255, Math.max(qmin, qmin + Math.round(-lo / scale)));
  return { scale, zp };
}

/** Symmetric per-output-channel int8 weights ([cout, ...] layout). */
export function quantizeWeights(w, dims, weightBits) {
  const qmax = weightBits === 8 ? 127 : 63;
  const cout = dims[0];
  const per = w.length / cout;
  const scales = new Float32Array(cout);
  const q = new Int8Array(w.length);
  for (let c = 0; c < cout; c++) {
    let m = 0;
    for (let j = c * per; j < (c + 1) * per; j++) m = Math.max(m, Math.abs(w[j]));
    const s = Math.fround(m > 0 ? m / qmax : 1);
    scales[c] = s;
    for (let j = c * per; j < (c + 1) * per; j++) {
      const v = Math.sign(w[j]) * Math.round(Math.abs(w[j]) / s);
      q[j] = Math.max(-qmax, Math.min(qmax, v));
    }
  }
  return { q, scales };
}

/**
 * Bias correction of the weight rounding: rounding shifts output channel c's mean by
 * sum_{i,k} (Wq - W)[c, i, k] * E[x_i] (E[x_i]: the channel means of the Conv's input over the calibration
 * frames; borders ignored), which the bias takes back. Without it the rounding alone lowers the scores.
 */
export function correctBias(bias, w, q, scales, inputMeans) {
  const [cout, cin] = w.dims;
  const k = w.data.length / cout / cin;
  if (!inputMeans || inputMeans.length !== cin) throw new Error(`bias correction: ${cin} input channel means expected`);
  return Float32Array.from(bias, (b, c) => {
    let shift = 0;
    for (let i = 0; i < cin; i++) {
      let d = 0;
      for (let j = (c * cin + i) * k; j < (c * cin + i + 1) * k; j++) d += q[j] * scales[c] - w.data[j];
      shift += d * inputMeans[i];
    }
    return b - shift;
  });
}

/**
 * Builds the QDQ graph. `ranges`: Map tensor -> [lo, hi] for plan.calibrated. Returns the graph fields for
 * encodeModel (node, initializer list as { name, dataType, dims, data }) and a summary.
 */
export function buildQdqGraph(model, inits, plan, ranges, { act = 'uint8', weightBits = 8, channelMeans } = {}) {
  const actType = DTYPE[act];
  const ActArray = act === 'uint8' ? Uint8Array : Int8Array;
  const outInits = new Map();
  const addInit = (name, dataType, dims, data) => {
    if (outInits.has(name)) throw new Error(`duplicate initializer ${name}`);
    outInits.set(name, { dataType, dims, data });
    return name;
  };
  const params = new Map();
  const paramsOf = (t) => {
    const root = plan.shareWith.get(t) ?? t;
    if (!params.has(root)) {
      const p = root === 'images' ? { scale: Math.fround(1 / 255), zp: act === 'uint8' ? 0 : -128 } : activationParams(ranges.get(root), act);
      addInit(`${root}/scale`, DTYPE.float32, [], Float32Array.of(p.scale));
      addInit(`${root}/zero_point`, actType, [], ActArray.of(p.zp));
      params.set(root, { ...p, scaleName: `${root}/scale`, zpName: `${root}/zero_point` });
    }
    return params.get(root);
  };

  const out = [];
  const dqCount = new Map();
  const quantize = (t) => {
    const p = paramsOf(t);
    out.push(node('QuantizeLinear', [t, p.scaleName, p.zpName], [`${t}/q`], `${t}/QuantizeLinear`));
  };
  const dequantize = (t) => {
    const p = paramsOf(t);
    const k = (dqCount.get(t) ?? 0) + 1;
    dqCount.set(t, k);
    const name = `${t}/dq${k}`;
    out.push(node('DequantizeLinear', [`${t}/q`, p.scaleName, p.zpName], [name], `${t}/DequantizeLinear${k}`));
    return name;
  };
  const copyInit = (name) => {
    if (!outInits.has(name)) {
      const t = inits.get(name);
      addInit(name, t.dataType, t.dims, t.data);
    }
    return name;
  };

  let clippedWeights = 0;
  quantize('images');
  for (const n of model.graph.node) {
    const inputs = n.input.map((i) => (i && plan.quantized.has(i) ? dequantize(i) : i));
    // A Conv becomes QLinearConv when its input and output are both quantised; otherwise it keeps float weights.
    if (n.opType === 'Conv' && plan.quantized.has(n.input[0]) && plan.quantized.has(n.output[0]) && !plan.floatWeights?.has(n.name)) {
      const [, wName, bName] = n.input;
      const w = inits.get(wName);
      const { q, scales } = quantizeWeights(w.data, w.dims, weightBits);
      for (let j = 0; j < q.length; j++) if (Math.abs(q[j]) === (weightBits === 8 ? 127 : 63)) clippedWeights++;
      addInit(`${wName}/quantized`, DTYPE.int8, w.dims, q);
      addInit(`${wName}/scale`, DTYPE.float32, [w.dims[0]], scales);
      addInit(`${wName}/zero_point`, DTYPE.int8, [w.dims[0]], new Int8Array(w.dims[0]));
      const axis0 = [intAttr('axis', 0)];
      out.push(node('DequantizeLinear', [`${wName}/quantized`, `${wName}/scale`, `${wName}/zero_point`], [`${wName}/dq`], `${wName}/DequantizeLinear`, axis0));
      inputs[1] = `${wName}/dq`;
      if (bName) {
        const b = inits.get(bName);
        const sx = paramsOf(n.input[0]).scale;
        const bScale = scales.map((sw) => Math.fround(sx * sw));
        const bias = channelMeans ? correctBias(b.data, w, q, scales, channelMeans.get(n.input[0])) : b.data;
        const bq = Int32Array.from(bias, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bScale[c]))));
        addInit(`${bName}/quantized`, DTYPE.int32, b.dims, bq);
        addInit(`${bName}/scale`, DTYPE.float32, b.dims, bScale);
        addInit(`${bName}/zero_point`, DTYPE.int32, b.dims, new Int32Array(b.dims[0]));
        out.push(node('DequantizeLinear', [`${bName}/quantized`, `${bName}/scale`, `${bName}/zero_point`], [`${bName}/dq`], `${bName}/DequantizeLinear`, axis0));
        inputs[2] = `${bName}/dq`;
      }
    } else {
      for (const i of n.input) if (i && inits.has(i)) copyInit(i);
    }
    out.push(node(n.opType, inputs, [...n.output], n.name, n.attribute, n.domain ?? ''));
    for (const o of n.output) if (plan.quantized.has(o)) quantize(o);
  }
  const counts = {};
  for (const n of out) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return { nodes: out, initializers: outInits, counts, clippedWeights, params };
}
