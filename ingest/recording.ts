// The recording ring of one camera. The camera's own ffmpeg copies the original stream (no re-encode, same
// connection) into short MPEG-TS segments (ffmpeg-args.ts teeOutput); this class indexes them with wall-clock
// and monotonic times, deletes the oldest beyond keep_s / max_mb and stops recording cleanly on a full disk.
// Its index file (index.json, replaced atomically) is what evidence packages are cut by (inference/evidence).
import { readFile, readdir, rename, stat, unlink, writeFile, mkdir } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RecordingConfig } from '../config/schema/index.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { segmentListName, teeSafePath, type RecordingOutput } from './ffmpeg-args.js';
import type { StderrLine } from './ffmpeg-stderr.js';

export const RING_INDEX_FILE = 'index.json';

/**
 * This process's monotonic clock (performance.now()): segments recorded under another one (an earlier run of
 * the agent) are placed by wall time only.
 */
export const MONO_CLOCK_ID = `${process.pid}@${Math.round(performance.timeOrigin)}`;

/** `recording` the ring is being written; `paused_disk_full` / `failed` a write failed (frames go on). */
export type RecordingState = 'off' | 'recording' | 'paused_disk_full' | 'failed' | 'stopped';

/** One closed segment. Times are when its first frame / the frame after its last one arrived on our side. */
export interface RingSegment {
  file: string;
  /** ffmpeg run that wrote it: the segments of one run are contiguous in time. */
  run: string;
  /** Stream time of the run, s (the CSV list's times). */
  start_s: number;
  end_s: number;
  /** Wall clock (the events' captured_at_ms clock), epoch ms. */
  start_ms: number;
  end_ms: number;
  /** Monotonic clock (the events' mono_ms), valid within `clock`. */
  start_mono_ms: number;
  end_mono_ms: number;
  clock: string;
  bytes: number;
  /**
   * The frames handed to the detector from this segment: [wall ms, mono ms, stream time s]. An event stamped
   * with one of them is placed on exactly that frame, not on an estimate.
   */
  frames: Array<[number, number, number]>;
}

export interface RingIndex {
  version: 1;
  camera: string;
  state: RecordingState;
  updated_ms: number;
  /** The ffmpeg run recording now; absent between runs (its segments will not continue the last run's). */
  run?: string;
  /** Closed segments, oldest first. */
  segments: RingSegment[];
  /** The segment being written, if any (no end yet). */
  open?: { file: string; run: string; start_ms: number; start_mono_ms: number; clock: string };
}

export interface RecordingStats {
  state: RecordingState;
  segments: number;
  seconds: number;
  bytes: number;
  segments_written: number;
  segments_deleted: number;
  /** The segment muxer failed (disk full, I/O error): recording stopped for that ffmpeg run. */
  write_failures: number;
  /** ffmpeg runs started without recording (too little free space). */
  runs_without_recording: number;
  last_failure: string | null;
}

export interface RecordingRingOptions {
  /** Below this much free space on the ring's filesystem a run does not record. Default 32 MiB. */
  min_free_bytes?: number;
  /** How often a paused ring checks whether space is back, ms. Default 15 000. */
  recheck_ms?: number;
  /** Planned restarts to resume recording at most this often, ms. Default 300 000. */
  resume_interval_ms?: number;
}

/** Per ffmpeg run: the offset of wall / monotonic time over stream time, from its recent frames. */
class RunClock {
  private readonly wall: number[] = [];
  private readonly mono: number[] = [];
  /** Segments of the run already indexed, and the one being written. */
  readonly known = new Set<string>();
  opened: string | undefined;
  /** Frames not yet attached to a closed segment. */
  pending: Array<[number, number, number]> = [];

  add(pts_s: number, wall: number, mono: number): void {
    this.wall.push(wall - pts_s * 1000);
    this.mono.push(mono - pts_s * 1000);
    if (this.wall.length > 64) {
      this.wall.shift();
      this.mono.shift();
    }
    this.pending.push([wall, Math.round(mono * 1000) / 1000, pts_s]);
    if (this.pending.length > 512) this.pending.shift();
  }

  /** Median offsets (robust to a frame delayed by a busy event loop); undefined before the first frame. */
  offsets(): { wall: number; mono: number } | undefined {
    if (this.wall.length === 0) return undefined;
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    return { wall: med(this.wall), mono: med(this.mono) };
  }
}

const SEGMENT_NAME = /^(\d{13}-\d{3})-(\d{5})\.ts$/;
const LIST_NAME = /^\d{13}-\d{3}\.csv$/;
const OPENING = /Opening '([^']+)' for writing/;
const SLAVE_FAILED = /Slave muxer #\d+ failed: (.*?)(?:, continuing with.*)?$/;
/** The segment muxer could not finish a segment (its writes failed): it goes on with the next one. */
const SEGMENT_FAILED = /Failure occurred when ending segment '([^']+)'/;

/**
 * The ring of one camera. `beginRun()` at every ffmpeg spawn gives that run's segment output (or none: disabled,
 * paused for a full disk); the run's frame times (`timing`) and muxer lines (`line`, `ended`) index its
 * segments. Segments are deleted oldest first beyond `keep_s` seconds or `max_mb`; only files named like ours
 * are ever deleted.
 */
export class RecordingRing {
  private state: RecordingState = 'off';
  private segments: RingSegment[] = [];
  private open: RingIndex['open'];
  private readonly runs = new Map<string, RunClock>();
  private readonly counters = { segments_written: 0, segments_deleted: 0, write_failures: 0, runs_without_recording: 0 };
  private lastFailure: string | null = null;
  private work: Promise<void> = Promise.resolve();
  private recheck: NodeJS.Timeout | undefined;
  private lastResume = -Infinity;
  private runSeq = 0;
  private current: string | undefined;
  private readonly minFree: number;

  constructor(
    readonly camera: string,
    private readonly cfg: RecordingConfig,
    readonly dir: string,
    private readonly log: Logger,
    /** Asks the camera for a new ffmpeg run (recording can resume: space is back). */
    private readonly wantRestart: (why: string) => void,
    private readonly opts: RecordingRingOptions = {},
  ) {
    this.minFree = opts.min_free_bytes ?? 32 * 1024 * 1024;
  }

  /** Creates the directory and takes over the segments an earlier run of the agent indexed; deletes orphans. */
  async start(): Promise<void> {
    if (!teeSafePath(this.dir)) throw new Error(`${this.dir} contains a character ffmpeg's tee muxer parses (\\ : | [ ] ' or a space)`);
    await mkdir(this.dir, { recursive: true });
    let previous: RingIndex | undefined;
    try {
      previous = JSON.parse(await readFile(join(this.dir, RING_INDEX_FILE), 'utf8')) as RingIndex;
    } catch {
      previous = undefined; // none, or unreadable: its segments cannot be placed in time
    }
    const names = new Set(await readdir(this.dir));
    this.segments = (previous?.segments ?? []).filter((s) => names.has(s.file) && SEGMENT_NAME.test(s.file));
    const kept = new Set(this.segments.map((s) => s.file));
    for (const name of names) {
      if ((SEGMENT_NAME.test(name) && !kept.has(name)) || LIST_NAME.test(name)) await unlink(join(this.dir, name)).catch(() => undefined);
    }
    await this.enforce();
    this.recheck = setInterval(() => this.checkResume(), this.opts.recheck_ms ?? 15_000);
    this.recheck.unref();
    await this.writeIndex();
  }

  /** Stops the rechecks and writes the index one last time (the segments stay for the next run). */
  async stop(): Promise<void> {
    if (this.recheck) clearInterval(this.recheck);
    this.recheck = undefined;
    await this.serial(async () => {
      this.state = this.cfg.enabled ? 'stopped' : 'off';
      this.open = undefined;
      await this.writeIndex();
    });
  }

  /** The segment output of a new ffmpeg run; undefined when recording is off or paused for lack of space. */
  beginRun(): RecordingOutput | undefined {
    if (!this.cfg.enabled) return undefined;
    const free = this.freeBytes();
    if (free !== undefined && free < this.minFree) {
      this.counters.runs_without_recording++;
      if (this.state !== 'paused_disk_full') this.log.warn({ free_mb: mb(free), dir: this.dir }, 'recording paused: too little free space');
      this.state = 'paused_disk_full';
      void this.serial(() => this.writeIndex());
      return undefined;
    }
    // 13-digit epoch ms and a counter: names sort by time, and two runs never share one.
    const run = `${Date.now()}-${String(this.runSeq++ % 1000).padStart(3, '0')}`;
    this.runs.set(run, new RunClock());
    this.current = run;
    if (this.state !== 'recording') this.log.info({ dir: this.dir, segment_s: this.cfg.segment_s, keep_s: this.cfg.keep_s }, 'recording ring on');
    this.state = 'recording';
    const list_size = Math.ceil(this.cfg.keep_s / this.cfg.segment_s) + 4;
    return { run, dir: this.dir, segment_s: this.cfg.segment_s, list_size };
  }

  /** A frame of `run`: its stream time and when it arrived. */
  timing(run: string, pts_s: number, wall: number, mono: number): void {
    this.runs.get(run)?.add(pts_s, wall, mono);
  }

  /** A line of the run's segment / tee muxer. */
  line(run: string, line: StderrLine): void {
    const clock = this.runs.get(run);
    if (!clock) return;
    const opened = OPENING.exec(line.text);
    if (opened) {
      const file = basename(opened[1]!);
      if (!file.endsWith('.ts')) return; // the list's temporary file
      clock.opened = file;
      void this.serial(() => this.index(run, false));
      return;
    }
    const failed = SLAVE_FAILED.exec(line.text);
    if (failed) void this.serial(() => this.failed(run, failed[1]!));
    const lost = SEGMENT_FAILED.exec(line.text);
    if (lost) void this.serial(() => this.segmentLost(basename(lost[1]!)));
  }

  /** The run's ffmpeg exited: its last segment is closed and listed. */
  ended(run: string): void {
    if (!this.runs.has(run)) return;
    void this.serial(() => this.index(run, true));
  }

  stats(): RecordingStats {
    const seconds = this.segments.reduce((s, x) => s + (x.end_s - x.start_s), 0);
    return {
      state: this.state,
      segments: this.segments.length,
      seconds: Math.round(seconds * 10) / 10,
      bytes: this.segments.reduce((s, x) => s + x.bytes, 0),
      ...this.counters,
      last_failure: this.lastFailure,
    };
  }

  /** Waits for the index work queued so far (tests). */
  settled(): Promise<void> {
    return this.work;
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    this.work = this.work.then(fn).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'recording ring: index update failed'));
    return this.work;
  }

  /** Adds the run's newly listed segments (times from its frames), then trims the ring and writes the index. */
  private async index(run: string, final: boolean): Promise<void> {
    const clock = this.runs.get(run);
    if (!clock) return;
    let text = '';
    try {
      text = await readFile(join(this.dir, segmentListName(run)), 'utf8');
    } catch {
      // not written yet (first segment still open), or the disk is full
    }
    const off = clock.offsets();
    let last: RingSegment | undefined;
    for (const row of text.split('\n')) {
      const [file, a, b] = row.trim().split(',');
      const start_s = Number(a);
      const end_s = Number(b);
      if (!file || !SEGMENT_NAME.test(file) || clock.known.has(file) || !(end_s > start_s)) continue;
      if (!off) continue; // no frame yet: placed once one has come
      let bytes: number;
      try {
        bytes = (await stat(join(this.dir, file))).size;
      } catch {
        clock.known.add(file);
        continue;
      }
      clock.known.add(file);
      const seg: RingSegment = {
        file,
        run,
        start_s,
        end_s,
        start_ms: Math.round(start_s * 1000 + off.wall),
        end_ms: Math.round(end_s * 1000 + off.wall),
        start_mono_ms: Math.round((start_s * 1000 + off.mono) * 1000) / 1000,
        end_mono_ms: Math.round((end_s * 1000 + off.mono) * 1000) / 1000,
        clock: MONO_CLOCK_ID,
        bytes,
        frames: [],
      };
      this.segments.push(seg);
      this.counters.segments_written++;
      last = seg;
    }
    if (last) this.segments.sort((x, y) => x.start_ms - y.start_ms);
    if (last && this.state !== 'recording' && !final) {
      // Segments are listed again after lost ones: the disk has room again.
      this.log.info({ dir: this.dir }, 'recording resumed');
      this.state = 'recording';
    }
    this.attachFrames(run, clock);
    const tail = this.segments.filter((s) => s.run === run).at(-1);
    this.open =
      !final && clock.opened && !clock.known.has(clock.opened) && this.state === 'recording'
        ? { file: clock.opened, run, start_ms: tail?.end_ms ?? Date.now(), start_mono_ms: tail?.end_mono_ms ?? performance.now(), clock: MONO_CLOCK_ID }
        : undefined;
    if (final && off === undefined) await this.dropRun(run);
    if (final) {
      this.runs.delete(run); // its list goes with the next trim
      if (this.current === run) this.current = undefined;
    }
    await this.enforce();
    await this.writeIndex();
  }

  /** The segment slave failed: this run records no more; a full disk pauses the ring until space is back. */
  private async failed(run: string, reason: string): Promise<void> {
    this.counters.write_failures++;
    this.lastFailure = reason;
    const full = /no space left|ENOSPC|disk quota/i.test(reason);
    this.state = full ? 'paused_disk_full' : 'failed';
    this.log.warn({ reason, dir: this.dir }, full ? 'recording stopped: disk full (frames and events go on)' : 'recording stopped: segment write failed (frames and events go on)');
    // The segment being written when it failed is not listed, so it cannot be placed in time.
    const clock = this.runs.get(run);
    await this.index(run, true).catch(() => undefined);
    if (clock?.opened && !clock.known.has(clock.opened)) await unlink(join(this.dir, clock.opened)).catch(() => undefined);
  }

  /** Frames of the run go to the closed segment whose stream times hold them; later ones wait. */
  private attachFrames(run: string, clock: RunClock): void {
    const segs = this.segments.filter((x) => x.run === run);
    const first = segs[0];
    const keep: RunClock['pending'] = [];
    for (const f of clock.pending) {
      const seg = segs.find((x) => f[2] >= x.start_s && f[2] < x.end_s);
      if (seg) seg.frames.push(f);
      else if (!first || f[2] >= first.start_s) keep.push(f); // before the ring's oldest: dropped
    }
    clock.pending = keep;
  }

  /**
   * A segment could not be finished (its writes failed: a full disk, an I/O error). ffmpeg goes on with the next
   * segment, so recording resumes by itself once writes succeed; meanwhile the ring is paused and the unlisted
   * (incomplete) files are deleted.
   */
  private async segmentLost(file: string): Promise<void> {
    this.counters.write_failures++;
    const free = this.freeBytes();
    const full = free !== undefined && free < this.minFree;
    this.lastFailure = `segment ${file} not written${full ? ': no space left on device' : ''}`;
    if (this.state === 'recording') {
      this.state = full ? 'paused_disk_full' : 'failed';
      this.log.warn({ dir: this.dir, free_mb: free === undefined ? null : mb(free) }, full ? 'recording paused: disk full (frames and events go on)' : 'recording paused: a segment write failed (frames and events go on)');
    }
    if (SEGMENT_NAME.test(file)) await unlink(join(this.dir, file)).catch(() => undefined);
    this.open = undefined;
    await this.writeIndex();
  }

  private async dropRun(run: string): Promise<void> {
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith(`${run}-`) && SEGMENT_NAME.test(name)) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /** Oldest segments out until within keep_s and max_mb. */
  private async enforce(): Promise<void> {
    const maxBytes = this.cfg.max_mb * 1024 * 1024;
    let seconds = this.segments.reduce((s, x) => s + (x.end_s - x.start_s), 0);
    let bytes = this.segments.reduce((s, x) => s + x.bytes, 0);
    while (this.segments.length > 0 && (seconds > this.cfg.keep_s || bytes > maxBytes)) {
      const old = this.segments.shift()!;
      seconds -= old.end_s - old.start_s;
      bytes -= old.bytes;
      this.counters.segments_deleted++;
      await unlink(join(this.dir, old.file)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.log.warn({ file: old.file, err: err.message }, 'recording ring: cannot delete a segment');
      });
    }
    // Lists of runs that ended are of no more use.
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (LIST_NAME.test(name) && !this.runs.has(name.slice(0, -4))) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /** index.json by temp file + rename: readers see the old or the new one. No fsync: it is rebuilt as segments close. */
  private async writeIndex(): Promise<void> {
    const index: RingIndex = { version: 1, camera: this.camera, state: this.state, updated_ms: Date.now(), segments: this.segments };
    if (this.current && this.state === 'recording') index.run = this.current;
    if (this.open) index.open = this.open;
    const tmp = join(this.dir, `.${RING_INDEX_FILE}.tmp`);
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(tmp, JSON.stringify(index));
        await rename(tmp, join(this.dir, RING_INDEX_FILE));
        return;
      } catch (err) {
        // A full disk: the oldest segment makes room, so readers learn the ring's state (and stop waiting).
        const old = (err as NodeJS.ErrnoException).code === 'ENOSPC' && attempt < 2 ? this.segments.shift() : undefined;
        if (!old) {
          this.log.debug({ err: errorMessage(err) }, 'recording ring: index not written');
          await unlink(tmp).catch(() => undefined);
          return;
        }
        this.counters.segments_deleted++;
        await unlink(join(this.dir, old.file)).catch(() => undefined);
        index.segments = this.segments;
      }
    }
  }

  private freeBytes(): number | undefined {
    try {
      const s = statfsSync(this.dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  /** Paused for a full disk and space is back: a new ffmpeg run records again (at most every resume interval). */
  private checkResume(): void {
    if (this.state !== 'paused_disk_full' || !this.cfg.enabled) return;
    const free = this.freeBytes();
    const now = performance.now();
    if (free === undefined || free < 2 * this.minFree || now - this.lastResume < (this.opts.resume_interval_ms ?? 300_000)) return;
    this.lastResume = now;
    this.log.info({ free_mb: mb(free) }, 'disk space is back: recording resumes with a new ffmpeg run');
    this.wantRestart('recording resumes');
  }
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
