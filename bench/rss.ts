/**
 * The agent's resident memory as a box runs it: the real agent (dist/cli/main.js run, so build first) with the
 * deployed process environment and V8 flags (core/runtime-env.ts AGENT_RUNTIME_ENV, AGENT_NODE_FLAGS) against a real external mosquitto on a free
 * loopback port (MQTT 5, no embedded broker), with N file cameras looping the demo clip at the demo's
 * detection_fps, each with the demo's lines and zones (ids cam1..camN).
 *
 * VmRSS, RssAnon and RssFile of the agent process are sampled every second (soak: every 5 s); the ffmpeg children's
 * RSS (the camera decoders, and the evidence clip cutters while they run) is summed separately
 * (ffmpeg_rss_mb_total), never folded into the agent's figures. A soak run adds flatness:
 * the median of the first and of the last window after the warm-up (5 min each, shorter when the run is short:
 * rss_flat_window_s says how long), rss_flat_pct = 100 × (last − first) / first, and the largest deviation from the
 * post-warm-up median.
 *
 *   npx tsx bench/rss.ts [--seconds 30] [--cameras 1,2,4] [--model models/nanodet.onnx] [--soak-s 1800]
 *   (--cameras defaults to 1, or to none when --soak-s is given; --trace PREFIX writes each run's samples to
 *   PREFIX.cameras_N.csv / PREFIX.soak.csv)
 *
 * Prints one JSON object (a section per camera count, and `soak`); bench/run.ts calls benchRss / benchRssCameras.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { packageRoot } from '../core/paths.js';
import { AGENT_NODE_FLAGS, AGENT_RUNTIME_ENV } from '../core/runtime-env.js';
import { Mosquitto } from '../testkit/mosquitto.js';
import { getJson } from '../testkit/http.js';
import { freePort } from '../testkit/ports.js';
import { listChildren, spawnGuarded, terminate } from '../testkit/processes.js';
import { makeTempDir } from '../testkit/tmp.js';
import { procMemoryMb } from '../testkit/proc-stats.js';

const r1 = (v: number) => Math.round(v * 10) / 10;
const r2 = (v: number) => Math.round(v * 100) / 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Soak flatness windows: warm-up excluded first, then the first and last window compared. */
const SOAK_WARMUP_S = 60;
const SOAK_WINDOW_S = 300;

export interface RssBenchOptions {
  /** How long the agent runs, seconds. */
  seconds: number;
  /** File cameras looping the demo clip. Default 1. */
  cameras?: number;
  /** Model file; default the agent's default model (core/paths.ts DEFAULT_MODEL). */
  model?: string;
  /** Seconds between samples. Default 1. */
  sample_s?: number;
  /** Add the flatness figures of a long run. */
  soak?: boolean;
  /** Write every sample to this file (CSV), to look at the curve. */
  trace?: string;
}

interface Sample {
  t_s: number;
  rss_mb: number;
  anon_mb: number;
  file_mb: number;
  ffmpeg_mb: number;
  ffmpeg_n: number;
}

/** The demo config with N cameras, an external broker and paths under `dir`. */
function agentConfig(dir: string, cameras: number, brokerUrl: string, statusPort: number, model: string | undefined): string {
  const root = packageRoot();
  const demo = parse(readFileSync(join(root, 'config/examples/demo.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  const [cam] = demo.cameras as unknown as Record<string, unknown>[];
  demo.device!.data_dir = join(dir, 'data');
  (demo as Record<string, unknown>).cameras = Array.from({ length: cameras }, (_, i) => ({
    ...cam,
    id: `cam${i + 1}`,
    url: join(root, 'tests/fixtures/clips/vtest-20s.mp4'),
  }));
  // As deployed: an external broker speaking MQTT 5 (the embedded aedes broker is for the demo only).
  Object.assign(demo.mqtt!, { url: brokerUrl, protocol: 5, embedded_broker: false });
  demo.status!.port = statusPort;
  if (model) demo.detector!.model_path = model;
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, stringify(demo));
  return file;
}

/** Camera and uplink figures from the agent's /api/status at the end of the run (NaN when unavailable). */
async function statusFigures(port: number): Promise<Record<string, number>> {
  try {
    const doc = (await getJson(`http://127.0.0.1:${port}/api/status`, 5_000)).body as {
      health: { cameras: { camera_fps: number; process_fps: number }[]; detector: { detection_fps: number } | null; uplink: { connected: boolean } | null };
    };
    const cams = doc.health.cameras;
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    return {
      camera_fps_mean: r2(mean(cams.map((c) => c.camera_fps))),
      process_fps_mean: r2(mean(cams.map((c) => c.process_fps))),
      detection_fps: r2(doc.health.detector?.detection_fps ?? NaN),
      uplink_connected: doc.health.uplink?.connected ? 1 : 0,
    };
  } catch {
    return { camera_fps_mean: NaN, process_fps_mean: NaN, detection_fps: NaN, uplink_connected: NaN };
  }
}

/** Flatness of a long run: first vs last window after the warm-up, largest deviation from the median. */
function soakFigures(samples: Sample[], seconds: number): Record<string, number> {
  const warmup_s = Math.min(SOAK_WARMUP_S, seconds / 10);
  const post = samples.filter((s) => s.t_s >= warmup_s);
  const window_s = Math.min(SOAK_WINDOW_S, (seconds - warmup_s) / 4);
  const first = post.filter((s) => s.t_s < warmup_s + window_s);
  const last = post.filter((s) => s.t_s > seconds - window_s);
  const flat = (key: 'rss_mb' | 'anon_mb') => {
    const a = median(first.map((s) => s[key]));
    const b = median(last.map((s) => s[key]));
    return { a, b, pct: (100 * (b - a)) / a };
  };
  const rss = flat('rss_mb');
  const mid = median(post.map((s) => s.rss_mb));
  // Least-squares slope over the post-warm-up samples: a leak shows as MB per hour.
  const mt = post.reduce((s, x) => s + x.t_s, 0) / post.length;
  const mr = post.reduce((s, x) => s + x.rss_mb, 0) / post.length;
  const slope = post.reduce((s, x) => s + (x.t_s - mt) * (x.rss_mb - mr), 0) / post.reduce((s, x) => s + (x.t_s - mt) ** 2, 0);
  return {
    rss_warmup_s: r1(warmup_s),
    rss_flat_window_s: r1(window_s),
    rss_mb_first_5min_median: r2(rss.a),
    rss_mb_last_5min_median: r2(rss.b),
    rss_flat_pct: r2(rss.pct),
    rss_anon_flat_pct: r2(flat('anon_mb').pct),
    rss_max_dev_pct: r2((100 * Math.max(...post.map((s) => Math.abs(s.rss_mb - mid)))) / mid),
    rss_mb_slope_per_h: r2(slope * 3600),
  };
}

/** Runs the real agent with N cameras for `seconds` against a fresh mosquitto and samples its memory. */
export async function benchRss(opts: RssBenchOptions): Promise<Record<string, number>> {
  const { seconds, cameras = 1, sample_s = 1 } = opts;
  const root = packageRoot();
  const dir = makeTempDir('bench-rss');
  const broker = await Mosquitto.start();
  const statusPort = await freePort();
  const config = agentConfig(dir, cameras, broker.url, statusPort, opts.model);
  // The deployed environment, not the benchmark's own (tsx may have put a loader into NODE_OPTIONS).
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  let agent: ChildProcess | undefined;
  try {
    agent = spawnGuarded(process.execPath, [...AGENT_NODE_FLAGS, join(root, 'dist/cli/main.js'), 'run', '--config', config], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...env, ...AGENT_RUNTIME_ENV },
    });
    const pid = agent.pid!;
    const samples: Sample[] = [];
    const t0 = performance.now();
    // Sample on a fixed grid (not sleep-after-read), so a slow /proc scan does not stretch the run.
    for (let k = 1; k * sample_s <= seconds; k++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + k * sample_s * 1000 - performance.now())));
      if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`agent exited early (${agent.exitCode ?? agent.signalCode})`);
      const ffmpeg = listChildren(pid, { recursive: true }).filter((p) => (p.argv[0] ?? '').split('/').pop() === 'ffmpeg');
      samples.push({ t_s: k * sample_s, ...procMemoryMb(pid), ffmpeg_mb: ffmpeg.reduce((s, p) => s + procMemoryMb(p.pid).rss_mb, 0), ffmpeg_n: ffmpeg.length });
    }
    if (opts.trace) {
      const rows = samples.map((s) => [s.t_s, r2(s.rss_mb), r2(s.anon_mb), r2(s.file_mb), r2(s.ffmpeg_mb), s.ffmpeg_n].join(','));
      writeFileSync(opts.trace, `t_s,rss_mb,anon_mb,file_mb,ffmpeg_mb,ffmpeg_processes\n${rows.join('\n')}\n`);
    }
    const status = await statusFigures(statusPort);
    const tail = samples.slice(-Math.max(1, Math.floor(samples.length / 4)));
    const tailMedian = (key: keyof Sample) => r2(median(tail.map((s) => s[key])));
    return {
      cameras,
      rss_seconds: seconds,
      rss_sample_s: sample_s,
      rss_mb_end: r2(samples.at(-1)!.rss_mb),
      rss_mb_median_last_quarter: tailMedian('rss_mb'),
      // Anonymous (heap, native allocations: what the agent really costs) and file-backed (code, mapped model:
      // shared, evictable) parts, medians of the last quarter.
      rss_anon_mb: tailMedian('anon_mb'),
      rss_file_mb: tailMedian('file_mb'),
      rss_mb_max: r2(Math.max(...samples.map((s) => s.rss_mb))),
      // Growth over the last quarter of the run: near 0 when memory is flat.
      rss_mb_growth_last_quarter: r2(tail.at(-1)!.rss_mb - tail[0]!.rss_mb),
      // The ffmpeg decoders are processes of their own: their RSS beside the agent's, not in it. Medians, so the
      // short-lived ffmpeg / ffprobe that cut evidence clips count only when they run most of the time.
      ffmpeg_rss_mb_total: tailMedian('ffmpeg_mb'),
      ffmpeg_processes: tailMedian('ffmpeg_n'),
      ...status,
      ...(opts.soak ? soakFigures(samples, seconds) : {}),
      wall_s: r1((performance.now() - t0) / 1000),
    };
  } finally {
    if (agent) await terminate(agent, 'SIGTERM', 15_000);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** benchRss for each camera count, figures prefixed `cameras_N_`. */
export async function benchRssCameras(counts: number[], seconds: number, model?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of counts) {
    const { cameras: _n, ...figures } = await benchRss({ seconds, cameras: n, model });
    for (const [k, v] of Object.entries(figures)) out[`cameras_${n}_${k}`] = v;
  }
  return out;
}

/** A long run of one camera, sampled every 5 s, with the flatness figures. */
export function benchSoak(seconds: number, model?: string, trace?: string): Promise<Record<string, number>> {
  return benchRss({ seconds, cameras: 1, model, sample_s: 5, soak: true, trace });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, cameras: { type: 'string' }, model: { type: 'string' }, 'soak-s': { type: 'string' }, trace: { type: 'string' } } });
  const seconds = Number(values.seconds ?? 30);
  const soakS = Number(values['soak-s'] ?? 0);
  const out: Record<string, Record<string, number>> = {};
  // With --soak-s alone, only the soak runs.
  const counts = (values.cameras ?? (soakS > 0 ? '' : '1')).split(',').filter(Boolean).map(Number);
  for (const n of counts) {
    process.stderr.write(`bench rss: ${n} camera(s), ${seconds} s…\n`);
    out[`cameras_${n}`] = await benchRss({ seconds, cameras: n, model: values.model, trace: values.trace && `${values.trace}.cameras_${n}.csv` });
  }
  if (soakS > 0) {
    process.stderr.write(`bench rss: soak, ${soakS} s…\n`);
    out.soak = await benchSoak(soakS, values.model, values.trace && `${values.trace}.soak.csv`);
  }
  console.log(JSON.stringify(out, null, 2));
  process.exit(0);
}
