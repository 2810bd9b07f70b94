#!/usr/bin/env node
// Speed of two models on the same input, in alternating rounds (A B, B A, A B, ...), so that a shared, noisy
// machine slows both alike: each round's int8/fp32 ratio is what to read, not the absolute numbers.
// Session options are the agent's (inference/detector/session.ts): intra-op threads, 1 inter-op thread,
// sequential, graph optimisation `all`, no spinning.
//
// Usage: node speed.mjs [--a ../nanodet.onnx] [--b ../nanodet-int8.onnx] [--threads 2] [--runs 200] [--rounds 6]
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { fixtures, decodeFrames, feedsFor } from './frames.mjs';
import { requireOrt } from './ort.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

export function agentSessionOptions(threads) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** Returns { rounds: [{ a_per_s, b_per_s, ratio }], ratio_median, ratio_total }. `a` and `b` are paths or bytes. */
export async function alternatingBench(ort, a, b, { threads = 2, runs = 200, rounds = 6, warmup = 20, log = () => {} } = {}) {
  const [sa, sb] = [await ort.InferenceSession.create(a, agentSessionOptions(threads)), await ort.InferenceSession.create(b, agentSessionOptions(threads))];
  const { clip } = fixtures(repoRoot);
  const frame = decodeFrames(clip, { select: (n) => n === 50 })[0];
  // Each model gets the frame as its input takes it (uint8 bytes or float32 / 255): not part of the timing.
  const feeds = new Map([sa, sb].map((s) => [s, feedsFor(ort, s, frame.rgb)]));
  const timeRuns = async (s, n) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await s.run(feeds.get(s));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await timeRuns(sa, warmup);
  await timeRuns(sb, warmup);
  const out = [];
  let totalA = 0;
  let totalB = 0;
  for (let r = 0; r < rounds; r++) {
    let ta;
    let tb;
    if (r % 2 === 0) {
      ta = await timeRuns(sa, runs);
      tb = await timeRuns(sb, runs);
    } else {
      tb = await timeRuns(sb, runs);
      ta = await timeRuns(sa, runs);
    }
    totalA += ta;
    totalB += tb;
    const row = { a_per_s: runs / ta, b_per_s: runs / tb, ratio: ta / tb };
    out.push(row);
    log(`round ${r + 1}/${rounds}: a ${row.a_per_s.toFixed(1)}/s, b ${row.b_per_s.toFixed(1)}/s, b/a speed ${row.ratio.toFixed(3)}`);
  }
  await sa.release?.();
  await sb.release?.();
  const ratios = out.map((r) => r.ratio).sort((x, y) => x - y);
  return { rounds: out, ratio_median: ratios[Math.floor(ratios.length / 2)], ratio_total: totalA / totalB, threads, runs };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: o } = parseArgs({
    options: {
      a: { type: 'string', default: join(repoRoot, 'models', 'nanodet.onnx') },
      b: { type: 'string', default: join(repoRoot, 'models', 'nanodet-int8.onnx') },
      threads: { type: 'string', default: '2' },
      runs: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '6' },
    },
  });
  const ort = requireOrt();
  console.log(`speed: a = ${o.a}\nspeed: b = ${o.b}\nspeed: onnxruntime-node ${ort.env?.versions?.common ?? '?'}, ${o.threads} threads, ${o.runs} runs x ${o.rounds} alternating rounds`);
  const res = await alternatingBench(ort, o.a, o.b, { threads: Number(o.threads), runs: Number(o.runs), rounds: Number(o.rounds), log: (m) => console.log(`speed: ${m}`) });
  console.log(`speed: b/a median ratio ${res.ratio_median.toFixed(3)}, over all rounds ${res.ratio_total.toFixed(3)} (> 1: b is faster)`);
}
