// One ffmpeg process of a camera, from spawn to exit: its stdout cut into frames, its stderr read for the
// reason it failed, the decoded size and (recording) each frame's stream time and the ring's segments, and at
// the end why it is gone.
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { errorMessage } from '../core/errors.js';
import { spawnTied, terminate, type ParentDeathMode } from './child.js';
import type { FfmpegPlan } from './ffmpeg-args.js';
import { StreamInfoParser, classifyLine, parseStderrLine, type StderrLine } from './ffmpeg-stderr.js';
import { FrameAssembler } from './frames.js';
import type { CameraReason } from './types.js';

export interface FfmpegRunOptions {
  ffmpegPath: string;
  parentDeath: ParentDeathMode;
  frameBytes: number;
  /** A frame-sized buffer to fill (from the source's pool). */
  alloc: () => Uint8Array;
  /** Removes credentials from stderr text. */
  scrub: (s: string) => string;
}

export interface FfmpegRunHooks {
  /** A whole frame; `first` for the run's first one. `wall`/`mono`: when it was complete on our side. */
  frame: (run: FfmpegRun, data: Uint8Array, mono: number, wall: number, first: boolean) => void;
  /** Recording runs: a frame's stream time (showinfo) with its arrival times, once both are known. */
  timing?: (run: FfmpegRun, pts_s: number, wall: number, mono: number) => void;
  /** Recording runs: a line of the segment or tee muxer (segment opened, slave failed). */
  recording?: (run: FfmpegRun, line: StderrLine) => void;
  /** A frame of a run that is being killed: nobody should see it. */
  recycle: (data: Uint8Array) => void;
  /** The stream dump told the decoded input's size. */
  sourceSize: (width: number, height: number) => void;
  /** A warning or error line (for the log). */
  complaint: (run: FfmpegRun, line: StderrLine) => void;
  /** The process is gone; `end` says why. */
  closed: (run: FfmpegRun, end: RunEnd) => void;
}

export interface RunEnd {
  reason: CameraReason;
  detail: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Lines of the recording's muxers: `[segment @ 0x…] Opening '…' for writing`, `[tee @ 0x…] Slave muxer #1 failed: …`. */
const RING_MUXER = /^\[(?:segment|tee) @ /;
const SHOWINFO_LINE = /^\[Parsed_showinfo_\d+ @ [^\]]+\] n:\s*(\d+) pts:\s*-?\d+\s+pts_time:(-?[\d.]+(?:e[-+]?\d+)?)/;

/** A showinfo frame line: frame number within the run (from 0) and its stream time, s; null for other lines. */
export function parseShowinfo(text: string): { n: number; pts_s: number } | null {
  const m = SHOWINFO_LINE.exec(text);
  return m ? { n: Number(m[1]), pts_s: Number(m[2]) } : null;
}

/** `start()` spawns; `kill()` (watchdog) and `stop()` end it; the `closed` hook reports the end once. */
export class FfmpegRun {
  private child: ChildProcess | undefined;
  private readonly info = new StreamInfoParser();
  /** performance.now() at spawn. */
  spawnedMono = 0;
  firstFrameMono: number | null = null;
  lastFrameMono: number | null = null;
  /** Set when we killed it (watchdog): the reason wins over what stderr said. */
  private killReason: CameraReason | null = null;
  private killDetail: string | null = null;
  private errorReason: CameraReason | null = null;
  private errorDetail: string | null = null;
  private lastErrorLine: string | null = null;
  private spawnError: string | null = null;
  private stderrPartial = '';
  /** Recording runs: frames out so far, and the showinfo times / arrivals still waiting for their pair. */
  private framesOut = 0;
  private readonly ptsByFrame = new Map<number, number>();
  private readonly arrivals = new Map<number, { wall: number; mono: number }>();

  constructor(
    private readonly plan: FfmpegPlan,
    private readonly opts: FfmpegRunOptions,
    private readonly hooks: FfmpegRunHooks,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The ring run id when this run records, else undefined. */
  get recordingRun(): string | undefined {
    return this.plan.recording?.run;
  }

  get killed(): boolean {
    return this.killReason !== null;
  }

  /** Spawns ffmpeg (tied to our life); returns how it is tied. */
  start(): ParentDeathMode {
    const plan = this.plan;
    this.spawnedMono = performance.now();
    const { child, mode } = spawnTied(this.opts.ffmpegPath, plan.args, { fd3: plan.script !== undefined, prefer: this.opts.parentDeath });
    this.child = child;
    const assembler = new FrameAssembler(this.opts.frameBytes, this.opts.alloc, (data) => this.onFrame(data));
    child.once('error', (err) => {
      this.spawnError = errorMessage(err);
    });
    if (plan.script !== undefined) {
      const fd3 = child.stdio[3] as Writable | null;
      fd3?.on('error', () => undefined); // ffmpeg gone before reading it: its exit tells why
      fd3?.end(plan.script);
    }
    child.stdout!.on('data', (chunk: Buffer) => assembler.push(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.onStderr(text));
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) => this.onClose(code, sig));
    return mode;
  }

  /**
   * Ends a run that misbehaves (no first frame, stalled): `reason` becomes its end's reason. Resolves as
   * `stop()` does; a second kill does nothing (resolves true).
   */
  kill(reason: CameraReason, detail: string, graceMs: number): Promise<boolean> {
    if (this.killReason) return Promise.resolve(true);
    this.killReason = reason;
    this.killDetail = detail;
    return this.stop(graceMs);
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves false if it still had not exited 5 s after SIGKILL. */
  stop(graceMs: number): Promise<boolean> {
    return this.child ? terminate(this.child, graceMs) : Promise.resolve(true);
  }

  private onFrame(data: Uint8Array): void {
    if (this.killReason) return this.hooks.recycle(data); // a run being killed for a stall does not bring the camera back
    const mono = performance.now();
    const wall = Date.now();
    const first = this.firstFrameMono === null;
    if (first) this.firstFrameMono = mono;
    this.lastFrameMono = mono;
    if (this.plan.recording) this.pairTiming(this.framesOut++, undefined, { wall, mono });
    this.hooks.frame(this, data, mono, wall, first);
  }

  /**
   * Frame n's stream time (stderr, showinfo) and its arrival (stdout) come on two pipes in either order: the
   * pair is reported once both are in. Unpaired halves older than 64 frames are dropped.
   */
  private pairTiming(n: number, pts: number | undefined, arrival: { wall: number; mono: number } | undefined): void {
    if (pts !== undefined) this.ptsByFrame.set(n, pts);
    if (arrival) this.arrivals.set(n, arrival);
    const p = this.ptsByFrame.get(n);
    const a = this.arrivals.get(n);
    if (p !== undefined && a) {
      this.ptsByFrame.delete(n);
      this.arrivals.delete(n);
      this.hooks.timing?.(this, p, a.wall, a.mono);
    }
    for (const m of [this.ptsByFrame, this.arrivals]) if (m.size > 64) for (const k of m.keys()) if (k < n - 64) m.delete(k);
  }

  private onStderr(text: string): void {
    const parts = (this.stderrPartial + text).split(/\r?\n|\r/);
    this.stderrPartial = (parts.pop() ?? '').slice(-4096);
    for (const raw of parts) if (raw.trim()) this.onStderrLine(raw);
  }

  private onStderrLine(raw: string): void {
    const line = parseStderrLine(raw, this.opts.scrub);
    if (this.plan.recording) {
      const shown = parseShowinfo(line.text);
      if (shown) return this.pairTiming(shown.n, shown.pts_s, undefined);
      if (RING_MUXER.test(line.text)) return this.hooks.recording?.(this, line);
    }
    if (line.level === 'info' || line.level === 'verbose' || line.level === 'debug' || line.level === 'trace') {
      this.info.push(line);
      if (this.info.width !== undefined && this.info.height !== undefined) this.hooks.sourceSize(this.info.width, this.info.height);
      return;
    }
    const isError = line.level !== 'warning';
    const reason = classifyLine(line.text);
    if (isError) this.lastErrorLine = line.text;
    if (reason && (isError || this.errorReason === null)) {
      this.errorReason = reason;
      this.errorDetail = line.text;
    }
    this.hooks.complaint(this, line);
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stderrPartial) this.onStderrLine(this.stderrPartial);
    this.stderrPartial = '';
    this.hooks.closed(this, { ...this.why(code, signal), code, signal });
  }

  /** Our kill reason first; then a failure to run ffmpeg at all; then what its stderr said. */
  private why(code: number | null, signal: NodeJS.Signals | null): { reason: CameraReason; detail: string } {
    if (this.killReason) return { reason: this.killReason, detail: this.killDetail ?? this.killReason };
    if (this.spawnError !== null || code === 126 || code === 127 || (code !== null && code < 0)) {
      return { reason: 'exited', detail: `cannot run ${this.opts.ffmpegPath}: ${this.spawnError ?? this.lastErrorLine ?? `exit code ${code}`}` };
    }
    return {
      reason: this.errorReason ?? 'exited',
      detail: this.errorDetail ?? this.lastErrorLine ?? (code === 0 ? 'stream ended' : `ffmpeg exited (code ${code}, signal ${signal})`),
    };
  }
}
