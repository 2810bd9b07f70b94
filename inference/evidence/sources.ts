// Where an evidence package's video comes from: a camera's recording ring (its segments around the violation,
// once they are written), or a recorded clip (`analyze --evidence`: the clip itself is the ring).
import { copyFile, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MONO_CLOCK_ID, RING_INDEX_FILE, type RingIndex, type RingSegment } from '../../ingest/recording.js';
import type { MediaInput } from './media.js';

/** When the violation happened, in both of the events' clocks. */
export interface EventTime {
  wall_ms: number;
  mono_ms: number;
}

/** The media around one violation: the input, and where the violation is in it. */
export interface MediaSpan {
  input: MediaInput;
  /** The violation's time in the input, s (ffmpeg's `t`). */
  event_s: number;
  source: 'ring' | 'clip';
  /** Why less than asked for is there (ring not recording, restart inside the window…), if so. */
  note?: string;
}

export interface SpanRequest {
  at: EventTime;
  before_s: number;
  after_s: number;
  /** A scratch folder of the package build (removed with it): ring segments are linked here. */
  work: string;
  /** Stop waiting for video still to come at this monotonic time (performance.now()). */
  deadline_mono: number;
  /** Aborted: stop waiting now (shutdown), take what is recorded. */
  signal?: AbortSignal;
}

export interface MediaSource {
  /** Recording as it goes (video after a violation comes later), unlike a recorded clip. */
  readonly live: boolean;
  /** The media covering the request as far as it can be had; undefined when there is none at all. */
  span(req: SpanRequest): Promise<MediaSpan | undefined>;
}

/** Segments further than this from the violation do not count as covering it, ms. */
const NEAR_MS = 5_000;
/** A violation this close outside the recorded span still counts as on it (the frame interval), ms. */
const EDGE_MS = 100;

/**
 * A camera's recording ring, read through its index.json. A span waits until the segment holding `after_s`
 * after the violation is closed (or the ring stops recording, or the deadline), then takes the contiguous
 * segments of one ffmpeg run around it: across a restart the stream times do not continue.
 */
export class RingSource implements MediaSource {
  readonly live = true;

  constructor(
    readonly dir: string,
    private readonly opts: { poll_ms?: number } = {},
  ) {}

  async span(req: SpanRequest): Promise<MediaSpan | undefined> {
    let index = await this.index();
    const due = (i: RingIndex | undefined, clockOf: (s: RingSegment, end: boolean) => number, t: number) =>
      i !== undefined && i.segments.some((s) => clockOf(s, true) >= t + req.after_s * 1000);
    for (;;) {
      const pick = choose(index, req.at);
      if (index && index.state !== 'recording') break; // nothing more is coming
      if (pick && due(index, pick.clockOf, pick.t)) break;
      if (pick && index && homeRun(index, pick) !== index.run) break; // that ffmpeg run has ended
      if (performance.now() >= req.deadline_mono || req.signal?.aborted) break;
      await sleep(this.opts.poll_ms ?? 250);
      index = await this.index();
    }
    const pick = choose(index, req.at);
    if (!index || !pick) return undefined;
    const { clockOf, t } = pick;
    const run = homeRun(index, pick);
    if (run === undefined) return undefined;
    const from = t - req.before_s * 1000;
    const to = t + req.after_s * 1000;
    const segs = index.segments.filter((s) => s.run === run && clockOf(s, true) > from && clockOf(s, false) < to);
    const src = join(req.work, 'src');
    await mkdir(src, { recursive: true });
    // Linked (or copied) first: the ring may delete a segment while ffmpeg reads the list.
    const lines = ['ffconcat version 1.0'];
    const entries: NonNullable<MediaInput['segments']> = [];
    for (const s of segs) {
      const dst = join(src, s.file);
      await link(join(this.dir, s.file), dst).catch(() => copyFile(join(this.dir, s.file), dst));
      lines.push(`file '${s.file}'`, `duration ${(s.end_s - s.start_s).toFixed(6)}`);
      entries.push({ file: s.file, start_s: entries.reduce((sum, x) => sum + x.duration_s, 0), duration_s: s.end_s - s.start_s });
    }
    const list = join(src, 'list.ffconcat');
    await writeFile(list, `${lines.join('\n')}\n`);
    const first = segs[0];
    const last = segs.at(-1);
    // The violation itself must be on video; around it, what there is.
    if (!first || !last || t < clockOf(first, false) - EDGE_MS || t > clockOf(last, true) + EDGE_MS) return undefined;
    // Where the violation is in the joined segments: on the very frame it was stamped with when the ring knows
    // it (its stream time), else by the segment's clock.
    let event_s = (t - clockOf(first, false)) / 1000;
    let offset = 0;
    for (const s of segs) {
      const hit = s.frames?.find((f) => Math.abs((clockOf === wallOf ? f[0] : f[1]) - t) < 0.5);
      if (hit) {
        event_s = offset + hit[2] - s.start_s;
        break;
      }
      offset += s.end_s - s.start_s;
    }
    const notes: string[] = [];
    if (clockOf(first, false) > from + 50) notes.push('the ring did not reach back to the requested start');
    if (clockOf(last, true) < to - 50) notes.push(index.state === 'recording' ? 'the requested end was not recorded in time' : `recording ${index.state} before the requested end`);
    return { input: { kind: 'concat', path: list, seekable: false, segments: entries }, event_s, source: 'ring', ...(notes.length ? { note: notes.join('; ') } : {}) };
  }

  private async index(): Promise<RingIndex | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, RING_INDEX_FILE), 'utf8')) as RingIndex;
    } catch {
      return undefined;
    }
  }
}

/**
 * The clock to place the violation by: monotonic when every segment near it was recorded by this process
 * (immune to wall-clock steps), else wall time.
 */
function choose(index: RingIndex | undefined, at: EventTime): { clockOf: (s: RingSegment, end: boolean) => number; t: number } | undefined {
  if (!index || index.segments.length === 0) return undefined;
  const near = index.segments.filter((s) => s.start_ms - NEAR_MS <= at.wall_ms && s.end_ms + NEAR_MS >= at.wall_ms);
  const mono = near.length > 0 && near.every((s) => s.clock === MONO_CLOCK_ID);
  return mono ? { clockOf: monoOf, t: at.mono_ms } : { clockOf: wallOf, t: at.wall_ms };
}

const monoOf = (s: RingSegment, end: boolean) => (end ? s.end_mono_ms : s.start_mono_ms);
const wallOf = (s: RingSegment, end: boolean) => (end ? s.end_ms : s.start_ms);

/** The ffmpeg run of the segment holding (or nearest to) the violation; undefined when none is near. */
function homeRun(index: RingIndex, pick: { clockOf: (s: RingSegment, end: boolean) => number; t: number }): string | undefined {
  const { clockOf, t } = pick;
  let best: RingSegment | undefined;
  for (const s of index.segments) {
    if (clockOf(s, false) - NEAR_MS > t || clockOf(s, true) + NEAR_MS < t) continue;
    if (!best || dist(s, clockOf, t) < dist(best, clockOf, t)) best = s;
  }
  return best?.run;
}

function dist(s: RingSegment, clockOf: (s: RingSegment, end: boolean) => number, t: number): number {
  const a = clockOf(s, false);
  const b = clockOf(s, true);
  return t < a ? a - t : t >= b ? t - b : 0;
}

/**
 * A recorded clip read by `readClip` (ingest/clip.ts): its frames' `mono_ms` are their stream times,
 * so the violation is at mono_ms / 1000 s of the clip.
 */
export class ClipSource implements MediaSource {
  readonly live = false;

  constructor(readonly path: string) {}

  span(req: SpanRequest): Promise<MediaSpan | undefined> {
    // An MP4/MOV/MKV clip is indexed: seeking is exact. Others (MPEG-TS) are decoded from the start.
    const seekable = /\.(mp4|m4v|mov|mkv|webm)$/i.test(this.path);
    return Promise.resolve({ input: { kind: 'file', path: this.path, seekable }, event_s: req.at.mono_ms / 1000, source: 'clip' });
  }
}
