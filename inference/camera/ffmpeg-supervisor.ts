// Keeps a camera's ffmpeg running: respawn with backoff after it ends, a watchdog for a missing first
// frame or a stall, and a stop that waits until the process is gone.
import { redactUrl, type Logger } from '../../core/log.js';
import { backoffDelay, type BackoffOptions } from '../../core/time.js';
import type { ParentDeathMode } from './child.js';
import type { CameraCounters } from './counters.js';
import type { FfmpegPlan } from './ffmpeg-args.js';
import { FfmpegRun, type RunEnd } from './ffmpeg-run.js';
import { StderrLog } from './ffmpeg-stderr.js';
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
  frame: (data: Uint8Array, mono: number) => void;
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
  private plan: FfmpegPlan | null = null;
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

  /** Spawns ffmpeg now and keeps one running until stop(). */
  start(plan: FfmpegPlan, scrub: (s: string) => string): void {
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
    if (run && !(await run.stop(this.opts.stopGraceMs))) this.log.error({ pid: run.pid }, 'ffmpeg did not exit after SIGKILL');
    if (this.run === run) this.run = null;
  }

  private spawn(): void {
    this.respawnTimer = null;
    if (!this.running || !this.plan) return;
    const plan = this.plan;
    if (this.spawns++ > 0) this.counters.reconnect(performance.now());
    const run = new FfmpegRun(
      plan,
      { ffmpegPath: this.opts.ffmpegPath, parentDeath: this.opts.parentDeath, frameBytes: this.opts.frameBytes, alloc: this.opts.alloc, scrub: this.scrub },
      {
        frame: (r, data, mono, first) => this.onFrame(r, data, mono, first),
        recycle: this.opts.recycle,
        sourceSize: this.hooks.sourceSize,
        complaint: (r, line) => this.stderrLog.write(line, r.firstFrameMono !== null),
        closed: (r, end) => this.onClosed(r, end),
      },
    );
    this.run = run;
    const mode = run.start();
    this.log.debug({ pid: run.pid, parent_death: mode, args: plan.args.map(redactUrl) }, 'ffmpeg spawned');
  }

  private onFrame(run: FfmpegRun, data: Uint8Array, mono: number, first: boolean): void {
    if (run !== this.run || !this.running) return this.opts.recycle(data);
    if (first) this.hooks.online(mono - run.spawnedMono);
    this.hooks.frame(data, mono);
  }

  private onClosed(run: FfmpegRun, end: RunEnd): void {
    if (this.run !== run) return; // an old run (stopped): nothing to supervise
    this.run = null;
    if (!this.running) return;
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
      if (!ok) this.log.error({ pid: run.pid }, 'ffmpeg did not exit after SIGKILL');
    });
  }
}
