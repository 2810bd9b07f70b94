// CameraSource with real ffmpeg on local files: rate, size, letterbox, latest-frame-wins, motion gating,
// failure reasons, no ffmpeg left behind (stop, and SIGKILL of the owning process).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { CameraSchema, type CameraConfig } from '../../../config/schema/index.js';
import { CameraSource, GrabError, grabFrame, type CameraStatus, type Frame } from '../../../ingest/index.js';
import { DEMO_CLIP, REPO_ROOT, syntheticClip } from '../../../testkit/clips.js';
import { ffmpegProcesses, isAlive, listChildren, spawnGuarded, terminate, waitFor } from '../../../testkit/processes.js';

const execFileP = promisify(execFile);

function camera(url: string, over: Record<string, unknown> = {}): CameraConfig {
  return CameraSchema.parse({ id: 'cam1', url, frame: { width: 768, height: 576 }, detection_fps: 5, motion: { enabled: false }, ...over });
}

const sources: CameraSource[] = [];
function source(cam: CameraConfig, target = { width: 320, height: 240, resize: 'stretch' as 'stretch' | 'letterbox' }): CameraSource {
  const s = new CameraSource(cam, target, silentLogger(), { backoff: { initial_ms: 200, max_ms: 1_000 } });
  sources.push(s);
  return s;
}

/** Consume frames for `ms` after the first one; returns them (a fast consumer: nothing is skipped). */
async function collect(src: CameraSource, ms: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  const first = await src.next();
  if (!first) throw new Error('source stopped');
  frames.push(first);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  for await (const f of src.frames(ac.signal)) frames.push(f);
  clearTimeout(timer);
  return frames;
}

let tmp: string;
let stillClip: string;
let movingClip: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'camera-file-test-'));
  stillClip = path.join(tmp, 'still.mp4');
  await execFileP('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=0x507090:size=320x240:rate=10',
    '-t', '6', '-c:v', 'libx264', '-g', '10', '-pix_fmt', 'yuv420p', stillClip,
  ]);
  movingClip = await syntheticClip({ width: 320, height: 240, fps: 10, seconds: 6 });
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.concurrent('camera source on a local file', () => {
  it('delivers frames of the input size at the configured fps', async () => {
    const src = source(camera(DEMO_CLIP));
    const statuses: CameraStatus[] = [];
    src.on('status', (s) => statuses.push(s));
    const t0 = performance.now();
    await src.start();
    const frames = await collect(src, 3_000);
    const first_ms = frames[0]!.mono_ms - t0;
    const span = (frames.at(-1)!.mono_ms - frames[0]!.mono_ms) / 1000;
    const fps = (frames.length - 1) / span;
    console.log(`file: first frame after ${first_ms.toFixed(0)} ms, ${fps.toFixed(2)} fps over ${span.toFixed(1)} s`);
    expect(fps).toBeGreaterThan(4.3);
    expect(fps).toBeLessThan(5.7);
    for (const f of frames) {
      expect(f.data.byteLength).toBe(320 * 240 * 3);
      expect([f.width, f.height, f.source_width, f.source_height]).toEqual([320, 240, 768, 576]);
    }
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 1));
    expect(Math.abs(frames[0]!.captured_at_ms - Date.now())).toBeLessThan(10_000);
    expect(statuses.map((s) => s.state)).toEqual(['starting', 'online']);
    const st = src.stats();
    expect(st.skipped_total).toBe(0);
    expect(st.camera_fps).toBeGreaterThan(3);
    await src.stop();
  });

  it('letterboxes: geometry reported, bands filled with grey 114', async () => {
    const src = source(camera(DEMO_CLIP), { width: 416, height: 416, resize: 'letterbox' });
    await src.start();
    const f = (await src.next())!;
    expect(f.letterbox).toEqual({ scale: 416 / 768, pad_x: 0, pad_y: 52 });
    const row = (y: number) => f.data.subarray(y * 416 * 3, (y + 1) * 416 * 3);
    for (const y of [0, 51, 364, 415]) expect(row(y).every((v) => v === 114), `row ${y}`).toBe(true);
    expect(row(52).every((v) => v === 114)).toBe(false);
    await src.stop();
  });

  it('latest frame wins: a slow consumer gets fresh frames, the replaced ones are counted', async () => {
    const src = source(camera(DEMO_CLIP, { detection_fps: 10 }));
    await src.start();
    const newest: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const f = (await src.next())!;
      newest.push(f.seq === src.stats().frames_total); // nothing newer had arrived
      await sleep(350); // a detector slower than the camera
    }
    const st = src.stats();
    expect(newest).toEqual([true, true, true, true, true, true]);
    expect(st.processed_total).toBe(6);
    expect(st.skipped_total).toBeGreaterThanOrEqual(5);
    expect(st.frames_total).toBeGreaterThanOrEqual(st.processed_total + st.skipped_total);
    await src.stop();
  });

  it('a frame given back (release) carries a later frame; one kept is never written again', async () => {
    const src = source(camera(DEMO_CLIP, { detection_fps: 10 }));
    await src.start();
    const kept = (await src.next())!;
    const keptCopy = Buffer.from(kept.data);
    const buffers = new Set<ArrayBufferLike>([kept.data.buffer]);
    for (let i = 0; i < 20; i++) {
      const f = (await src.next())!;
      buffers.add(f.data.buffer);
      src.release(f);
    }
    // Released frames come back as later ones: a few buffers carried 20 frames. The kept one was never reused.
    expect(buffers.size).toBeLessThanOrEqual(4);
    expect(Buffer.compare(Buffer.from(kept.data), keptCopy)).toBe(0);
    await src.stop();
  });

  it('motion gating skips a still scene, with forced detections at the interval', async () => {
    const src = source(camera(stillClip, { frame: { width: 320, height: 240 }, motion: { enabled: true, force_interval_s: 1 } }));
    await src.start();
    const frames = await collect(src, 4_000);
    const st = src.stats();
    const gaps = frames.slice(1).map((f, i) => f.mono_ms - frames[i]!.mono_ms);
    console.log(`still: ${frames.length} passed, ${st.motion_skipped_total} skipped, gaps ${gaps.map((g) => g.toFixed(0)).join(' ')} ms`);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(frames.length).toBeLessThanOrEqual(6);
    // forced: the first frame at least 1 s after the last one let through (frames come every 200 ms; the
    // upper bound leaves room for a loaded test machine)
    for (const g of gaps) expect(g).toBeGreaterThan(950);
    for (const g of gaps) expect(g).toBeLessThan(2_000);
    expect(st.motion_skipped_total).toBeGreaterThanOrEqual(12);
    await src.stop();
  });

  it('motion gating lets a moving scene through', async () => {
    const src = source(camera(movingClip, { frame: { width: 320, height: 240 }, motion: { enabled: true, force_interval_s: 10 } }));
    await src.start();
    const frames = await collect(src, 3_000);
    const st = src.stats();
    console.log(`moving: ${frames.length} passed, ${st.motion_skipped_total} skipped`);
    expect(frames.length).toBeGreaterThanOrEqual(10);
    expect(st.motion_skipped_total).toBeLessThanOrEqual(1);
    await src.stop();
  });

  it('reports a missing file as offline / not_found and keeps retrying', async () => {
    const src = source(camera(path.join(tmp, 'missing.mp4')));
    await src.start();
    await waitFor(() => src.status().state === 'offline', { timeout_ms: 5_000 });
    expect(src.status()).toMatchObject({ state: 'offline', reason: 'not_found' });
    expect(src.status().detail).toMatch(/No such file or directory/);
    await waitFor(() => src.stats().reconnects_last_hour >= 2, { timeout_ms: 5_000, message: 'retries' });
    await src.stop();
    expect(src.status()).toMatchObject({ state: 'offline', reason: 'stopped' });
  });

  it('grabs a single frame, and says why it cannot', async () => {
    const f = await grabFrame(camera(DEMO_CLIP), { width: 416, height: 416, resize: 'letterbox' });
    expect(f.data.byteLength).toBe(416 * 416 * 3);
    expect(f.letterbox?.pad_y).toBe(52);
    const err = await grabFrame(camera(path.join(tmp, 'nope.mp4')), { width: 64, height: 64, resize: 'stretch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrabError);
    expect((err as GrabError).reason).toBe('not_found');
  });
});

describe('no ffmpeg left behind', () => {
  it('stop() terminates and reaps ffmpeg', async () => {
    const src = source(camera(DEMO_CLIP));
    await src.start();
    await src.next();
    const pid = src.stats().ffmpeg_pid!;
    expect(isAlive(pid)).toBe(true);
    await src.stop();
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false); // reaped, not a zombie
    expect(src.stats().ffmpeg_pid).toBeNull();
    const mine = listChildren(process.pid, { includeZombies: true }).filter((p) => p.pid === pid);
    expect(mine).toEqual([]);
  });

  it('stop() is idempotent, next() then answers null, and the source can start again', async () => {
    const src = source(camera(DEMO_CLIP));
    await src.start();
    await src.next();
    const first = src.stats().ffmpeg_pid!;
    const waiting = src.next(); // nothing pending (the first was just taken): waits
    await Promise.all([src.stop(), src.stop()]);
    expect(await waiting).toBeNull();
    expect(await src.next()).toBeNull();
    expect(isAlive(first)).toBe(false);
    await src.start();
    expect((await src.next())?.data.byteLength).toBe(320 * 240 * 3);
    const second = src.stats().ffmpeg_pid!;
    expect(second).not.toBe(first);
    expect(listChildren(process.pid).filter((p) => p.pid === first || p.pid === second).map((p) => p.pid)).toEqual([second]);
    await src.stop();
    expect(isAlive(second)).toBe(false);
  });

  it('ffmpeg dies with its owner when the owner is SIGKILLed', async () => {
    const clip = path.join(tmp, 'owner-clip.mp4');
    fs.copyFileSync(DEMO_CLIP, clip); // a path no other test uses: its ffmpeg is identifiable
    const owner = spawnGuarded(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'tests', 'fixtures', 'camera-owner.ts'), clip], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const rl = readline.createInterface({ input: owner.stdout! });
        rl.once('line', resolve);
        owner.once('exit', (code) => reject(new Error(`camera-owner exited early (${code})`)));
      });
      const { ffmpeg_pid } = JSON.parse(line) as { ffmpeg_pid: number };
      const procs = ffmpegProcesses(clip);
      expect(procs.map((p) => p.pid)).toEqual([ffmpeg_pid]);
      expect(procs[0]!.ppid).toBe(owner.pid);
      const t0 = performance.now();
      process.kill(owner.pid!, 'SIGKILL');
      await waitFor(() => !isAlive(ffmpeg_pid), { timeout_ms: 2_000, interval_ms: 10, message: 'ffmpeg to die with its owner' });
      console.log(`owner SIGKILLed: its ffmpeg gone after ${(performance.now() - t0).toFixed(0)} ms`);
      expect(ffmpegProcesses(clip)).toEqual([]);
    } finally {
      await terminate(owner, 'SIGKILL');
    }
  });
});
