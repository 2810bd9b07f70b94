/**
 * `npm run bench`: every benchmark in one run, so ratios compare figures taken on the same (noisy) machine.
 * Prints a table on stderr and one JSON object on stdout.
 *
 *   npm run bench                      all sections, RSS after 120 s
 *   npm run bench -- --quick           shorter phases, RSS after 30 s, no fleet
 *   npm run bench -- --only detector,pipeline
 */
import { parseArgs } from 'node:util';
import { benchAnalytics } from './analytics.js';
import { benchDetector } from './detector.js';
import { benchOutbox } from './outbox.js';
import { benchPipeline, benchRss } from './pipeline.js';
import { benchPlates } from './plates.js';
import { benchPreview } from './preview.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
const quick = values.quick ?? false;
const only = values.only?.split(',');
const want = (name: string) => !only || only.includes(name);

const results: Record<string, Record<string, number>> = {};
const run = async (name: string, fn: () => Promise<Record<string, number>>) => {
  if (!want(name)) return;
  process.stderr.write(`bench: ${name}…\n`);
  const t0 = performance.now();
  results[name] = { ...(await fn()), section_s: Math.round((performance.now() - t0) / 100) / 10 };
};

await run('detector', () => benchDetector({ seconds: quick ? 3 : 8 }));
await run('pipeline', () => benchPipeline(quick ? 2 : 3));
await run('analytics', benchAnalytics);
await run('outbox', benchOutbox);
await run('plates', () => benchPlates({ rounds: quick ? 1 : 3 }));
await run('preview', async () => ({ ...(await benchPreview({ seconds: quick ? 4 : 15 })) }));
if (!quick) {
  const { benchFleet } = await import('./fleet.js').catch(() => ({ benchFleet: undefined }));
  if (benchFleet) await run('fleet', () => benchFleet());
}
await run('rss', () => benchRss(quick ? 30 : 120));

// Ratios the issues set goals for, computed from figures of this run.
const d = results.detector;
const p = results.pipeline;
if (d && p) {
  results.goals = {
    // Both from the pipeline section's alternating rounds (best of each), not from two sections far apart.
    pipeline_vs_raw_model: p.pipeline_vs_raw_model!,
    prepost_share_pct: d.prepost_share_pct!,
  };
}

const rows = Object.entries(results).flatMap(([section, figures]) => Object.entries(figures).map(([k, v]) => [section, k, String(v)]));
const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stderr.write(`\n${rows.map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]}`).join('\n')}\n\n`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.exit(0);
