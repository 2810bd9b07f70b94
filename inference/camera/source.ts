// One camera: a supervised ffmpeg child pulling RTSP (or looping a file), decoding and scaling to the
// detector's input size, raw RGB frames on its stdout. Latest frame wins; motion gating; status and stats.
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { AgentError, errorMessage } from '../../core/errors.js';
import { redactUrl, type Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import type { CameraConfig } from '../../config/schema/index.js';
import { findSetpriv, spawnTied, terminate, type ParentDeathMode } from './child.js';
import { DEFAULT_BACKOFF, EventWindow, backoffDelay, type BackoffOptions } from '../../core/time.js';
import { buildFfmpegPlan, letterboxGeometry, type FfmpegPlan, type FrameTarget } from './ffmpeg-args.js';
import { StreamInfoParser, classifyLine, makeScrubber, parseStderrLine, type StderrLine } from './ffmpeg-stderr.js';
import { FrameAssembler, FramePool } from './frames.js';
import { MotionGate } from './motion.js';
import type { CameraReason, CameraState, CameraStats, CameraStatus, Frame, Letterbox } from './types.js';

export class CameraError extends AgentError {}

export interface CameraSourceOptions {
  /** ffmpeg executable (PATH lookup). Default 'ffmpeg'. */
  ffmpegPath?: string;
  /** Reconnect backoff; defaults 500 ms doubling to 30 s, jitter 0.5. */
  backoff?: Partial<BackoffOptions>;
  /** No frame for this long while connected: stalled, ffmpeg restarted. Default: camera `stall_timeout_s`, else max(5 s, 5 frame intervals). */
  stallTimeoutMs?: number;
  /** No first frame this long after spawning ffmpeg: timeout, restarted. Default max(20 s, 2 × stall timeout). */
  startTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace when stopping ffmpeg, ms. Default 2 000. */
  stopGraceMs?: number;
  /** Online at least this long before a failure resets the backoff, ms. Default 10 000. */
  stableAfterMs?: number;
  /** How ffmpeg is tied to our life; default 'setpriv' (falls back to 'none' when missing). */
  parentDeath?: ParentDeathMode;
}

type Events = { status: [CameraStatus] };

interface Run {
  child: ChildProcess;
  plan: FfmpegPlan;
  assembler: FrameAssembler;
  info: StreamInfoParser;
  spawnedMono: number;
  firstFrameMono: number | null;
  lastFrameMono: number | null;
  /** Set when we killed it (watchdog): the reason wins over what stderr said. */
  killReason: CameraReason | null;
  killDetail: string | null;
  errorReason: CameraReason | null;
  errorDetail: string | null;
  lastErrorLine: string | null;
  spawnError: string | null;
  stderrPartial: string;
}

interface Waiter {
  resolve: (f: Frame | null) => void;
  cleanup: () => void;
}

const FPS_WINDOW_MS = 5_000;
const HOUR_MS = 3_600_000;
const STDERR_LOG_BUDGET = 10; // error lines logged per minute and camera; the rest are counted

/**
 * A camera as a pull source of frames at the detector's input size.
 *
 * ```ts
 * const cam = new CameraSource(cfg, { width: 416, height: 416, resize: 'stretch' }, log);
 * cam.on('status', (s) => uplink.publishCameraStatus(s));
 * await cam.start(signal);
 * for await (const frame of cam.frames(signal)) await detector.run(frame);
 * ```
 *
 * One consumer: `next()` returns the newest frame; a frame that arrives while the consumer is busy replaces
 * the waiting one (counted in `skipped_fps`). Frames of a still scene never reach it (`motion_skipped_fps`)
 * unless `motion.force_interval_s` has passed.
 */
export class CameraSource extends EventEmitter<Events> implements Module {
  readonly name: string;
  private readonly log: Logger;
  private readonly frameBytes: number;
  private readonly backoff: BackoffOptions;
  private readonly stallTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly pool: FramePool;

  private running = false;
  /** stop() was called (and no start() since): next() answers null. Before the first start() it waits. */
  private closed = false;
  private stopping: Promise<void> | null = null;
  private run: Run | null = null;
  private plan: FfmpegPlan | null = null;
  private respawnTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private attempt = 0;
  private spawns = 0;
  private pending: Frame | null = null;
  private waiter: Waiter | null = null;
  private gate: MotionGate | null = null;
  private gateKey = '';
  private letterbox: Letterbox | undefined;
  private letterboxKey = '';
  private sourceW: number;
  private sourceH: number;
  private warnedSize = false;
  private currentStatus: CameraStatus;
  private stderrBudget = STDERR_LOG_BUDGET;
  private stderrSuppressed = 0;
  private stderrWindowStart = 0;
  private scrubSecrets: (s: string) => string = redactUrl;

  private seq = 0;
  private lastFrameMono: number | null = null;
  private totals = { frames: 0, processed: 0, skipped: 0, motion: 0 };
  private rates = {
    camera: new EventWindow(FPS_WINDOW_MS, 1024),
    process: new EventWindow(FPS_WINDOW_MS, 1024),
    skipped: new EventWindow(FPS_WINDOW_MS, 1024),
    motion: new EventWindow(FPS_WINDOW_MS, 1024),
  };
  private reconnects = new EventWindow(HOUR_MS, 8192);
  private stalls = new EventWindow(HOUR_MS, 8192);

  constructor(
    private readonly cam: CameraConfig,
    private readonly target: FrameTarget,
    log: Logger,
    private readonly opts: CameraSourceOptions = {},
  ) {
    super();
    this.name = `camera:${cam.id}`;
    this.log = log.child({ mod: 'camera', camera: cam.id });
    this.frameBytes = target.width * target.height * 3;
    this.pool = new FramePool(this.frameBytes, 2);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.stallTimeoutMs = opts.stallTimeoutMs ?? (cam.stall_timeout_s !== undefined ? cam.stall_timeout_s * 1000 : Math.max(5_000, 5_000 / cam.detection_fps));
    this.startTimeoutMs = opts.startTimeoutMs ?? Math.max(20_000, 2 * this.stallTimeoutMs);
    this.sourceW = cam.frame.width;
    this.sourceH = cam.frame.height;
    this.currentStatus = { camera: cam.id, state: 'starting', reason: null, detail: null, since_ms: Date.now() };
  }

  /** Spawns ffmpeg and returns; frames and status follow. A camera that is down does not fail the start. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.running) return;
    if (this.stopping) await this.stopping; // a restart waits for the previous ffmpeg to be gone
    if (signal?.aborted) throw new CameraError('START_ABORTED', `${this.name}: start aborted`);
    if (this.running) return;
    // Throws CameraConfigError on a URL carrying credentials or line breaks.
    this.plan = buildFfmpegPlan(this.cam, this.target, { socketTimeoutMs: this.stallTimeoutMs + 5_000 });
    this.scrubSecrets = makeScrubber(this.cam.password);
    this.running = true;
    this.closed = false;
    if ((this.opts.parentDeath ?? 'setpriv') === 'setpriv' && !findSetpriv()) {
      this.log.warn('setpriv not found: ffmpeg is not killed by the kernel if the agent dies (install util-linux)');
    }
    // Always announce the start (also a restart after stop()), even though the constructor already said 'starting'.
    this.currentStatus = { camera: this.cam.id, state: 'starting', reason: null, detail: null, since_ms: Date.now() };
    this.emit('status', this.status());
    this.log.info(
      { input: this.plan.display, transport: this.cam.transport, fps: this.cam.detection_fps, size: `${this.target.width}x${this.target.height}`, resize: this.target.resize, stall_timeout_ms: this.stallTimeoutMs },
      'camera starting',
    );
    const tick = Math.max(100, Math.min(1_000, this.stallTimeoutMs / 5));
    this.watchdog = setInterval(() => this.checkWatchdog(), tick);
    this.watchdog.unref();
    this.spawnFfmpeg();
  }

  /** Stops ffmpeg (SIGTERM, SIGKILL after the grace period) and waits until it has exited. Idempotent. */
  stop(): Promise<void> {
    this.closed = true;
    this.resolveWaiter(null);
    if (!this.running) return this.stopping ?? Promise.resolve();
    this.running = false;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.respawnTimer = this.watchdog = null;
    this.dropPending();
    const run = this.run;
    const stopping = (async () => {
      if (run && !(await terminate(run.child, this.opts.stopGraceMs ?? 2_000))) {
        this.log.error({ pid: run.child.pid }, 'ffmpeg did not exit after SIGKILL');
      }
      if (this.run === run) this.run = null;
      this.setStatus('offline', 'stopped', 'camera source stopped');
    })().finally(() => {
      if (this.stopping === stopping) this.stopping = null;
    });
    this.stopping = stopping;
    return stopping;
  }

  /**
   * The newest frame: at once if one is waiting, else when the next one arrives (also when called before
   * start()). Resolves null once the source is stopped, or when `signal` aborts. One caller at a time.
   */
  next(signal?: AbortSignal): Promise<Frame | null> {
    if (this.closed || signal?.aborted) return Promise.resolve(null);
    const f = this.pending;
    if (f) {
      this.pending = null;
      this.handedOut();
      return Promise.resolve(f);
    }
    if (this.waiter) return Promise.reject(new CameraError('CAMERA_CONSUMER_BUSY', `${this.name}: next() called while another next() is pending`));
    return new Promise((resolve) => {
      const onAbort = (): void => this.resolveWaiter(null);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = { resolve, cleanup: () => signal?.removeEventListener('abort', onAbort) };
    });
  }

  /** `next()` as an async iterator; ends when the source stops or `signal` aborts. */
  async *frames(signal?: AbortSignal): AsyncGenerator<Frame, void, undefined> {
    for (;;) {
      const f = await this.next(signal);
      if (!f) return;
      yield f;
    }
  }

  status(): CameraStatus {
    return { ...this.currentStatus };
  }

  stats(): CameraStats {
    const now = performance.now();
    const r = (w: EventWindow) => Math.round(w.rate(now) * 100) / 100;
    return {
      camera: this.cam.id,
      state: this.currentStatus.state,
      camera_fps: r(this.rates.camera),
      process_fps: r(this.rates.process),
      skipped_fps: r(this.rates.skipped),
      motion_skipped_fps: r(this.rates.motion),
      reconnects_last_hour: this.reconnects.count(now),
      stalls_last_hour: this.stalls.count(now),
      frames_total: this.totals.frames,
      processed_total: this.totals.processed,
      skipped_total: this.totals.skipped,
      motion_skipped_total: this.totals.motion,
      last_frame_age_ms: this.lastFrameMono === null ? null : Math.round(now - this.lastFrameMono),
      ffmpeg_pid: this.run?.child.pid ?? null,
      source_width: this.sourceW,
      source_height: this.sourceH,
    };
  }

  // ------------------------------------------------------------------------------------------------
  // ffmpeg runs

  private spawnFfmpeg(): void {
    this.respawnTimer = null;
    if (!this.running || !this.plan) return;
    const plan = this.plan;
    const now = performance.now();
    if (this.spawns++ > 0) this.reconnects.add(now);
    const { child, mode } = spawnTied(this.opts.ffmpegPath ?? 'ffmpeg', plan.args, { fd3: plan.script !== undefined, prefer: this.opts.parentDeath ?? 'setpriv' });
    const run: Run = {
      child,
      plan,
      assembler: new FrameAssembler(this.frameBytes, () => this.pool.take(), (data) => this.onFrame(run, data)),
      info: new StreamInfoParser(),
      spawnedMono: now,
      firstFrameMono: null,
      lastFrameMono: null,
      killReason: null,
      killDetail: null,
      errorReason: null,
      errorDetail: null,
      lastErrorLine: null,
      spawnError: null,
      stderrPartial: '',
    };
    this.run = run;
    this.log.debug({ pid: child.pid, parent_death: mode, args: plan.args.map(redactUrl) }, 'ffmpeg spawned');

    child.once('error', (err) => {
      run.spawnError = errorMessage(err);
    });
    if (plan.script !== undefined) {
      const fd3 = child.stdio[3] as Writable | null;
      fd3?.on('error', () => undefined); // ffmpeg gone before reading it: its exit tells why
      fd3?.end(plan.script);
    }
    child.stdout!.on('data', (chunk: Buffer) => run.assembler.push(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.onStderr(run, text));
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) => this.onClose(run, code, sig));
  }

  private onClose(run: Run, code: number | null, sig: NodeJS.Signals | null): void {
    if (run.stderrPartial) this.onStderrLine(run, run.stderrPartial);
    run.stderrPartial = '';
    if (this.run !== run) return; // an old run (stopped): nothing to supervise
    this.run = null;
    if (!this.running) return;

    const now = performance.now();
    let reason: CameraReason;
    let detail: string;
    if (run.killReason) {
      reason = run.killReason;
      detail = run.killDetail ?? reason;
    } else if (run.spawnError !== null || code === 126 || code === 127 || (code !== null && code < 0)) {
      reason = 'exited';
      detail = `cannot run ${this.opts.ffmpegPath ?? 'ffmpeg'}: ${run.spawnError ?? run.lastErrorLine ?? `exit code ${code}`}`;
    } else {
      reason = run.errorReason ?? 'exited';
      detail = run.errorDetail ?? run.lastErrorLine ?? (code === 0 ? 'stream ended' : `ffmpeg exited (code ${code}, signal ${sig})`);
    }
    const onlineMs = run.firstFrameMono === null ? 0 : now - run.firstFrameMono;
    if (onlineMs >= (this.opts.stableAfterMs ?? 10_000)) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, this.backoff);

    if (reason !== 'stalled') this.setStatus('offline', reason, detail);
    this.dropPending();
    this.log.debug({ code, signal: sig, reason, online_ms: Math.round(onlineMs), retry_in_ms: delay }, 'ffmpeg exited');
    this.respawnTimer = setTimeout(() => this.spawnFfmpeg(), delay);
  }

  private kill(run: Run, reason: CameraReason, detail: string): void {
    if (run.killReason) return;
    run.killReason = reason;
    run.killDetail = detail;
    void terminate(run.child, this.opts.stopGraceMs ?? 2_000).then((ok) => {
      if (!ok) this.log.error({ pid: run.child.pid }, 'ffmpeg did not exit after SIGKILL');
    });
  }

  private checkWatchdog(): void {
    const run = this.run;
    if (!this.running || !run || run.killReason) return;
    const now = performance.now();
    if (run.lastFrameMono === null) {
      if (now - run.spawnedMono > this.startTimeoutMs) {
        this.kill(run, 'timeout', `no frame within ${Math.round(this.startTimeoutMs / 1000)} s of starting ffmpeg`);
      }
    } else if (now - run.lastFrameMono > this.stallTimeoutMs) {
      const detail = `no frame for ${((now - run.lastFrameMono) / 1000).toFixed(1)} s (timeout ${(this.stallTimeoutMs / 1000).toFixed(1)} s)`;
      this.stalls.add(now);
      this.setStatus('stalled', 'stalled', detail);
      this.dropPending();
      this.kill(run, 'stalled', detail);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // stderr

  private onStderr(run: Run, text: string): void {
    const parts = (run.stderrPartial + text).split(/\r?\n|\r/);
    run.stderrPartial = (parts.pop() ?? '').slice(-4096);
    for (const raw of parts) if (raw.trim()) this.onStderrLine(run, raw);
  }

  private onStderrLine(run: Run, raw: string): void {
    const line: StderrLine = parseStderrLine(raw, this.scrubSecrets);
    if (line.level === 'info' || line.level === 'verbose' || line.level === 'debug' || line.level === 'trace') {
      run.info.push(line);
      if (run.info.width !== undefined && run.info.height !== undefined) this.setSourceSize(run.info.width, run.info.height);
      return;
    }
    const isError = line.level !== 'warning';
    const reason = classifyLine(line.text);
    if (isError) run.lastErrorLine = line.text;
    if (reason && (isError || run.errorReason === null)) {
      run.errorReason = reason;
      run.errorDetail = line.text;
    }
    this.logStderr(run, line);
  }

  /** Mid-stream problems go to the log (rate-limited); failures to connect are summed up by the status. */
  private logStderr(run: Run, line: StderrLine): void {
    if (run.firstFrameMono === null) {
      this.log.debug({ ffmpeg_level: line.level }, `ffmpeg: ${line.text}`);
      return;
    }
    const now = performance.now();
    if (now - this.stderrWindowStart > 60_000) {
      if (this.stderrSuppressed > 0) this.log.warn({ suppressed: this.stderrSuppressed }, 'ffmpeg stderr lines suppressed');
      this.stderrWindowStart = now;
      this.stderrBudget = STDERR_LOG_BUDGET;
      this.stderrSuppressed = 0;
    }
    if (this.stderrBudget <= 0) {
      this.stderrSuppressed++;
      return;
    }
    this.stderrBudget--;
    this.log.warn({ ffmpeg_level: line.level }, `ffmpeg: ${line.text}`);
  }

  private setSourceSize(w: number, h: number): void {
    if (w === this.sourceW && h === this.sourceH) return;
    if (!this.warnedSize && (w !== this.cam.frame.width || h !== this.cam.frame.height)) {
      this.warnedSize = true;
      this.log.warn({ configured: `${this.cam.frame.width}x${this.cam.frame.height}`, actual: `${w}x${h}` }, 'camera frame size differs from the configured one (lines, zones and calibration use configured pixels)');
    }
    this.sourceW = w;
    this.sourceH = h;
  }

  // ------------------------------------------------------------------------------------------------
  // frames

  private onFrame(run: Run, data: Uint8Array): void {
    const mono = performance.now();
    const wall = Date.now();
    if (run.killReason) {
      this.pool.give(data); // a run being killed for a stall does not bring the camera back
      return;
    }
    run.lastFrameMono = mono;
    this.lastFrameMono = mono;
    if (run.firstFrameMono === null) {
      run.firstFrameMono = mono;
      this.log.info({ first_frame_ms: Math.round(mono - run.spawnedMono), source: `${this.sourceW}x${this.sourceH}` }, 'camera online');
      this.setStatus('online', null, null);
    }
    this.seq++;
    this.totals.frames++;
    this.rates.camera.add(mono);

    const letterbox = this.currentLetterbox();
    if (this.cam.motion.enabled && !this.motionGate(letterbox).check(data, mono)) {
      this.totals.motion++;
      this.rates.motion.add(mono);
      this.pool.give(data);
      return;
    }
    const frame: Frame = {
      camera: this.cam.id,
      data,
      width: this.target.width,
      height: this.target.height,
      source_width: this.sourceW,
      source_height: this.sourceH,
      captured_at_ms: wall,
      mono_ms: mono,
      seq: this.seq,
    };
    if (letterbox) frame.letterbox = letterbox;

    if (this.waiter) {
      this.handedOut();
      this.resolveWaiter(frame);
      return;
    }
    if (this.pending) {
      this.totals.skipped++;
      this.rates.skipped.add(mono);
      this.pool.give(this.pending.data);
    }
    this.pending = frame;
  }

  private currentLetterbox(): Letterbox | undefined {
    if (this.target.resize !== 'letterbox') return undefined;
    const key = `${this.sourceW}x${this.sourceH}`;
    if (key !== this.letterboxKey) {
      const g = letterboxGeometry(this.sourceW, this.sourceH, this.target.width, this.target.height);
      this.letterbox = { scale: g.scale, pad_x: g.pad_x, pad_y: g.pad_y };
      this.letterboxKey = key;
    }
    return this.letterbox;
  }

  private motionGate(letterbox: Letterbox | undefined): MotionGate {
    const { width: w, height: h } = this.target;
    const key = letterbox ? `${letterbox.pad_x},${letterbox.pad_y}` : 'full';
    if (!this.gate || key !== this.gateKey) {
      const m = this.cam.motion;
      const region = letterbox ? { x: letterbox.pad_x, y: letterbox.pad_y, width: w - 2 * letterbox.pad_x, height: h - 2 * letterbox.pad_y } : undefined;
      this.gate = new MotionGate({ threshold: m.threshold, pixel_delta: m.pixel_delta, force_interval_ms: m.force_interval_s * 1000 }, w, h, region);
      this.gateKey = key;
    }
    return this.gate;
  }

  private handedOut(): void {
    this.totals.processed++;
    this.rates.process.add(performance.now());
  }

  private resolveWaiter(frame: Frame | null): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    w.cleanup();
    w.resolve(frame);
  }

  /** A frame waiting from before a stall or disconnect is stale: nobody should detect on it. */
  private dropPending(): void {
    if (this.pending) this.pool.give(this.pending.data);
    this.pending = null;
  }

  private setStatus(state: CameraState, reason: CameraReason | null, detail: string | null): void {
    const cur = this.currentStatus;
    if (cur.state === state && cur.reason === reason) return;
    this.currentStatus = { camera: this.cam.id, state, reason, detail, since_ms: cur.state === state ? cur.since_ms : Date.now() };
    const level = state === 'online' || state === 'starting' ? 'info' : 'warn';
    if (state !== 'online') this.log[level]({ state, reason, detail }, `camera ${state}${reason ? ` (${reason})` : ''}`);
    this.emit('status', this.status());
  }
}
