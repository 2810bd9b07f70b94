/**
 * Pipeline benchmark: frames/s of the production frame loop (CameraPipeline: detector → tracker → analytics, as
 * `run` and `analyze` use it) over the demo clip with the fps limit off, against the model's own ceiling measured
 * in the same process, in alternating rounds. (The agent's RSS: bench/rss.ts.)
 *
 * Three placements, each in a fresh node process: `shared` (ffmpeg, node and ONNX Runtime's threads share every
 * core, as on a box), `pinned` (`taskset -c 1` for ffmpeg, node and ONNX Runtime with one thread on core 0:
 * decoding costs the model nothing) and `dedicated` (ffmpeg and node on core 1, the detector's thread alone on
 * core 0 through detector.cpus: neither decoding nor the main thread costs the model anything, so what is left of
 * the gap is the hand-off itself). The gap to the raw model is attributed, the three factors multiplying to
 * pipeline_vs_raw_model:
 *   contention  raw model ms / model ms inside the pipeline (cores shared with decoding and the main thread)
 *   hand-off    busy_share_pct: session.run time / time a frame was waiting (pre/post not overlapped, messages)
 *   starvation  time a frame was waiting / wall time (the decoder had no frame ready; mostly ffmpeg's start)
 *
 * Each round plays the demo clip `passes` times back to back (5 by default, 1 000 frames): a camera runs for days, so
 * the figure is the steady state; ffmpeg's start is reported apart (pipeline_first_frame_ms).
 *
 * Each round's node inherits this process's flags: under `npm run bench` the agent's V8 flags (bench/run.ts re-runs
 * itself with AGENT_NODE_FLAGS); standalone, add them to compare like with like:
 *   node --lite-mode --no-expose-wasm --import tsx bench/pipeline.ts [--rounds 3] [--passes 5] [--model models/nanodet.onnx] [--placements shared,pinned,dedicated]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { loadConfig } from '../config/loader.js';
import type { Config } from '../config/schema/index.js';
import { ANALYZE_FRAMES_IN_FLIGHT } from '../agent/analyze/analyze.js';
import { CameraAnalytics } from '../inference/analytics/index.js';
import { clipSource } from '../ingest/clip.js';
import { Detector } from '../inference/detector/index.js';
import { CameraPipeline, type FrameProducer } from '../inference/pipeline.js';
import { benchDetector } from './detector.js';

const r2 = (v: number) => Math.round(v * 100) / 100;

export type Placement = 'shared' | 'pinned' | 'dedicated';

export interface PipelineBenchOptions {
  rounds?: number;
  /** Model file; default the bundled one. */
  model?: string;
  placements?: Placement[];
  /** Passes over the demo clip per round (-stream_loop): the steady state, ffmpeg's start amortised. Default 5. */
  passes?: number;
}

/** One round in this process: the raw model for a few seconds, then the pipeline over the whole clip. */
interface Round {
  raw_per_s: number;
  raw_ms: number;
  fps: number;
  frames: number;
  wall_s: number;
  model_ms_mean: number;
  busy_share_pct: number;
  waiting_share_pct: number;
  /** From the start of the loop until the first frame came out of ffmpeg (process start, first decode). */
  first_frame_ms: number;
  pre_ms_mean: number;
  post_ms_mean: number;
  main_ms_mean: number;
  events: number;
}

/** The demo config; `pinned` and `dedicated` run ONNX Runtime on one thread, `dedicated` pins it to core 0. */
function demoConfig(model: string | undefined, placement: Placement): Config {
  const { config } = loadConfig(join(packageRoot(), 'config/examples/demo.yaml'), {});
  if (model) config.detector.model_path = model;
  if (placement !== 'shared') config.detector.threads = 1;
  if (placement === 'dedicated') config.detector.cpus = [0];
  return config;
}

/** CameraPipeline over every frame of the clip, as analyzeClip runs it, with the detector's figures. */
async function pipelineOverClip(config: Config, ffmpegPath: string | undefined, passes: number): Promise<Omit<Round, 'raw_per_s' | 'raw_ms'>> {
  const camera = config.cameras[0]!;
  const log = silentLogger();
  const detector = new Detector(config.detector, log);
  let events = 0;
  const analytics = new CameraAnalytics(camera, config.analytics, config.device, () => (events += 1), log, { evidence: false });
  let firstAt = 0;
  const reader = clipSource(camera.url, { ...detector.inputSize, resize: detector.resize }, { source: camera.frame, ffmpegPath, passes });
  const source: FrameProducer = {
    async *frames() {
      for await (const f of reader.frames()) {
        firstAt ||= performance.now();
        yield f;
      }
    },
    release: (f) => reader.release(f),
  };
  const pipeline = new CameraPipeline({ camera, source, detector, analytics, clockSynced: () => true, log, frames_in_flight: ANALYZE_FRAMES_IN_FLIGHT, on_detect_error: 'fail' });
  await detector.start();
  try {
    const t0 = performance.now();
    await pipeline.run();
    const wall_s = (performance.now() - t0) / 1000;
    await analytics.flush();
    const s = detector.stats();
    const { frames, main_ms_mean } = pipeline.stats();
    return {
      fps: frames / wall_s,
      frames,
      wall_s,
      model_ms_mean: (1000 * s.model_s_total) / Math.max(1, s.runs),
      busy_share_pct: s.busy_share_pct,
      waiting_share_pct: (100 * s.frames_waiting_s_total) / wall_s,
      first_frame_ms: firstAt - t0,
      pre_ms_mean: s.pre_ms_mean,
      post_ms_mean: s.post_ms_mean,
      main_ms_mean,
      events,
    };
  } finally {
    await detector.stop();
  }
}

/** The raw model for 2 s before and 2 s after the pipeline over the whole clip: the same load for both. */
async function oneRound(model: string | undefined, placement: Placement, ffmpegPath: string | undefined, passes: number): Promise<Round> {
  const config = demoConfig(model, placement);
  const rawFor = () => benchDetector({ seconds: 2, rawOnly: true, config: { model_path: config.detector.model_path, threads: config.detector.threads } });
  const before = await rawFor();
  const pipe = await pipelineOverClip(config, ffmpegPath, passes);
  const after = await rawFor();
  const raw_per_s = (before.raw_inferences_per_s! + after.raw_inferences_per_s!) / 2;
  return { raw_per_s, raw_ms: 1000 / raw_per_s, ...pipe };
}

/** Runs one round in a fresh node (pinned: node on core 0 with one ONNX thread; dedicated: node on core 1 but its
 * detector thread on core 0; ffmpeg on core 1 in both). */
async function childRound(placement: Placement, model: string | undefined, scratch: string, passes: number): Promise<Round> {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', placement, '--passes', String(passes)];
  if (model) args.push('--model', model);
  let cmd = process.execPath;
  if (placement !== 'shared') {
    args.unshift('-c', placement === 'pinned' ? '0' : '1', process.execPath);
    cmd = 'taskset';
    args.push('--ffmpeg', join(scratch, 'ffmpeg-core1'));
  }
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`pipeline bench child (${placement}) exited with ${code}`);
  return JSON.parse(out) as Round;
}

/**
 * Alternating rounds per placement, each in a fresh process. Each round's ratio compares the pipeline with the raw
 * model measured around it, so the two saw the same load; the round with the median ratio is reported, with its
 * three factors (their product is its ratio). `shared` keeps the historical names (pipeline_fps,
 * pipeline_vs_raw_model…); the others' figures are prefixed with the placement (`pinned_`, `dedicated_`).
 */
export async function benchPipeline(opts: PipelineBenchOptions = {}): Promise<Record<string, number>> {
  const rounds = opts.rounds ?? 3;
  const placements = opts.placements ?? ['shared', 'pinned', 'dedicated'];
  const passes = opts.passes ?? 5;
  const scratch = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
  const wrapper = join(scratch, 'ffmpeg-core1');
  writeFileSync(wrapper, '#!/bin/sh\nexec taskset -c 1 ffmpeg "$@"\n');
  chmodSync(wrapper, 0o755);
  const all = new Map<Placement, Round[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const placement of placements) all.set(placement, [...(all.get(placement) ?? []), await childRound(placement, opts.model, scratch, passes)]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const out: Record<string, number> = { rounds, pipeline_clip_passes: passes, pipeline_frames_in_flight: ANALYZE_FRAMES_IN_FLIGHT, pinned_threads: 1 };
  for (const [placement, list] of all) {
    const k = (name: string) => (placement === 'shared' ? name : `${placement}_${name}`);
    const ratio = (x: Round) => x.fps / x.raw_per_s;
    const pipe = [...list].sort((a, b) => ratio(a) - ratio(b))[Math.floor((list.length - 1) / 2)]!;
    Object.assign(out, {
      [k('pipeline_frames')]: pipe.frames,
      [k('pipeline_fps')]: r2(pipe.fps),
      [k('pipeline_events')]: pipe.events,
      [k('pipeline_main_ms_mean')]: pipe.main_ms_mean,
      [k('pipeline_pre_ms_mean')]: pipe.pre_ms_mean,
      [k('pipeline_post_ms_mean')]: pipe.post_ms_mean,
      [k('pipeline_inference_ms_mean')]: r2(pipe.model_ms_mean),
      [k('raw_model_inferences_per_s')]: r2(pipe.raw_per_s),
      [k('raw_model_ms_mean')]: r2(pipe.raw_ms),
      [k('pipeline_vs_raw_model')]: r2(ratio(pipe)),
      [k('pipeline_vs_raw_model_rounds_min')]: r2(Math.min(...list.map(ratio))),
      [k('pipeline_vs_raw_model_rounds_max')]: r2(Math.max(...list.map(ratio))),
      // The three factors of the ratio: contention × busy share × waiting share.
      [k('contention_factor')]: r2(pipe.raw_ms / pipe.model_ms_mean),
      [k('busy_share_pct')]: r2(pipe.busy_share_pct),
      [k('waiting_share_pct')]: r2(pipe.waiting_share_pct),
      // Starvation is mostly ffmpeg's start: the same ratio from the first decoded frame on.
      [k('pipeline_first_frame_ms')]: Math.round(pipe.first_frame_ms),
      [k('pipeline_vs_raw_model_after_first_frame')]: r2(pipe.frames / (pipe.wall_s - pipe.first_frame_ms / 1000) / pipe.raw_per_s),
    });
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      model: { type: 'string' },
      ffmpeg: { type: 'string' },
      rounds: { type: 'string' },
      placements: { type: 'string' },
      passes: { type: 'string' },
    },
  });
  if (values.child) {
    // One round of a placement, for the parent above.
    const round = await oneRound(values.model, values.child as Placement, values.ffmpeg, Number(values.passes ?? 1));
    process.stdout.write(JSON.stringify(round));
  } else {
    const out = await benchPipeline({
      rounds: values.rounds ? Number(values.rounds) : undefined,
      model: values.model,
      placements: values.placements?.split(',') as Placement[] | undefined,
      passes: values.passes ? Number(values.passes) : undefined,
    });
    console.log(JSON.stringify(out, null, 2));
  }
  process.exit(0);
}
