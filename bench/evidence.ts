/**
 * Recording ring overhead: a file camera (the real CameraSource, -re, as live) with and without its recording
 * ring, ffmpeg's CPU time from /proc/<pid>/stat (utime + stime) per second of wall time, rounds alternated so
 * both modes see the same (noisy, shared) machine. With the ring ffmpeg also copies the stream into segments
 * (no re-encode) and logs each analysed frame's time (showinfo); the agent parses that and indexes segments,
 * so the agent process's own CPU per second is reported beside it.
 *
 *   npx tsx bench/evidence.ts [--seconds 10] [--rounds 3]
 *
 * Prints one JSON object; `benchEvidence()` returns the same figures for bench/run.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CameraSchema } from '../config/schema/index.js';
import { silentLogger } from '../core/log.js';
import { CameraSource } from '../ingest/index.js';
import { DEMO_CLIP, testClip } from '../testkit/clips.js';
import { FRAME, renderViolationScene } from '../testkit/violation-clips.js';
import { procCpuSeconds } from '../testkit/proc-stats.js';

export interface BenchEvidenceOptions {
  /** Measured seconds per round and mode. Default 10. */
  seconds?: number;
  /** Rounds of (without, with). Default 3. */
  rounds?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r2 = (v: number) => Math.round(v * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface Round {
  ffmpeg_cpu_pct: number;
  agent_cpu_pct: number;
  frames: number;
}

async function measure(clip: string, frame: { width: number; height: number }, ring: boolean, seconds: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ring-'));
  const cam = CameraSchema.parse({ id: 'cam1', url: clip, frame, detection_fps: 5, motion: { enabled: false }, recording: { enabled: ring } });
  const src = new CameraSource(cam, { width: 416, height: 416, resize: 'stretch' }, silentLogger(), ring ? { recording: { dir, min_free_bytes: 0 } } : {});
  await src.start();
  let frames = 0;
  const drain = (async () => {
    for await (const _ of src.frames()) frames++;
  })();
  try {
    await sleep(2_000); // connection, first segment
    const pid = src.stats().ffmpeg_pid;
    if (pid === null) throw new Error('ffmpeg is not running');
    const c0 = (procCpuSeconds(pid) ?? NaN);
    const a0 = process.cpuUsage();
    const f0 = frames;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const wall = (performance.now() - t0) / 1000;
    const a = process.cpuUsage(a0);
    return { ffmpeg_cpu_pct: (((procCpuSeconds(pid) ?? NaN) - c0) / wall) * 100, agent_cpu_pct: ((a.user + a.system) / 1e6 / wall) * 100, frames: frames - f0 };
  } finally {
    await src.stop();
    await drain;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function overhead(clip: string, frame: { width: number; height: number }, seconds: number, rounds: number) {
  const plain: Round[] = [];
  const ring: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    plain.push(await measure(clip, frame, false, seconds));
    ring.push(await measure(clip, frame, true, seconds));
  }
  const p = median(plain.map((r) => r.ffmpeg_cpu_pct));
  const q = median(ring.map((r) => r.ffmpeg_cpu_pct));
  process.stderr.write(`evidence bench ${clip}: ffmpeg CPU % per round without ${plain.map((r) => r2(r.ffmpeg_cpu_pct)).join(' ')}, with ${ring.map((r) => r2(r.ffmpeg_cpu_pct)).join(' ')}\n`);
  return {
    ffmpeg_cpu_pct_without: r2(p),
    ffmpeg_cpu_pct_with: r2(q),
    ring_cpu_overhead_pct: r2(((q - p) / p) * 100),
    agent_cpu_pct_without: r2(median(plain.map((r) => r.agent_cpu_pct))),
    agent_cpu_pct_with: r2(median(ring.map((r) => r.agent_cpu_pct))),
  };
}

export async function benchEvidence(opts: BenchEvidenceOptions = {}): Promise<Record<string, number>> {
  const seconds = opts.seconds ?? 10;
  const rounds = opts.rounds ?? 3;
  // The demo clip (768x576) when committed, else the synthetic test clip; and the 1280x720 25 fps violation scene.
  const demo = await testClip();
  const demoFrame = demo === DEMO_CLIP ? { width: 768, height: 576 } : { width: 640, height: 360 };
  const scene = await renderViolationScene();
  const a = await overhead(demo, demoFrame, seconds, rounds);
  const b = await overhead(scene.clip, FRAME, seconds, rounds);
  return {
    ...a,
    demo_is_committed_clip: demo === DEMO_CLIP ? 1 : 0,
    ...Object.fromEntries(Object.entries(b).map(([k, v]) => [`${k}_720p25`, v])),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' } } });
  const out = await benchEvidence({ seconds: values.seconds ? Number(values.seconds) : undefined, rounds: values.rounds ? Number(values.rounds) : undefined });
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  process.exit(0);
}
