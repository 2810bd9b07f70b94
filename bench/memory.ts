/**
 * Memory per part of the agent: each part loaded and used in a fresh node process, RssAnon (heap, native
 * allocations: what the part really costs) and RssFile (mapped code and model files: shared, evictable) read from
 * /proc/self/status before and after. The parts are the compiled modules under dist/ when present (as the agent
 * runs them: worker threads without a TypeScript loader), else the sources. Parts: node itself, an ONNX Runtime session of the detector model (with
 * its memory options varied, each variant timed too), a worker thread's isolate, the detector (worker + session),
 * sharp, an ffmpeg camera pipe (node's side, and ffmpeg's own process), the SQLite outbox (with its sync worker),
 * the plate reader's models. Each part runs in the environment the agent is deployed with (core/runtime-env.ts:
 * malloc arenas and mmap threshold, a 1 MB young generation); the detector, the camera pipe and the outbox also in
 * plain node (`*_plain_node_*`), so what that environment saves stays visible (docs/performance.md).
 *
 *   npx tsx bench/memory.ts [--model models/nanodet-int8.onnx]
 *
 * Prints one JSON object; `benchMemory()` returns the same figures for bench/run.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { silentLogger } from '../core/log.js';
import { DEFAULT_MODEL, packageRoot } from '../core/paths.js';
import { AGENT_NODE_FLAGS, AGENT_RUNTIME_ENV } from '../core/runtime-env.js';
import type { SessionMemoryOptions } from '../inference/detector/session.js';
import { procMemoryMb } from '../testkit/proc-stats.js';

const r1 = (v: number) => Math.round(v * 10) / 10;
const r2 = (v: number) => Math.round(v * 100) / 100;

interface Rss {
  anon_mb: number;
  file_mb: number;
}

/** ONNX Runtime memory options tried on the detector's session. */
const SESSION_VARIANTS: Record<string, SessionMemoryOptions> = {
  default: {},
  arena_off: { cpu_mem_arena: false },
  mem_pattern_on: { mem_pattern: true },
  prepacking_off: { prepacking: false },
  all_off: { cpu_mem_arena: false, mem_pattern: false, prepacking: false },
};

/** A module of ours: compiled under dist/ when built, else the source (`rel` without extension, from the root). */
async function load<T>(rel: string): Promise<T> {
  const built = join(packageRoot(), 'dist', `${rel}.js`);
  return (await import(existsSync(built) ? pathToFileURL(built).href : pathToFileURL(join(packageRoot(), `${rel}.ts`)).href)) as T;
}

const fromDist = () => (existsSync(join(packageRoot(), 'dist', 'inference', 'detector', 'worker.js')) ? 1 : 0);

const settle = async (): Promise<void> => {
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 300));
};

/** Runs one part in this process; returns its figures (RSS after minus before, and extras). */
async function part(name: string, model: string, variant: string): Promise<Record<string, number>> {
  await settle();
  let before = procMemoryMb('self');
  const extra: Record<string, number> = {};
  const hold: unknown[] = [];
  const root = packageRoot();
  // Each part imports its modules here, so a part's process loads only what that part needs.
  switch (name) {
    case 'ort_session': {
      // The session as the detector feeds it (its decoder's inputs too: the int8 model's kept classes), on a blank frame.
      const { Pipeline } = await load<typeof import('../inference/detector/pipeline.js')>('inference/detector/pipeline');
      const { pipelineOptions } = await load<typeof import('../inference/detector/detector.js')>('inference/detector/detector');
      const { DetectorSchema } = await load<typeof import('../config/schema/detector.js')>('config/schema/detector');
      const options = { ...pipelineOptions(DetectorSchema.parse({ model_path: model, threads: 2 })), session: SESSION_VARIANTS[variant] };
      // The config schema (zod) and the pipeline's modules are not the session: measured from here.
      await settle();
      before = procMemoryMb('self');
      const session = await Pipeline.create(options);
      const times: number[] = [];
      for (let i = 0; i < 25; i++) {
        const t0 = performance.now();
        await session.runModelOnly();
        if (i >= 5) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      extra.run_ms_median = r2(times[Math.floor(times.length / 2)]!);
      extra.run_ms_min = r2(times[0]!);
      hold.push(session);
      break;
    }
    case 'worker_isolate': {
      const w = new Worker('require("node:worker_threads").parentPort.postMessage(1); setInterval(() => {}, 1000);', { eval: true });
      await new Promise((r) => w.once('message', r));
      hold.push(w);
      break;
    }
    case 'detector': {
      const { Detector } = await load<typeof import('../inference/detector/detector.js')>('inference/detector/detector');
      const { DetectorSchema } = await load<typeof import('../config/schema/detector.js')>('config/schema/detector');
      const { loadImageFrame } = await load<typeof import('../inference/detector/image.js')>('inference/detector/image');
      const d = new Detector(DetectorSchema.parse({ model_path: model, threads: 2 }), silentLogger());
      await d.start();
      const frame = await loadImageFrame(join(root, 'tests/fixtures/photos/dog.jpg'), d.inputSize, d.resize);
      for (let i = 0; i < 10; i++) await d.detect('m', frame);
      hold.push(d);
      break;
    }
    case 'sharp': {
      const { loadImageFrame } = await load<typeof import('../inference/detector/image.js')>('inference/detector/image');
      const frame = await loadImageFrame(join(root, 'tests/fixtures/photos/dog.jpg'), { width: 416, height: 416 }, 'letterbox');
      hold.push(frame);
      break;
    }
    case 'ffmpeg': {
      // One camera as the agent runs it (CameraSource: ffmpeg looping the demo clip, 416×416 RGB at 10 fps).
      const { CameraSource } = await load<typeof import('../ingest/source.js')>('ingest/source');
      const { CameraSchema } = await load<typeof import('../config/schema/cameras.js')>('config/schema/cameras');
      const cam = CameraSchema.parse({ id: 'mem', url: join(root, 'tests/fixtures/clips/vtest-20s.mp4'), frame: { width: 768, height: 576 }, detection_fps: 10, motion: { enabled: false } });
      const source = new CameraSource(cam, { width: 416, height: 416, resize: 'stretch' }, silentLogger());
      const ac = new AbortController();
      await source.start(ac.signal);
      let n = 0;
      let ffmpeg: Rss | undefined;
      for await (const f of source.frames(ac.signal)) {
        hold.push(f);
        if (hold.length > 2) hold.shift();
        if (++n === 30) {
          const pid = source.stats().ffmpeg_pid;
          if (pid) ffmpeg = procMemoryMb(pid);
        }
        if (n === 40) break;
      }
      extra.frames = n;
      extra.ffmpeg_process_anon_mb = r1(ffmpeg?.anon_mb ?? NaN);
      extra.ffmpeg_process_file_mb = r1(ffmpeg?.file_mb ?? NaN);
      hold.push(source);
      break;
    }
    case 'sqlite': {
      // The outbox at the agent's pace: 20 events per group commit, leased and acknowledged as the uplink does.
      const { Outbox } = await load<typeof import('../buffer/outbox.js')>('buffer/outbox');
      const { OutboxSchema } = await load<typeof import('../config/schema/outbox.js')>('config/schema/outbox');
      const dir = mkdtempSync(join(tmpdir(), 'bench-mem-outbox-'));
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
      const ob = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db') }), silentLogger());
      await ob.start();
      const payload = { type: 'line_crossing', camera: 'cam1', object: { class: 'car', track_id: 1, score: 0.9, box: [1, 2, 3, 4] }, line: { id: 'l', direction: 'in' } };
      for (let i = 0; i < 5_000; i++) {
        ob.append({ id: `e${i}`, topic: 'events/cam1', priority: 'event', payload });
        if (i % 20 === 19) {
          ob.flush();
          for (const r of ob.lease(100)) ob.ack(r.seq);
        }
      }
      await settle();
      hold.push(ob);
      break;
    }
    case 'plates': {
      const { PlateReader } = await load<typeof import('../inference/recognizers/index.js')>('inference/recognizers/index');
      const reader = new PlateReader({ threads: 1 }, silentLogger());
      await reader.start();
      const w = 320;
      const h = 240;
      await reader.recognize({ data: new Uint8Array(w * h * 3).fill(128), width: w, height: h });
      hold.push(reader);
      break;
    }
    default:
      throw new Error(`unknown part ${name}`);
  }
  await settle();
  const after = procMemoryMb('self');
  return { anon_mb: r1(after.anon_mb - before.anon_mb), file_mb: r1(after.file_mb - before.file_mb), ...extra };
}

/**
 * One part in a fresh node (this file with --part), with the loader flags this process runs with: `deployed`, in
 * the agent's runtime environment (AGENT_RUNTIME_ENV) and with its V8 flags (AGENT_NODE_FLAGS); otherwise as plain
 * node, those variables removed and no V8 flags.
 */
function runPart(name: string, model: string, variant = 'default', deployed = true): Promise<Record<string, number>> {
  const loader = process.execArgv.filter((f) => !AGENT_NODE_FLAGS.includes(f));
  const args = [...(deployed ? AGENT_NODE_FLAGS : []), ...loader, '--expose-gc', fileURLToPath(import.meta.url), '--part', name, '--model', model, '--variant', variant];
  const env: NodeJS.ProcessEnv = { ...process.env, ...AGENT_RUNTIME_ENV };
  if (!deployed) for (const k of Object.keys(AGENT_RUNTIME_ENV)) delete env[k];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`memory part ${name} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** Plain node, no loader: what every node process costs before any module of ours. */
function nodeBaseline(): Rss {
  const out = execFileSync(process.execPath, ['-e', `setTimeout(() => { const s = require('fs').readFileSync('/proc/self/status', 'utf8'); console.log(JSON.stringify([s.match(/RssAnon:\\s+(\\d+)/)[1], s.match(/RssFile:\\s+(\\d+)/)[1]])); }, 200)`], { encoding: 'utf8' });
  const [anon, file] = JSON.parse(out) as [string, string];
  return { anon_mb: Number(anon) / 1024, file_mb: Number(file) / 1024 };
}

export interface BenchMemoryOptions {
  /** Detector model; default the bundled fp32 one. */
  model?: string;
  /** Skip the session variants (quick mode). */
  quick?: boolean;
}

export async function benchMemory(opts: BenchMemoryOptions = {}): Promise<Record<string, number>> {
  const model = opts.model ?? DEFAULT_MODEL();
  if (!existsSync(model)) throw new Error(`model ${model} not found`);
  const base = nodeBaseline();
  const out: Record<string, number> = { from_dist: fromDist(), node_baseline_anon_mb: r1(base.anon_mb), node_baseline_file_mb: r1(base.file_mb) };
  const put = (prefix: string, figures: Record<string, number>) => {
    for (const [k, v] of Object.entries(figures)) out[`${prefix}_${k}`] = v;
  };
  for (const name of ['worker_isolate', 'detector', 'sharp', 'ffmpeg', 'sqlite', 'plates']) put(name, await runPart(name, model));
  // The same parts in plain node: what the runtime environment saves on each.
  for (const name of ['detector', 'ffmpeg', 'sqlite']) put(`${name}_plain_node`, await runPart(name, model, 'default', false));
  // Session options, alternating rounds: the least memory and the fastest run of each variant are kept
  // (other load only adds time; the run times are the model alone, 2 threads).
  const variants = opts.quick ? ['default', 'all_off'] : Object.keys(SESSION_VARIANTS);
  const best: Record<string, Record<string, number>> = {};
  for (let round = 0; round < (opts.quick ? 1 : 2); round++) {
    for (const v of variants) {
      const f = await runPart('ort_session', model, v);
      const b = best[v];
      best[v] = b ? { anon_mb: Math.min(b.anon_mb!, f.anon_mb!), file_mb: Math.min(b.file_mb!, f.file_mb!), run_ms_median: Math.min(b.run_ms_median!, f.run_ms_median!), run_ms_min: Math.min(b.run_ms_min!, f.run_ms_min!) } : f;
    }
  }
  for (const v of variants) put(`ort_session_${v}`, best[v]!);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { part: { type: 'string' }, model: { type: 'string' }, variant: { type: 'string' }, quick: { type: 'boolean' } } });
  if (values.part) {
    const figures = await part(values.part, values.model ?? DEFAULT_MODEL(), values.variant ?? 'default');
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    process.exit(0);
  }
  console.log(JSON.stringify(await benchMemory({ model: values.model, quick: values.quick }), null, 2));
  process.exit(0);
}
