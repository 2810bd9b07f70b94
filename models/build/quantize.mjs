#!/usr/bin/env node
// Statically quantises ../nanodet.onnx to ../nanodet-int8.onnx (QDQ: uint8 activations, int8 per-channel
// weights with bias correction; see qdq.mjs) with activation ranges calibrated on the repository's own fixtures
// (calibrate.mjs, frames.mjs), then gates it against fp32 on the photos and the clip (gfl.mjs GATE): nothing is
// written unless it passes. Its input takes the camera's uint8 RGB bytes (NHWC) instead of float32 RGB/255 NCHW
// (byte-input.mjs), and it returns only the candidate anchors of the kept classes (candidates.mjs). Writes
// ../nanodet-int8.onnx.sha256 next to it. Reproducible: same bytes on rerun.
//
// Usage: node quantize.mjs [--act uint8|int8] [--weight-bits 8|7] [--calib mse-low|mse|percentile|minmax]
//   [--head-calib minmax|...] [--percentile 99.99] [--no-bias-correction] [--no-leaky-aware] [--out path]
//   [--runs 100] [--rounds 4] [--stats-cache file.json]
//   --runs 0 skips the speed comparison. --stats-cache keeps the calibration statistics between runs
//   (experiments only; the build computes them afresh).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { collectStats, chooseRange, BINS } from './calibrate.mjs';
import { byteInputModel } from './byte-input.mjs';
import { candidateModel, verify as verifyCandidates } from './candidates.mjs';
import { calibrationFrames, evaluationFrames, feedsFor } from './frames.mjs';
import { compareDetections, decode, GATE, gateViolations, nms, summarize } from './gfl.mjs';
import { encodeModel, loadModel, onnx, sha256, tensorProto } from './onnx-io.mjs';
import { buildQdqGraph, planQuantization } from './qdq.mjs';
import { agentSessionOptions, alternatingBench } from './speed.mjs';
import { requireOrt } from './ort.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const ort = requireOrt();
const CLASSES = JSON.parse(readFileSync(join(repoRoot, 'models', 'coco-classes.json'), 'utf8'));

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: join(repoRoot, 'models', 'nanodet.onnx') },
    out: { type: 'string', default: join(repoRoot, 'models', 'nanodet-int8.onnx') },
    act: { type: 'string', default: 'uint8' },
    'weight-bits': { type: 'string', default: '7' },
    calib: { type: 'string', default: 'mse-low' },
    'head-calib': { type: 'string', default: 'minmax' },
    percentile: { type: 'string', default: '99.99' },
    'no-bias-correction': { type: 'boolean', default: false },
    'no-leaky-aware': { type: 'boolean', default: false },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '4' },
    'stats-cache': { type: 'string' },
  },
});
const log = (...a) => console.log('quantize:', ...a);
const opts = {
  act: args.act,
  weightBits: Number(args['weight-bits']),
  method: args.calib,
  percentile: Number(args.percentile),
  headMethod: args['head-calib'],
  biasCorrection: !args['no-bias-correction'],
  leakyAware: !args['no-leaky-aware'],
};
if (!['uint8', 'int8'].includes(opts.act)) throw new Error(`--act ${opts.act}: expected uint8 or int8`);
if (![7, 8].includes(opts.weightBits)) throw new Error(`--weight-bits ${args['weight-bits']}: expected 7 or 8`);
const threads = Number(args.threads);

// 1. The fp32 model and what to quantise.
const fp32 = loadModel(args.model);
const plan = planQuantization(fp32.model);
log(`${basename(args.model)} sha256 ${fp32.sha256}: ${fp32.model.graph.node.length} nodes; ${plan.quantized.size} activations quantised (${plan.calibrated.length} calibrated, ${plan.shareWith.size} reuse their input's range), ${plan.floatNodes.size} head nodes kept float`);

// 2. Calibration: histograms of the activations, channel means of the Conv inputs (or a cached copy of them
// from an earlier run on the same model).
let stats;
const cacheKey = `${fp32.sha256}/${BINS}/frames-v1`;
if (args['stats-cache'] && existsSync(args['stats-cache'])) {
  const cached = JSON.parse(readFileSync(args['stats-cache'], 'utf8'));
  if (cached.key === cacheKey) {
    stats = {
      hist: new Map(Object.entries(cached.hist).map(([t, s]) => [t, { min: s.min, max: s.max, hist: Float64Array.from(s.hist) }])),
      means: new Map(Object.entries(cached.means).map(([t, m]) => [t, Float64Array.from(m)])),
    };
    log(`calibration statistics from ${args['stats-cache']}`);
  }
}
if (!stats) {
  const t0 = Date.now();
  const frames = calibrationFrames(repoRoot);
  log(`calibrating on ${frames.length} frames (${[...new Set(frames.map((f) => f.tag.replace(/ #\d+$/, '')))].join(', ')})`);
  stats = await collectStats(ort, fp32.model, { histTensors: plan.calibrated, meanTensors: plan.convInputs }, frames, {
    threads,
    onProgress: (pass, done, total) => log(`  pass ${pass}: ${done}/${total} frames`),
  });
  log(`calibration took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (args['stats-cache']) {
    const hist = Object.fromEntries([...stats.hist].map(([t, s]) => [t, { min: s.min, max: s.max, hist: Array.from(s.hist) }]));
    const means = Object.fromEntries([...stats.means].map(([t, m]) => [t, Array.from(m)]));
    mkdirSync(dirname(resolve(args['stats-cache'])), { recursive: true });
    writeFileSync(args['stats-cache'], JSON.stringify({ key: cacheKey, hist, means }));
  }
}
// Tensors that only feed a LeakyRelu: errors on their negative side shrink by alpha after it.
const consumers = (t) => fp32.model.graph.node.filter((n) => n.input.includes(t));
const leakyAlpha = (t) => {
  const c = consumers(t);
  return c.length === 1 && c[0].opType === 'LeakyRelu' ? c[0].attribute.find((a) => a.name === 'alpha').f : 1;
};
const ranges = new Map(
  plan.calibrated.map((t) => {
    const method = plan.headTensors.includes(t) ? opts.headMethod : opts.method;
    return [t, chooseRange(stats.hist.get(t), { ...opts, method, negativeWeight: opts.leakyAware ? leakyAlpha(t) ** 2 : 1 })];
  }),
);

// 3. The QDQ model, its input then rewritten to take the frame's uint8 RGB bytes (byte-input.mjs).
const q = buildQdqGraph(fp32.model, fp32.inits, plan, ranges, { ...opts, channelMeans: opts.biasCorrection ? stats.means : undefined });
const graph = fp32.model.graph;
const qdqModel = {
  irVersion: 7,
  opsetImport: [{ domain: '', version: 13 }],
  producerName: 'roadside-agent models/build/quantize.mjs',
  producerVersion: '1',
  docString:
    `${fp32.model.docString} Statically quantised (QDQ) from nanodet.onnx sha256 ${fp32.sha256}: ` +
    `${opts.act} asymmetric activations (${opts.method} calibration on the repository fixtures), ` +
    `int8 symmetric per-channel Conv weights (${opts.weightBits}-bit range), int32 biases; head output convolutions, Sigmoid, Reshape, Transpose in float.`,
  graph: {
    name: 'nanodet_int8',
    node: q.nodes,
    initializer: [...q.initializers].map(([name, t]) => tensorProto(name, t)),
    input: graph.input,
    output: graph.output,
  },
};
// The uint8 input (byte-input.mjs), then only the candidate anchors as outputs (candidates.mjs), checked row for
// row against the dense outputs.
const dense = byteInputModel(qdqModel);
const written = candidateModel(dense);
const bytes = encodeModel(written);
{
  const { frames, anchors } = await verifyCandidates(ort, encodeModel(dense), bytes, repoRoot);
  log(`candidate outputs: ${anchors} anchors on ${frames} frames equal to the dense heads' rows`);
}
const digest = sha256(bytes);
const counts = {};
for (const n of written.graph.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
log(`QDQ graph (uint8 NHWC input): ${written.graph.node.length} nodes ${JSON.stringify(counts)}; ${(bytes.length / 1e6).toFixed(2)} MB; ${q.clippedWeights} weights at +-max; sha256 ${digest}`);

// What ONNX Runtime makes of it: the optimised graph's operators (QLinearConv etc.).
{
  const dir = mkdtempSync(join(tmpdir(), 'nanodet-int8-'));
  const optimized = join(dir, 'optimized.onnx');
  // logSeverityLevel 3: ORT warns that an `all`-level optimised model is machine-specific (it is only read here).
  const s = await ort.InferenceSession.create(bytes, { ...agentSessionOptions(threads), optimizedModelFilePath: optimized, logSeverityLevel: 3 });
  await s.release?.();
  const m = onnx.ModelProto.decode(readFileSync(optimized));
  const ops = {};
  for (const n of m.graph.node) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  rmSync(dir, { recursive: true, force: true });
  log(`onnxruntime-node ${ort.env?.versions?.common ?? '?'} optimised graph: ${JSON.stringify(ops)}`);
}

// 4. The accuracy gate (gfl.mjs GATE): fp32 vs int8 detections on the photos and the clip.
{
  const frames = evaluationFrames(repoRoot);
  const sf = await ort.InferenceSession.create(fp32.bytes, agentSessionOptions(threads));
  const sq = await ort.InferenceSession.create(bytes, agentSessionOptions(threads));
  // fp32 gets RGB / 255 floats, int8 the bytes themselves.
  const floor = GATE.threshold - GATE.margin;
  const detect = async (s, rgb) => nms(decode(await s.run(feedsFor(ort, s, rgb, { minScore: floor })), floor), GATE.nmsIou);
  const results = [];
  for (const f of frames) results.push({ tag: f.tag, ...compareDetections(await detect(sf, f.rgb), await detect(sq, f.rgb), GATE) });
  await sf.release?.();
  await sq.release?.();
  const all = summarize(results, CLASSES);
  const photos = results.filter((r) => /\.jpg (stretch|letterbox)$/.test(r.tag)).map((r) => ({ name: r.tag, result: r }));
  const pct = (v) => `${(100 * v).toFixed(1)} %`;
  log(`accuracy gate on ${all.frames} frames: ${all.reference} fp32 objects >= ${GATE.threshold} ${JSON.stringify(all.classes)}`);
  log(`  found ${pct(all.found_rate)} (${all.lost.length} lost), extra ${pct(all.extra_rate)} (${all.extra.length}); IoU min ${all.iou_min.toFixed(3)}, p5 ${all.iou_p5.toFixed(3)}, mean ${all.iou_mean.toFixed(4)}, >= 0.9: ${pct(all.iou_ge_09)}`);
  log(`  score drop (fp32 - int8): mean ${all.score_drop_mean.toFixed(4)}, mean |diff| ${all.score_abs_diff_mean.toFixed(4)}, max ${all.score_drop_max.toFixed(3)}`);
  for (const { name, result } of photos) {
    const objs = result.pairs.map((x) => `${CLASSES[x.cls]} ${x.ref.score.toFixed(3)}->${x.test.score.toFixed(3)} IoU ${x.iou.toFixed(3)}`);
    const lost = result.lost.map((l) => ` lost ${CLASSES[l.ref.cls]} ${l.ref.score.toFixed(3)}`);
    const extra = result.extra.map((e) => ` extra ${CLASSES[e.test.cls]} ${e.test.score.toFixed(3)}`);
    log(`  ${name}: ${objs.join(', ')}${[...lost, ...extra].join(',')}`);
  }
  const violations = gateViolations(all, photos, CLASSES);
  if (violations.length) {
    for (const v of violations) console.error(`quantize: gate: ${v}`);
    console.error('quantize: FAILED the accuracy gate; nothing written');
    process.exit(1);
  }
  log('accuracy gate: OK');
}

writeFileSync(args.out, bytes);
writeFileSync(`${args.out}.sha256`, `${digest}  ${basename(args.out)}\n`);
log(`wrote ${args.out} and ${basename(args.out)}.sha256`);

// 5. Speed, fp32 vs int8, alternating rounds (the ratio is what counts on a shared machine).
if (Number(args.runs) > 0) {
  const res = await alternatingBench(ort, fp32.bytes, bytes, { threads, runs: Number(args.runs), rounds: Number(args.rounds), log: (m) => log(`  speed ${m}`) });
  log(`speed int8/fp32 (inferences/s ratio, ${threads} threads): median of rounds ${res.ratio_median.toFixed(3)}, overall ${res.ratio_total.toFixed(3)}`);
}
