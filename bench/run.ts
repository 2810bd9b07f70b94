/**
 * `npm run bench`: every benchmark in one run, so ratios compare figures taken on the same (noisy) machine.
 * Prints a table on stderr and one JSON object on stdout.
 *
 *   npm run bench                      all sections; the agent's RSS over 120 s (1 camera), 60 s (2, 4 cameras)
 *   npm run bench -- --quick           shorter phases, smaller packages, RSS over 30 s (20 s for 2, 4 cameras), no fleet
 *   npm run bench -- --only detector,pipeline
 *   npm run bench -- --quick --check     CI: exit 1 when a section failed or printed a figure that is not a number
 *   npm run bench -- --model models/nanodet.onnx    every model section (rss and soak too) with that model
 *   npm run bench -- --soak-s 1800     adds `soak` (run last, also with --only): the agent, 1 camera, 30 min, flatness
 *
 * Without --model the sections use the default model (core/paths.ts DEFAULT_MODEL); memory, cameras and rss also
 * run with the other bundled model (fp32 or int8, whichever is not the default) when it exists, in sections
 * suffixed with its kind (e.g. memory_fp32, cameras_fp32, rss_fp32).
 */
import '../core/wasm-free.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL, packageRoot } from '../core/paths.js';
import { AGENT_NODE_FLAGS } from '../core/runtime-env.js';
import { benchAnalytics } from './analytics.js';
import { benchCameras } from './cameras.js';
import { benchDetector } from './detector.js';
import { benchEvidence } from './evidence.js';
import { benchEvidenceFetch } from './evidence-fetch.js';
import { benchMemory } from './memory.js';
import { benchOutbox } from './outbox.js';
import { benchPipeline } from './pipeline.js';
import { benchPlates } from './plates.js';
import { benchPreview } from './preview.js';
import { benchRss, benchRssCameras, benchSoak } from './rss.js';

// Every figure as a box sees it: this process, and the children that inherit its flags (pipeline), run with the
// agent's V8 flags (core/runtime-env.ts). The agent itself (rss, soak) and the memory parts are started with them.
if (!AGENT_NODE_FLAGS.every((f) => process.execArgv.includes(f))) {
  const again = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(again.status ?? 1);
}

const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, only: { type: 'string' }, model: { type: 'string' }, check: { type: 'boolean' }, 'soak-s': { type: 'string' } },
});
const quick = values.quick ?? false;
const model = values.model;
const soakS = Number(values['soak-s'] ?? 0);
if (!Number.isFinite(soakS) || soakS < 0) throw new Error(`--soak-s: a number of seconds, got ${values['soak-s']}`);
// The bundled model that is not the default one, for comparison (the default may be fp32 or int8).
const kind = (file: string) => (basename(file).includes('int8') ? 'int8' : 'fp32');
const other = join(packageRoot(), 'models', kind(DEFAULT_MODEL()) === 'int8' ? 'nanodet.onnx' : 'nanodet-int8.onnx');
const otherKind = kind(other);
const alsoOther = !model && existsSync(other);
const only = values.only?.split(',');
// --soak-s asks for the soak section by itself: it runs even when --only leaves it out.
const want = (name: string) => !only || only.includes(name) || (name === 'soak' && soakS > 0);

const results: Record<string, Record<string, number>> = {};
const run = async (name: string, fn: () => Promise<Record<string, number>>) => {
  if (!want(name)) return;
  process.stderr.write(`bench: ${name}…\n`);
  const t0 = performance.now();
  const section_s = () => Math.round((performance.now() - t0) / 100) / 10;
  try {
    results[name] = { ...(await fn()), section_s: section_s() };
  } catch (err) {
    // One broken section does not cost the figures of the others (they share the run's conditions).
    process.stderr.write(`bench: ${name} failed: ${(err as Error).stack ?? String(err)}\n`);
    results[name] = { failed: 1, section_s: section_s() };
  }
};

await run('detector', () => benchDetector({ seconds: quick ? 3 : 8, config: model ? { model_path: model } : {} }));
await run('pipeline', () => benchPipeline({ rounds: quick ? 2 : 3, model }));
await run('analytics', benchAnalytics);
await run('outbox', () => benchOutbox({ loopSeconds: quick ? 5 : 15 }));
await run('memory', () => benchMemory({ model, quick }));
if (alsoOther) await run(`memory_${otherKind}`, () => benchMemory({ model: other, quick }));
await run('cameras', () => benchCameras({ model, seconds: quick ? 6 : 10, max: quick ? 8 : 16 }));
if (alsoOther) await run(`cameras_${otherKind}`, () => benchCameras({ model: other, seconds: quick ? 6 : 10, max: quick ? 8 : 16 }));
await run('plates', () => benchPlates({ rounds: quick ? 1 : 3 }));
await run('preview', async () => ({ ...(await benchPreview({ seconds: quick ? 4 : 15 })) }));
await run('evidence', () => benchEvidence({ seconds: quick ? 5 : 20, rounds: quick ? 1 : 3 }));
await run('evidence_fetch', () => benchEvidenceFetch({ quick }));
if (!quick) {
  const { benchFleet } = await import('./fleet.js').catch(() => ({ benchFleet: undefined }));
  if (benchFleet) await run('fleet', () => benchFleet());
  const { benchCluster } = await import('./cluster.js');
  await run('cluster', () => benchCluster());
}
// The agent as deployed (external mosquitto, runtime env): 1 camera, then where 2 and 4 cameras stand.
await run('rss', () => benchRss({ seconds: quick ? 30 : 120, model }));
await run('rss_cameras', () => benchRssCameras([2, 4], quick ? 20 : 60, model));
if (alsoOther) await run(`rss_${otherKind}`, () => benchRss({ seconds: quick ? 30 : 120, model: other }));
// Last, being long: flatness of one camera over --soak-s seconds (goal: within ±5 %).
if (soakS > 0) await run('soak', () => benchSoak(soakS, model));

// Ratios the issues set goals for, computed from figures of this run.
const d = results.detector;
const p = results.pipeline;
if (d && p) {
  results.goals = {
    // Both from the pipeline section's alternating rounds (best of each), not from two sections far apart.
    pipeline_vs_raw_model: p.pipeline_vs_raw_model!,
    prepost_share_pct: d.prepost_share_pct!,
    // The same share on the clip's crowded frames (more candidates to decode than the detector section's photo).
    prepost_share_pct_clip: Math.round((10_000 * (p.pipeline_pre_ms_mean! + p.pipeline_post_ms_mean!)) / p.pipeline_inference_ms_mean!) / 100,
  };
}
// Goals of issue 17, from this run's sections (only those that ran).
const goals17: Record<string, number | undefined> = {
  pipeline_vs_raw_model_pinned: results.pipeline?.pinned_pipeline_vs_raw_model,
  pipeline_vs_raw_model_dedicated: results.pipeline?.dedicated_pipeline_vs_raw_model,
  busy_share_pct: results.pipeline?.busy_share_pct,
  detect_busy_share_pct: results.detector?.detect_busy_share_pct,
  event_loop_delay_p99_ms: results.outbox?.event_loop_delay_p99_ms,
  event_loop_delay_p99_ms_inline: results.outbox?.event_loop_delay_p99_ms_inline,
  rss_mb_end: results.rss?.rss_mb_end,
  rss_mb_median_last_quarter: results.rss?.rss_mb_median_last_quarter,
  rss_mb_end_cameras_2: results.rss_cameras?.cameras_2_rss_mb_end,
  rss_mb_end_cameras_4: results.rss_cameras?.cameras_4_rss_mb_end,
  [`rss_mb_end_${otherKind}`]: results[`rss_${otherKind}`]?.rss_mb_end,
  rss_flat_pct: results.soak?.rss_flat_pct,
  rss_max_dev_pct: results.soak?.rss_max_dev_pct,
  max_cameras: results.cameras?.max_cameras,
  [`max_cameras_${otherKind}`]: results[`cameras_${otherKind}`]?.max_cameras,
};
const present = Object.entries(goals17).filter((e): e is [string, number] => e[1] !== undefined);
if (present.length) results.goals = { ...results.goals, ...Object.fromEntries(present) };

const rows = Object.entries(results).flatMap(([section, figures]) => Object.entries(figures).map(([k, v]) => [section, k, String(v)]));
const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stderr.write(`\n${rows.map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]}`).join('\n')}\n\n`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
// --check: no speed is asserted (these machines are noisy), but every section must have run and said something.
const broken = Object.entries(results).flatMap(([section, figures]) => [
  ...(figures.failed ? [`${section}: failed`] : []),
  ...Object.entries(figures)
    .filter(([, v]) => typeof v !== 'number' || !Number.isFinite(v))
    .map(([k, v]) => `${section}.${k} = ${String(v)}`),
]);
if (values.check && broken.length > 0) process.stderr.write(`bench --check: ${broken.join('; ')}\n`);
process.exit(values.check && broken.length > 0 ? 1 : 0);
