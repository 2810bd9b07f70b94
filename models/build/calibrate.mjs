// Activation calibration for quantize.mjs: runs a copy of the fp32 model whose intermediate tensors are extra
// graph outputs over the calibration frames (onnxruntime-node), and chooses each tensor's clipping range from a
// histogram of all its values.
//
// Pass 1 finds each tensor's min and max over every frame (and the per-channel means of the convolutions'
// inputs, for the bias correction); pass 2 fills a 2048-bin histogram over [min, max]. A range is then chosen
// per tensor (quantize.mjs --calib, --head-calib):
// - `minmax`: the observed range;
// - `percentile`: the 0.01 % / 99.99 % points (--percentile);
// - `mse`: the [lo, hi] that minimises the expected squared error of an 8-bit uniform quantiser over the
//   histogram (values outside are clipped, values inside get the rounding error step^2 / 12), errors on negative
//   values weighted by alpha^2 when the tensor only feeds a LeakyRelu;
// - `mse-low` (the default): the same, but only the low end is clipped; the high end stays at the observed max.
// Clipping the high end costs this detector its confident detections: the largest activations are the objects
// themselves (README.md has the measurements). All ranges keep 0 inside (zero padding must be exact). The
// frames are processed in a fixed order and the ranges rounded to 4 significant digits, so a rerun gives the
// same bytes.
import { encodeModel, floatValueInfo } from './onnx-io.mjs';
import { toInput, SIZE } from './frames.mjs';

export const BINS = 2048;

/** The calibration copy: the same graph with `tensors` added as outputs. */
export function calibrationModel(model, tensors) {
  const graph = { ...model.graph, output: [...model.graph.output, ...tensors.map((t) => floatValueInfo(t))] };
  return encodeModel({ ...model, graph });
}

/**
 * Runs the frames through the calibration model twice. Returns `hist`: Map tensor -> { min, max, hist:
 * Float64Array } for `histTensors`, and `means`: Map tensor -> Float64Array of per-channel means (NCHW) for
 * `meanTensors` (the convolutions' inputs, for the bias correction in qdq.mjs). `onProgress(pass, done, total)`
 * is called now and then.
 */
export async function collectStats(ort, model, { histTensors, meanTensors }, frames, { threads = 2, onProgress = () => {} } = {}) {
  const outputs = [...new Set([...histTensors, ...meanTensors])].filter((t) => t !== 'images');
  const bytes = calibrationModel(model, outputs);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const hist = new Map(histTensors.map((t) => [t, { min: Infinity, max: -Infinity, hist: new Float64Array(BINS) }]));
  const means = new Map();
  const run = async (frame) => {
    const input = toInput(frame.rgb);
    const out = await session.run({ images: new ort.Tensor('float32', input, [1, 3, SIZE, SIZE]) }, outputs);
    return { ...out, images: { data: input, dims: [1, 3, SIZE, SIZE] } };
  };
  for (let i = 0; i < frames.length; i++) {
    const out = await run(frames[i]);
    for (const [t, s] of hist) {
      const d = out[t].data;
      let lo = s.min;
      let hi = s.max;
      for (let j = 0; j < d.length; j++) {
        const v = d[j];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      s.min = lo;
      s.max = hi;
    }
    for (const t of meanTensors) {
      const { data, dims } = out[t];
      const channels = Number(dims[1]);
      const plane = data.length / channels;
      if (!means.has(t)) means.set(t, new Float64Array(channels));
      const m = means.get(t);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let j = c * plane; j < (c + 1) * plane; j++) sum += data[j];
        m[c] += sum / plane / frames.length;
      }
    }
    if (i % 50 === 49) onProgress(1, i + 1, frames.length);
  }
  for (let i = 0; i < frames.length; i++) {
    const out = await run(frames[i]);
    for (const [t, s] of hist) {
      const d = out[t].data;
      const k = s.max > s.min ? BINS / (s.max - s.min) : 0;
      const h = s.hist;
      for (let j = 0; j < d.length; j++) {
        const b = Math.floor((d[j] - s.min) * k);
        h[b >= BINS ? BINS - 1 : b]++;
      }
    }
    if (i % 50 === 49) onProgress(2, i + 1, frames.length);
  }
  await session.release?.();
  return { hist, means };
}

const round4 = (v) => Number(v.toPrecision(4));

/** Clipping range [lo, hi] (lo <= 0 <= hi) of one tensor from its histogram. */
export function chooseRange({ min, max, hist }, { method = 'mse', percentile = 99.99, negativeWeight = 1 } = {}) {
  const width = (max - min) / BINS;
  const edge = (i) => min + i * width;
  let lo;
  let hi;
  if (method === 'minmax') {
    [lo, hi] = [min, max];
  } else if (method === 'percentile') {
    const total = hist.reduce((a, b) => a + b, 0);
    const tail = total * (1 - percentile / 100);
    let acc = 0;
    let a = 0;
    while (a < BINS - 1 && acc + hist[a] <= tail) acc += hist[a++];
    acc = 0;
    let b = BINS;
    while (b > 1 && acc + hist[b - 1] <= tail) acc += hist[--b];
    [lo, hi] = [edge(a), edge(b)];
  } else if (method === 'mse' || method === 'mse-low') {
    [lo, hi] = mseRange(hist, min, width, negativeWeight, method === 'mse-low');
  } else {
    throw new Error(`unknown calibration method ${method}`);
  }
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  if (hi - lo <= 0) hi = lo + 1e-6;
  return [round4(lo), round4(hi)];
}

/**
 * [lo, hi] on bin edges minimising clip error + in-range rounding error (step^2 / 12) of 256 levels. Errors on
 * negative values count `negativeWeight` times (alpha^2 for a tensor that only feeds a LeakyRelu: the error
 * that matters is the one after it).
 */
function mseRange(hist, min, width, negativeWeight, keepMax) {
  // Prefix sums of count, count*x and count*x^2 at bin centres: the clip error of any [lo, hi] in O(1).
  const c0 = new Float64Array(BINS + 1);
  const c1 = new Float64Array(BINS + 1);
  const c2 = new Float64Array(BINS + 1);
  for (let i = 0; i < BINS; i++) {
    const x = min + (i + 0.5) * width;
    const n = hist[i] * (x < 0 ? negativeWeight : 1);
    c0[i + 1] = c0[i] + n;
    c1[i + 1] = c1[i] + n * x;
    c2[i + 1] = c2[i] + n * x * x;
  }
  const edge = (i) => min + i * width;
  // The bin edge nearest to zero: lo runs over edges at or below it, hi over edges at or above it.
  const z = Math.min(BINS, Math.max(0, Math.round(-min / width)));
  let best = Infinity;
  let bestA = 0;
  let bestB = BINS;
  for (let a = 0; a <= z; a++) {
    const lo = edge(a);
    const below = c2[a] - 2 * lo * c1[a] + lo * lo * c0[a];
    if (below >= best) continue;
    for (let b = keepMax ? BINS : Math.max(z, a + 1); b <= BINS; b++) {
      const hi = edge(b);
      const nAbove = c0[BINS] - c0[b];
      const above = c2[BINS] - c2[b] - 2 * hi * (c1[BINS] - c1[b]) + hi * hi * nAbove;
      const step = (hi - lo) / 255;
      const err = below + above + (c0[b] - c0[a]) * (step * step) / 12;
      if (err < best) [best, bestA, bestB] = [err, a, b];
    }
  }
  return [edge(bestA), edge(bestB)];
}
