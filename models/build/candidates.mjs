#!/usr/bin/env node
// The int8 model returns only its candidate anchors. The dense heads (cls_s* [1,N,80] sigmoid scores and reg_s*
// [1,N,44] distance logits, 1.72 MB a run at 416x416) stay inside the graph; per stride s it now returns
//   anchors_s{s} int32   [n]        the anchors (row-major cell index) whose best kept class scores >= min_score
//   scores_s{s}  float32 [1,n,K]    their scores for the kept classes, in the order of the `classes` input
//   dists_s{s}   float32 [1,n,44]   their GFL distance logits, as reg_s{s}
// from two more inputs: `classes` int64 [K] (the class ids to keep) and `min_score` float32 [] (the lowest
// threshold among them). Typically n is tens and K six, so a run returns kilobytes. ONNX Runtime's node binding
// copies every output into a new buffer; on the agent's detector that was 214 page faults a run and the worker's
// per-run garbage collection (docs/performance.md). The rows are the dense outputs' own values (Gather only):
// verify() checks that on the evaluation frames, element for element.
//
// quantize.mjs applies it last; on its own it rewrites an existing int8 model with dense heads:
//   node candidates.mjs --in ../nanodet-int8.onnx --out ../nanodet-int8.onnx
import { basename, dirname, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { candidateFeeds, evaluationFrames, feedsFor } from './frames.mjs';
import { DTYPE, encodeModel, intAttr, intsAttr, loadModel, node, sha256, tensorProto } from './onnx-io.mjs';
import { requireOrt } from './ort.mjs';

const DENSE = /^cls_s(\d+)$/;
const SECOND_ROW = 'candidates/second_row';

const valueInfo = (name, elemType, dims) => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const dimsOf = (v) => v.type.tensorType.shape.dim.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));

/** Rewrites model fields (as for encodeModel) with dense cls_s* / reg_s* outputs into the candidate outputs above. */
export function candidateModel(fields) {
  const g = fields.graph;
  if (g.input.some((v) => v.name === 'classes' || v.name === 'min_score')) throw new Error('candidates: the model already takes classes / min_score');
  const levels = g.output.filter((o) => DENSE.test(o.name)).map((o) => DENSE.exec(o.name)[1]);
  if (levels.length === 0) throw new Error(`candidates: no cls_s* outputs in ${g.output.map((o) => o.name).join(', ')}`);
  const nodes = [...g.node];
  const output = [];
  for (const s of levels) {
    const cls = g.output.find((o) => o.name === `cls_s${s}`);
    const reg = g.output.find((o) => o.name === `reg_s${s}`);
    if (!reg) throw new Error(`candidates: cls_s${s} has no reg_s${s}`);
    const [, , bins4] = dimsOf(reg);
    const p = (x) => `candidates_s${s}/${x}`;
    nodes.push(
      node('Gather', [cls.name, 'classes'], [p('kept')], p('GatherClasses'), [intAttr('axis', 2)]),
      node('ReduceMax', [p('kept')], [p('best')], p('ReduceMax'), [intsAttr('axes', [2]), intAttr('keepdims', 0)]),
      node('GreaterOrEqual', [p('best'), 'min_score'], [p('pass')], p('GreaterOrEqual')),
      // NonZero of the [1,N] mask: [2,n] (batch row, anchor row); the second row is the anchors.
      node('NonZero', [p('pass')], [p('where')], p('NonZero')),
      node('Gather', [p('where'), SECOND_ROW], [p('index')], p('GatherIndex'), [intAttr('axis', 0)]),
      node('Gather', [p('kept'), p('index')], [`scores_s${s}`], p('GatherScores'), [intAttr('axis', 1)]),
      node('Gather', [reg.name, p('index')], [`dists_s${s}`], p('GatherDists'), [intAttr('axis', 1)]),
      node('Cast', [p('index')], [`anchors_s${s}`], p('Cast'), [intAttr('to', DTYPE.int32)]),
    );
    output.push(
      valueInfo(`anchors_s${s}`, DTYPE.int32, [`n_s${s}`]),
      valueInfo(`scores_s${s}`, DTYPE.float32, [1, `n_s${s}`, 'classes']),
      valueInfo(`dists_s${s}`, DTYPE.float32, [1, `n_s${s}`, bins4]),
    );
  }
  const initializer = [...g.initializer, tensorProto(SECOND_ROW, { dataType: DTYPE.int64, dims: [], data: BigInt64Array.of(1n) })];
  const input = [...g.input, valueInfo('classes', DTYPE.int64, ['classes']), valueInfo('min_score', DTYPE.float32, [])];
  const note =
    'Outputs per stride s: anchors_s{s} int32 [n] (cells whose best kept class scores >= min_score), scores_s{s} [1,n,K] ' +
    'sigmoid scores of the classes fed in `classes` int64 [K], dists_s{s} [1,n,44] their GFL distance logits.';
  return { ...fields, docString: `${fields.docString ?? ''} ${note}`.trim(), graph: { ...g, node: nodes, initializer, input, output } };
}

/**
 * Runs the dense and the candidate model on the evaluation frames and compares: the same anchors as the dense
 * outputs select, and their rows equal element for element. Returns { frames, anchors }; throws on a difference.
 */
export async function verify(ort, denseBytes, candidateBytes, repoRoot, { minScore = 0.2, classes = [0, 1, 2, 3, 5, 7] } = {}) {
  const opts = { intraOpNumThreads: 2, graphOptimizationLevel: 'all' };
  const dense = await ort.InferenceSession.create(denseBytes, opts);
  const cand = await ort.InferenceSession.create(candidateBytes, opts);
  let frames = 0;
  let anchors = 0;
  for (const f of evaluationFrames(repoRoot)) {
    const d = await dense.run(feedsFor(ort, dense, f.rgb));
    const c = await cand.run({ ...feedsFor(ort, cand, f.rgb), ...candidateFeeds(ort, cand, minScore, classes) });
    for (const name of Object.keys(d).filter((n) => DENSE.test(n))) {
      const s = DENSE.exec(name)[1];
      const cls = d[name].data;
      const reg = d[`reg_s${s}`].data;
      const C = d[name].dims[2];
      const B = d[`reg_s${s}`].dims[2];
      const want = [];
      for (let i = 0; i < d[name].dims[1]; i++) if (Math.max(...classes.map((k) => cls[i * C + k])) >= minScore) want.push(i);
      const got = [...c[`anchors_s${s}`].data];
      const where = `${f.tag} stride ${s}`;
      if (got.join() !== want.join()) throw new Error(`candidates: ${where}: anchors ${got.length} differ from the dense outputs' ${want.length}`);
      const sc = c[`scores_s${s}`].data;
      const di = c[`dists_s${s}`].data;
      got.forEach((a, j) => {
        classes.forEach((k, q) => {
          if (sc[j * classes.length + q] !== cls[a * C + k]) throw new Error(`candidates: ${where}: anchor ${a} class ${k} score differs`);
        });
        for (let b = 0; b < B; b++) if (di[j * B + b] !== reg[a * B + b]) throw new Error(`candidates: ${where}: anchor ${a} distance ${b} differs`);
      });
      anchors += got.length;
    }
    frames++;
  }
  await dense.release?.();
  await cand.release?.();
  if (anchors === 0) throw new Error('candidates: no anchor passed on any evaluation frame; the check proves nothing');
  return { frames, anchors };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: o } = parseArgs({ options: { in: { type: 'string' }, out: { type: 'string' } } });
  if (!o.in || !o.out) throw new Error('usage: node candidates.mjs --in dense-int8.onnx --out candidates-int8.onnx');
  const { model, bytes: dense } = loadModel(o.in);
  const bytes = encodeModel(candidateModel(model));
  const { frames, anchors } = await verify(requireOrt(), dense, bytes, resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'));
  const digest = sha256(bytes);
  writeFileSync(o.out, bytes);
  writeFileSync(`${o.out}.sha256`, `${digest}  ${basename(o.out)}\n`);
  console.log(`candidates: ${frames} frames, ${anchors} candidate anchors equal to the dense outputs' rows; wrote ${o.out} (${(bytes.length / 1e6).toFixed(2)} MB), sha256 ${digest}`);
}
