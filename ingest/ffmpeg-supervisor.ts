// Keeps a camera's ffmpeg running: respawn with backoff after it ends, a watchdog for a missing first
// frame or a stall, and a stop that waits until the process is gone.
import { errorMessage } from '../core/errors.js';
import { redactUrl, type Logger } from '../core/log.js';
import { backoffDelay, type BackoffOptions } from '../core/time.js';
import type { ParentDeathMode } from './child.js';
import type { CameraCounters } from './counters.js';
import type { FfmpegPlan } from './ffmpeg-args.js';
import { FfmpegRun, type RunEnd } from './ffmpeg-run.js';
import { StderrLog, type StderrLine } from './ffmpeg-stderr.js';
import type { CameraReason, CameraState } from './types.js';

export interface FfmpegSupervisorOptions {
  ffmpegPath: string;
  parentDeath: ParentDeathMode;
  backoff: BackoffOptions;
  stallTimeoutMs: number;
  startTimeoutMs: number;
  stopGraceMs: number;
  stableAfterMs: number;
  frameBytes: number;
  /** A frame-sized buffer to fill, and the way back for one nobody will see. */
  alloc: () => Uint8Array;
  recycle: (data: Uint8Array) => void;
}

export interface FfmpegSupervisorHooks {
  /** A frame of the current run. */
  frame: (data: Uint8Array, mono: number, wall: number) => void;
  /** Recording runs: a frame's stream time and arrival (see FfmpegRunHooks.timing). */
  timing?: (run: string, pts_s: number, wall: number, mono: number) => void;
  /** Recording runs: a line of the ring's muxers. */
  recording?: (run: string, line: StderrLine) => void;
  /** A recording run's ffmpeg has exited (its last segment is closed). */
  recordingEnded?: (run: string) => void;
  /** The current run delivered its first frame, `first_frame_ms` after its spawn. */
  online: (first_frame_ms: number) => void;
  /** The camera is down (offline with the run's reason) or stalled. */
  status: (state: CameraState, reason: CameraReason, detail: string) => void;
  /** A frame still waiting is stale now (stall, disconnect). */
  stale: () => void;
  sourceSize: (width: number, height: number) => void;
}

/**
 * One ffmpeg at a time while started. A run that ends is replaced after a backoff delay (reset once a
 * run stayed online `stableAfterMs`); the watchdog kills a run without a first frame after
 * `startTimeoutMs`, or without frames for `stallTimeoutMs` (stalled).
 */
export class FfmpegSupervisor {
  private running = false;
  private plan: (() => FfmpegPlan) | null = null;
  /** A planned restart (not a failure) is under way: respawn at once, no status change. */
  private planned = false;
  private scrub: (s: string) => string = redactUrl;
  private run: FfmpegRun | null = null;
  private respawnTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private attempt = 0;
  private spawns = 0;
  private readonly stderrLog: StderrLog;

  constructor(
    private readonly opts: FfmpegSupervisorOptions,
    private readonly counters: CameraCounters,
    private readonly log: Logger,
    private readonly hooks: FfmpegSupervisorHooks,
  ) {
    this.stderrLog = new StderrLog(log);
  }

  /** pid of the current ffmpeg, null while none runs. */
  get pid(): number | null {
    return this.run?.pid ?? null;
  }

  /**
   * Spawns ffmpeg now and keeps one running until stop(). `plan` is asked for the command line at every
   * spawn (each run records into segments of its own).
   */
  start(plan: () => FfmpegPlan, scrub: (s: string) => string): void {
    this.plan = plan;
    this.scrub = scrub;
    this.running = true;
    const tick = Math.max(100, Math.min(1_000, this.opts.stallTimeoutMs / 5));
    this.watchdog = setInterval(() => this.checkWatchdog(), tick);
    this.watchdog.unref();
    this.spawn();
  }

  /** No more respawns; SIGTERM (SIGKILL after the grace) to the current ffmpeg; resolves once it has exited. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.respawnTimer = this.watchdog = null;
    const run = this.run;
    if (run && !(await run.stop(this.opts.stopGraceMs))) this.log.error({ ffmpeg_pid: run.pid }, 'ffmpeg did not exit after SIGKILL');
    if (this.run === run) this.run = null;
  }

  /**
   * Replaces the current run without counting a failure (the recording ring wants a new run to record again):
   * SIGTERM, then a new ffmpeg at once. The frames pause for the new connection; the status stays.
   */
  restart(why: string): void {
    const run = this.run;
    if (!this.running || !run || run.killed || this.planned) return;
    this.planned = true;
    this.log.info({ why }, 'restarting ffmpeg (planned)');
    void run.kill('exited', `planned restart: ${why}`, this.opts.stopGraceMs);
  }

  private spawn(): void {
    this.respawnTimer = null;
    if (!this.running || !this.plan) return;
    let plan: FfmpegPlan;
    try {
      plan = this.plan();
    } catch (err) {
      // The recording settings cannot make a command line: the camera must not go down for it.
      this.log.error({ err: errorMessage(err) }, 'cannot build the ffmpeg command line');
      this.hooks.status('offline', 'exited', errorMessage(err));
      this.respawnTimer = setTimeout(() => this.spawn(), backoffDelay(this.attempt++, this.opts.backoff));
      return;
    }
    if (this.spawns++ > 0) this.counters.reconnect(performance.now());
    const run = new FfmpegRun(
      plan,
      { ffmpegPath: this.opts.ffmpegPath, parentDeath: this.opts.parentDeath, frameBytes: this.opts.frameBytes, alloc: this.opts.alloc, scrub: this.scrub },
      {
        frame: (r, data, mono, wall, first) => this.onFrame(r, data, mono, wall, first),
        timing: (r, pts, wall, mono) => r === this.run && this.hooks.timing?.(r.recordingRun!, pts, wall, mono),
        recording: (r, line) => this.hooks.recording?.(r.recordingRun!, line),
        recycle: this.opts.recycle,
        sourceSize: this.hooks.sourceSize,
        complaint: (r, line) => this.stderrLog.write(line, r.firstFrameMono !== null),
        closed: (r, end) => this.onClosed(r, end),
      },
    );
    this.run = run;
    const mode = run.start();
    this.log.debug({ ffmpeg_pid: run.pid, parent_death: mode, args: plan.args.map(redactUrl) }, 'ffmpeg spawned');
  }

  private onFrame(run: FfmpegRun, data: Uint8Array, mono: number, wall: number, first: boolean): void {
    if (run !== this.run || !this.running) return this.opts.recycle(data);
    if (first) this.hooks.online(mono - run.spawnedMono);
    this.hooks.frame(data, mono, wall);
  }

  private onClosed(run: FfmpegRun, end: RunEnd): void {
    if (run.recordingRun !== undefined) this.hooks.recordingEnded?.(run.recordingRun);
    if (this.run !== run) return; // an old run (stopped): nothing to supervise
    this.run = null;
    if (!this.running) return;
    if (this.planned) {
      this.planned = false;
      this.hooks.stale();
      this.respawnTimer = setTimeout(() => this.spawn(), 0);
      return;
    }
    const onlineMs = run.firstFrameMono === null ? 0 : performance.now() - run.firstFrameMono;
    if (onlineMs >= this.opts.stableAfterMs) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, this.opts.backoff);
    if (end.reason !== 'stalled') this.hooks.status('offline', end.reason, end.detail);
    this.hooks.stale();
    this.log.debug({ code: end.code, signal: end.signal, reason: end.reason, online_ms: Math.round(onlineMs), retry_in_ms: delay }, 'ffmpeg exited');
    this.respawnTimer = setTimeout(() => this.spawn(), delay);
  }

  private checkWatchdog(): void {
    const run = this.run;
    if (!this.running || !run || run.killed) return;
    const now = performance.now();
    if (run.lastFrameMono === null) {
      if (now - run.spawnedMono > this.opts.startTimeoutMs) {
        this.kill(run, 'timeout', `no frame within ${Math.round(this.opts.startTimeoutMs / 1000)} s of starting ffmpeg`);
      }
    } else if (now - run.lastFrameMono > this.opts.stallTimeoutMs) {
      const detail = `no frame for ${((now - run.lastFrameMono) / 1000).toFixed(1)} s (timeout ${(this.opts.stallTimeoutMs / 1000).toFixed(1)} s)`;
      this.counters.stall(now);
      this.hooks.status('stalled', 'stalled', detail);
      this.hooks.stale();
      this.kill(run, 'stalled', detail);
    }
  }

  private kill(run: FfmpegRun, reason: CameraReason, detail: string): void {
    void run.kill(reason, detail, this.opts.stopGraceMs).then((ok) => {
      if (!ok) this.log.error({ ffmpeg_pid: run.pid }, 'ffmpeg did not exit after SIGKILL');
    });
  }
}
