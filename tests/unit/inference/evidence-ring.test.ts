// The recording ring without ffmpeg: the tee command line, the index built from the segment list and the
// frames' stream times (wall / monotonic times, frames attached), the bounds, failures and recovery, orphans;
// and the ring read back for a package (the violation placed on its own frame, waiting, coverage).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CameraSchema, RecordingSchema } from '../../../config/schema/index.js';
import { silentLogger } from '../../../core/log.js';
import { buildFfmpegPlan } from '../../../ingest/ffmpeg-args.js';
import { parseShowinfo } from '../../../ingest/ffmpeg-run.js';
import { RING_INDEX_FILE, RecordingRing, type RingIndex } from '../../../ingest/recording.js';
import { RingSource } from '../../../inference/evidence/sources.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-ring-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const info = (text: string) => ({ level: 'info' as const, text });
const error = (text: string) => ({ level: 'error' as const, text });
const readIndex = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, RING_INDEX_FILE), 'utf8')) as RingIndex;

/** A ring fed like ffmpeg would: frames every 0.2 s arriving 150 ms after their stream time, 2 s segments. */
class FakeRun {
  readonly run: string;
  private next = 0;
  constructor(
    readonly ring: RecordingRing,
    readonly dir: string,
    readonly wall0: number,
    readonly mono0: number,
  ) {
    this.run = ring.beginRun()!.run;
  }
  /** Frames up to stream time `to_s`, then segment `k` (2 s) closed: listed, and the next one opened. */
  async segment(k: number, bytes = 1000): Promise<void> {
    for (; this.next * 0.2 < (k + 1) * 2 - 1e-9; this.next++) {
      const pts = this.next * 0.2;
      this.ring.timing(this.run, pts, this.wall0 + pts * 1000 + 150, this.mono0 + pts * 1000 + 150);
    }
    const name = (i: number) => `${this.run}-${String(i).padStart(5, '0')}.ts`;
    fs.writeFileSync(path.join(this.dir, name(k)), Buffer.alloc(bytes));
    const list = path.join(this.dir, `${this.run}.csv`);
    fs.appendFileSync(list, `${name(k)},${(k * 2).toFixed(6)},${(k * 2 + 2).toFixed(6)}\n`);
    this.ring.line(this.run, info(`[segment @ 0x55] Opening '${path.join(this.dir, name(k + 1))}' for writing`));
    await this.ring.settled();
  }
}

describe('ffmpeg command line with the recording ring', () => {
  const cam = CameraSchema.parse({ id: 'cam1', url: 'rtsp://127.0.0.1:8554/cam1', frame: { width: 1280, height: 720 }, detection_fps: 5 });
  const target = { width: 416, height: 416, resize: 'stretch' as const };

  it('one input, one tee output: raw RGB frames with exact times on stdout, the stream copied into segments', () => {
    const plan = buildFfmpegPlan(cam, target, { socketTimeoutMs: 10_000, recording: { run: '1700000000000-000', dir: '/data/recordings/cam1', segment_s: 2, list_size: 34 } });
    const a = plan.args;
    expect(a.filter((x) => x === '-i')).toHaveLength(1);
    expect(plan.recording).toEqual({ run: '1700000000000-000' });
    expect(a.slice(a.indexOf('-filter:v:0'), a.indexOf('-filter:v:0') + 2)[1]).toBe(
      "select='isnan(prev_selected_t)+not(eq(floor(t*5+0.001),floor(prev_selected_t*5+0.001)))',showinfo=checksum=0,scale=416:416:flags=bilinear,format=rgb24",
    );
    expect(a.join(' ')).toContain('-map 0:v:0 -map 0:v:0');
    expect(a.join(' ')).toContain('-c:v:0 rawvideo -pix_fmt:v:0 rgb24 -fps_mode:v:0 passthrough -c:v:1 copy -f tee');
    expect(a.at(-1)).toBe(
      '[select=0:f=rawvideo]pipe\\:1|[select=1:f=segment:onfail=ignore:segment_time=2:reset_timestamps=1:segment_format=mpegts:' +
        'segment_list=/data/recordings/cam1/1700000000000-000.csv:segment_list_type=csv:segment_list_size=34]/data/recordings/cam1/1700000000000-000-%05d.ts',
    );
    // Without the ring the command is the plain one.
    expect(buildFfmpegPlan(cam, target, { socketTimeoutMs: 10_000 }).args.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  });

  it('refuses ring paths the tee muxer would parse', () => {
    expect(() => buildFfmpegPlan(cam, target, { socketTimeoutMs: 1, recording: { run: 'r', dir: '/data/a:b', segment_s: 2, list_size: 3 } })).toThrow(/tee muxer/);
  });

  it('reads showinfo frame lines', () => {
    expect(parseShowinfo('[Parsed_showinfo_1 @ 0x55a0161e5f80] n:  12 pts:     60 pts_time:2.4     pos: 16903 fmt:yuv420p')).toEqual({ n: 12, pts_s: 2.4 });
    expect(parseShowinfo('[Parsed_showinfo_1 @ 0x55a0161e5f80] color_range:unknown color_space:unknown')).toBeNull();
  });
});

describe('recording ring index', () => {
  it('places segments in wall and monotonic time from the frames, attaches the frames, marks the open one', async () => {
    const dir = tempDir();
    const ring = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2, keep_s: 10 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await ring.start();
    const r = new FakeRun(ring, dir, 1_700_000_000_000, 5_000);
    await r.segment(0);
    await r.segment(1);
    const idx = readIndex(dir);
    expect(idx.state).toBe('recording');
    expect(idx.segments.map((s) => [s.start_s, s.end_s, s.start_ms, s.end_ms, s.start_mono_ms, s.end_mono_ms])).toEqual([
      [0, 2, 1_700_000_000_150, 1_700_000_002_150, 5_150, 7_150],
      [2, 4, 1_700_000_002_150, 1_700_000_004_150, 7_150, 9_150],
    ]);
    expect(idx.segments[1]!.frames.map((f) => Math.round(f[2] * 1e9) / 1e9)).toEqual([2, 2.2, 2.4, 2.6, 2.8, 3, 3.2, 3.4, 3.6, 3.8]);
    expect(idx.segments[1]!.frames[0]!.slice(0, 2)).toEqual([1_700_000_002_150, 7_150]);
    expect(idx.open).toMatchObject({ file: `${r.run}-00002.ts`, start_ms: 1_700_000_004_150 });
    await ring.stop();
  });

  it('keeps keep_s seconds and max_mb, deleting the oldest segments', async () => {
    const dir = tempDir();
    const ring = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2, keep_s: 10, max_mb: 8 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await ring.start();
    const r = new FakeRun(ring, dir, 1_700_000_000_000, 0);
    for (let k = 0; k < 8; k++) await r.segment(k);
    expect(readIndex(dir).segments.map((s) => s.start_s)).toEqual([6, 8, 10, 12, 14]);
    expect(fs.existsSync(path.join(dir, `${r.run}-00000.ts`))).toBe(false);
    expect(ring.stats()).toMatchObject({ segments: 5, seconds: 10, segments_written: 8, segments_deleted: 3 });
    await r.segment(8, 3 * 1024 * 1024); // 3 MiB: the 8 MiB bound drops more than the time bound would
    await r.segment(9, 3 * 1024 * 1024);
    await r.segment(10, 3 * 1024 * 1024);
    expect(readIndex(dir).segments.map((s) => s.start_s)).toEqual([18, 20]);
    expect(ring.stats().bytes).toBeLessThanOrEqual(8 * 1024 * 1024);
    await ring.stop();
  });

  it('pauses when segments cannot be written (frames go on), resumes when they are listed again', async () => {
    const dir = tempDir();
    const ring = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await ring.start();
    const r = new FakeRun(ring, dir, 1_700_000_000_000, 0);
    await r.segment(0);
    const lost = path.join(dir, `${r.run}-00001.ts`);
    fs.writeFileSync(lost, Buffer.alloc(10));
    ring.line(r.run, error(`[segment @ 0x55] Failure occurred when ending segment '${lost}'`));
    await ring.settled();
    expect(fs.existsSync(lost)).toBe(false);
    expect(ring.stats()).toMatchObject({ state: 'failed', write_failures: 1 });
    expect(readIndex(dir).state).toBe('failed');
    await r.segment(2);
    expect(ring.stats().state).toBe('recording');
    // A failed tee slave ends this run's recording for good.
    ring.line(r.run, error('[tee @ 0x55] Slave muxer #1 failed: No space left on device, continuing with 1/2 slaves.'));
    await ring.settled();
    expect(ring.stats()).toMatchObject({ state: 'paused_disk_full', write_failures: 2, last_failure: 'No space left on device' });
    await ring.stop();
  });

  it('does not record a run without enough free space, and asks for a new run once space is back', async () => {
    const dir = tempDir();
    const restarts: string[] = [];
    const huge = Number.MAX_SAFE_INTEGER;
    const ring = new RecordingRing('cam1', RecordingSchema.parse({}), dir, silentLogger(), (why) => restarts.push(why), { min_free_bytes: huge, recheck_ms: 10 });
    await ring.start();
    expect(ring.beginRun()).toBeUndefined();
    expect(ring.stats()).toMatchObject({ state: 'paused_disk_full', runs_without_recording: 1 });
    (ring as unknown as { minFree: number }).minFree = 0; // space is back
    await new Promise((r) => setTimeout(r, 60));
    expect(restarts).toEqual(['recording resumes']);
    await ring.stop();
  });

  it('takes over indexed segments after a restart and deletes files it cannot place', async () => {
    const dir = tempDir();
    const a = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await a.start();
    const r = new FakeRun(a, dir, 1_700_000_000_000, 0);
    await r.segment(0);
    await r.segment(1);
    await a.stop();
    fs.writeFileSync(path.join(dir, '1700000009999-001-00003.ts'), 'orphan');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
    const b = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await b.start();
    expect(readIndex(dir).segments.map((s) => s.file)).toEqual([`${r.run}-00000.ts`, `${r.run}-00001.ts`]);
    expect(fs.readdirSync(dir).sort()).toEqual([`${r.run}-00000.ts`, `${r.run}-00001.ts`, RING_INDEX_FILE, 'notes.txt'].sort());
    await b.stop();
  });
});

describe('ring read back for a package', () => {
  async function ringWith(segments: number): Promise<{ dir: string; run: FakeRun; ring: RecordingRing }> {
    const dir = tempDir();
    const ring = new RecordingRing('cam1', RecordingSchema.parse({ segment_s: 2 }), dir, silentLogger(), () => undefined, { min_free_bytes: 0 });
    await ring.start();
    const run = new FakeRun(ring, dir, 1_700_000_000_000, 10_000);
    for (let k = 0; k < segments; k++) await run.segment(k);
    return { dir, run, ring };
  }

  it('places a violation on its own frame and joins the segments of the window', async () => {
    const { dir, ring } = await ringWith(5);
    const work = tempDir();
    // The frame of stream time 4.6 s arrived at mono 10 000 + 4 600 + 150.
    const span = await new RingSource(dir).span({ at: { wall_ms: 1_700_000_004_750, mono_ms: 14_750 }, before_s: 2.5, after_s: 2.5, work, deadline_mono: performance.now() + 1000 });
    expect(span).toBeDefined();
    // Segments 1 (2-4 s), 2 (4-6 s), 3 (6-8 s): the violation at 4.6 s is 2.6 s into the joined video.
    expect(span!.event_s).toBeCloseTo(2.6, 9);
    expect(span!.input.kind).toBe('concat');
    const list = fs.readFileSync(span!.input.path, 'utf8');
    expect(list.match(/file '([^']+)'/g)).toHaveLength(3);
    expect(list).toContain('-00001.ts');
    expect(list).toContain('duration 2.000000');
    expect(fs.readdirSync(path.join(work, 'src')).filter((f) => f.endsWith('.ts'))).toHaveLength(3);
    // A time between frames: placed by the segment clock.
    const between = await new RingSource(dir).span({ at: { wall_ms: 1_700_000_004_800, mono_ms: 14_800 }, before_s: 2.5, after_s: 2.5, work: tempDir(), deadline_mono: performance.now() + 1000 });
    expect(between!.event_s).toBeCloseTo(2.65, 6);
    await ring.stop();
  });

  it('waits for the video after the violation, until its deadline; says what is missing', async () => {
    const { dir, run, ring } = await ringWith(3);
    const src = new RingSource(dir, { poll_ms: 20 });
    const t0 = performance.now();
    const pending = src.span({ at: { wall_ms: 1_700_000_005_150, mono_ms: 15_150 }, before_s: 1, after_s: 2, work: tempDir(), deadline_mono: performance.now() + 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await run.segment(3); // covers 6-8 s: 5 s + 2 s is in
    const span = await pending;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    expect(span!.note).toBeUndefined();
    // Not covered in time: the package goes with what there is.
    const late = await src.span({ at: { wall_ms: 1_700_000_007_150, mono_ms: 17_150 }, before_s: 1, after_s: 5, work: tempDir(), deadline_mono: performance.now() + 100 });
    expect(late!.note).toMatch(/not recorded in time/);
    // Not on video at all: none.
    expect(await src.span({ at: { wall_ms: 1_700_000_030_000, mono_ms: 40_000 }, before_s: 1, after_s: 1, work: tempDir(), deadline_mono: performance.now() + 50 })).toBeUndefined();
    await ring.stop();
  });

  it('stops waiting when shutdown hurries it, or when the run that recorded the violation has ended', async () => {
    const { dir, run, ring } = await ringWith(3);
    const src = new RingSource(dir, { poll_ms: 20 });
    const req = { at: { wall_ms: 1_700_000_005_150, mono_ms: 15_150 }, before_s: 1, after_s: 3, deadline_mono: performance.now() + 30_000 };
    const hurry = new AbortController();
    const t0 = performance.now();
    const hurried = src.span({ ...req, work: tempDir(), signal: hurry.signal });
    setTimeout(() => hurry.abort(), 100);
    expect((await hurried)!.note).toMatch(/not recorded in time/);
    expect(performance.now() - t0).toBeLessThan(5_000);
    ring.ended(run.run); // ffmpeg exited: the next run's segments will not continue this one
    await ring.settled();
    expect(readIndex(dir).run).toBeUndefined();
    const t1 = performance.now();
    expect(await src.span({ ...req, work: tempDir() })).toBeDefined();
    expect(performance.now() - t1).toBeLessThan(5_000);
    await ring.stop();
  });

  it("places segments of another process's clock by wall time", async () => {
    const { dir, ring } = await ringWith(3);
    await ring.stop();
    const idx = readIndex(dir);
    for (const s of idx.segments) Object.assign(s, { clock: 'another-process', start_mono_ms: -1, end_mono_ms: -1, frames: s.frames.map((f) => [f[0], -1, f[2]]) });
    fs.writeFileSync(path.join(dir, RING_INDEX_FILE), JSON.stringify(idx));
    // The frame of stream time 2.6 s arrived at wall 1 700 000 002 750; its mono clock means nothing here.
    const span = await new RingSource(dir).span({ at: { wall_ms: 1_700_000_002_750, mono_ms: 99_999 }, before_s: 1, after_s: 1, work: tempDir(), deadline_mono: performance.now() + 100 });
    expect(span!.event_s).toBeCloseTo(2.6, 9);
  });
});
