// One ffmpeg process of a camera, from spawn to exit: its stdout cut into frames, its stderr read for the
// reason it failed and the decoded size, and at the end why it is gone.
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { errorMessage } from '../../core/errors.js';
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
  /** A whole frame; `first` for the run's first one. */
  frame: (run: FfmpegRun, data: Uint8Array, mono: number, first: boolean) => void;
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

  constructor(
    private readonly plan: FfmpegPlan,
    private readonly opts: FfmpegRunOptions,
    private readonly hooks: FfmpegRunHooks,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
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
    const first = this.firstFrameMono === null;
    if (first) this.firstFrameMono = mono;
    this.lastFrameMono = mono;
    this.hooks.frame(this, data, mono, first);
  }

  private onStderr(text: string): void {
    const parts = (this.stderrPartial + text).split(/\r?\n|\r/);
    this.stderrPartial = (parts.pop() ?? '').slice(-4096);
    for (const raw of parts) if (raw.trim()) this.onStderrLine(raw);
  }

  private onStderrLine(raw: string): void {
    const line = parseStderrLine(raw, this.opts.scrub);
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
