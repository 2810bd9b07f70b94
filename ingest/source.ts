// One camera: a supervised ffmpeg child pulling RTSP (or looping a file), decoding and scaling to the
// detector's input size, raw RGB frames on its stdout. The ffmpeg runs (ffmpeg-run.ts) and their
// supervision (ffmpeg-supervisor.ts), the consumer's latest-frame slot (latest-frame.ts) and the counters
// (counters.ts) are classes of their own; this one shapes frames (letterbox, motion gate) and owns the status.
// With a recording directory the same ffmpeg also records the camera's ring (recording.ts).
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import type { CameraConfig } from '../config/schema/index.js';
import { DEFAULT_BACKOFF, type BackoffOptions } from '../core/time.js';
import { findSetpriv, type ParentDeathMode } from './child.js';
import { CameraCounters } from './counters.js';
import { CameraError } from './errors.js';
import { buildFfmpegPlan, letterboxGeometry, type FrameTarget } from './ffmpeg-args.js';
import { makeScrubber } from './ffmpeg-stderr.js';
import { FfmpegSupervisor } from './ffmpeg-supervisor.js';
import { FramePool } from './frames.js';
import { LatestFrame } from './latest-frame.js';
import { MotionGate } from './motion.js';
import { RecordingRing, type RecordingRingOptions, type RecordingStats } from './recording.js';
import type { CameraReason, CameraState, CameraStats, CameraStatus, Frame, Letterbox } from './types.js';

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
  /**
   * Where recording rings live: the camera's (when its `recording.enabled`) is `<dir>/<camera id>/`. Without
   * it nothing is recorded.
   */
  recording?: { dir: string } & RecordingRingOptions;
}

type Events = { status: [CameraStatus] };

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
  private readonly stallTimeoutMs: number;
  private readonly pool: FramePool;
  private readonly counters = new CameraCounters();
  private readonly consumer: LatestFrame;
  private readonly ffmpeg: FfmpegSupervisor;
  private ring: RecordingRing | undefined;

  private running = false;
  private stopping: Promise<void> | null = null;
  private gate: MotionGate | null = null;
  private gateKey = '';
  private letterbox: Letterbox | undefined;
  private letterboxKey = '';
  private sourceW: number;
  private sourceH: number;
  private warnedSize = false;
  private currentStatus: CameraStatus;

  constructor(
    private readonly cam: CameraConfig,
    private readonly target: FrameTarget,
    log: Logger,
    private readonly opts: CameraSourceOptions = {},
  ) {
    super();
    this.name = `camera:${cam.id}`;
    this.log = log.child({ mod: 'camera', camera: cam.id });
    const frameBytes = target.width * target.height * 3;
    this.pool = new FramePool(frameBytes, 2);
    this.stallTimeoutMs = opts.stallTimeoutMs ?? (cam.stall_timeout_s !== undefined ? cam.stall_timeout_s * 1000 : Math.max(5_000, 5_000 / cam.detection_fps));
    this.consumer = new LatestFrame(this.name, this.pool, this.counters);
    this.ffmpeg = new FfmpegSupervisor(
      {
        ffmpegPath: opts.ffmpegPath ?? 'ffmpeg',
        parentDeath: opts.parentDeath ?? 'setpriv',
        backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
        stallTimeoutMs: this.stallTimeoutMs,
        startTimeoutMs: opts.startTimeoutMs ?? Math.max(20_000, 2 * this.stallTimeoutMs),
        stopGraceMs: opts.stopGraceMs ?? 2_000,
        stableAfterMs: opts.stableAfterMs ?? 10_000,
        frameBytes,
        alloc: () => this.pool.take(),
        recycle: (data) => this.pool.give(data),
      },
      this.counters,
      this.log,
      {
        frame: (data, mono, wall) => this.onFrame(data, mono, wall),
        timing: (run, pts, wall, mono) => this.ring?.timing(run, pts, wall, mono),
        recording: (run, line) => this.ring?.line(run, line),
        recordingEnded: (run) => this.ring?.ended(run),
        online: (ms) => this.onOnline(ms),
        status: (state, reason, detail) => this.setStatus(state, reason, detail),
        stale: () => this.consumer.drop(),
        sourceSize: (w, h) => this.setSourceSize(w, h),
      },
    );
    this.sourceW = cam.frame.width;
    this.sourceH = cam.frame.height;
    this.currentStatus = { camera: cam.id, state: 'starting', reason: null, detail: null, since_ms: Date.now() };
    const rec = opts.recording;
    if (rec && cam.recording.enabled) {
      const { dir, ...ringOpts } = rec;
      this.ring = new RecordingRing(cam.id, cam.recording, join(dir, cam.id), this.log, (why) => this.ffmpeg.restart(why), ringOpts);
    }
  }

  /** The recording ring's directory (its index.json), when this camera records. */
  get recordingDir(): string | undefined {
    return this.ring?.dir;
  }

  /** The recording ring's figures, null when this camera does not record. */
  recordingStats(): RecordingStats | null {
    return this.ring?.stats() ?? null;
  }

  /** Spawns ffmpeg and returns; frames and status follow. A camera that is down does not fail the start. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.running) return;
    if (this.stopping) await this.stopping; // a restart waits for the previous ffmpeg to be gone
    if (signal?.aborted) throw new CameraError('START_ABORTED', `${this.name}: start aborted`);
    if (this.running) return;
    // Throws CameraConfigError on a URL carrying credentials or line breaks.
    const planOpts = { socketTimeoutMs: this.stallTimeoutMs + 5_000 };
    const plan = buildFfmpegPlan(this.cam, this.target, planOpts);
    if (this.ring) {
      // A ring that cannot start (directory not writable) must not keep the camera from running.
      await this.ring.start().catch((err: unknown) => {
        this.log.error({ err: errorMessage(err), dir: this.ring!.dir }, 'recording ring unavailable: the camera runs without recording');
        this.ring = undefined;
      });
    }
    this.running = true;
    this.consumer.open();
    if ((this.opts.parentDeath ?? 'setpriv') === 'setpriv' && !findSetpriv()) {
      this.log.warn('setpriv not found: ffmpeg is not killed by the kernel if the agent dies (install util-linux)');
    }
    // Always announce the start (also a restart after stop()), even though the constructor already said 'starting'.
    this.currentStatus = { camera: this.cam.id, state: 'starting', reason: null, detail: null, since_ms: Date.now() };
    this.emit('status', this.status());
    this.log.info(
      { input: plan.display, transport: this.cam.transport, fps: this.cam.detection_fps, size: `${this.target.width}x${this.target.height}`, resize: this.target.resize, stall_timeout_ms: this.stallTimeoutMs },
      'camera starting',
    );
    this.ffmpeg.start(() => (this.ring ? buildFfmpegPlan(this.cam, this.target, { ...planOpts, recording: this.ring.beginRun() }) : plan), makeScrubber(this.cam.password));
  }

  /** Stops ffmpeg (SIGTERM, SIGKILL after the grace period) and waits until it has exited. Idempotent. */
  stop(): Promise<void> {
    this.consumer.close();
    if (!this.running) return this.stopping ?? Promise.resolve();
    this.running = false;
    this.consumer.drop();
    const stopping = this.ffmpeg
      .stop()
      .then(() => this.ring?.stop())
      .then(() => this.setStatus('offline', 'stopped', 'camera source stopped'))
      .finally(() => {
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
    return this.consumer.next(signal);
  }

  /** A frame handed out earlier, done with (FrameProducer.release): its buffer takes a later frame. */
  release(frame: Frame): void {
    this.pool.give(frame.data);
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
    return {
      camera: this.cam.id,
      state: this.currentStatus.state,
      ...this.counters.figures(),
      ffmpeg_pid: this.ffmpeg.pid,
      source_width: this.sourceW,
      source_height: this.sourceH,
    };
  }

  private onOnline(first_frame_ms: number): void {
    this.log.info({ first_frame_ms: Math.round(first_frame_ms), source: `${this.sourceW}x${this.sourceH}` }, 'camera online');
    this.setStatus('online', null, null);
  }

  /** A frame from ffmpeg: counted, motion-gated, tagged with its geometry and offered to the consumer. */
  private onFrame(data: Uint8Array, mono: number, wall: number): void {
    const seq = this.counters.frame(mono);
    const letterbox = this.currentLetterbox();
    if (this.cam.motion.enabled && !this.motionGate(letterbox).check(data, mono)) {
      this.counters.motionSkipped(mono);
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
      seq,
    };
    if (letterbox) frame.letterbox = letterbox;
    this.consumer.offer(frame);
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

  private setStatus(state: CameraState, reason: CameraReason | null, detail: string | null): void {
    const cur = this.currentStatus;
    if (cur.state === state && cur.reason === reason) return;
    this.currentStatus = { camera: this.cam.id, state, reason, detail, since_ms: cur.state === state ? cur.since_ms : Date.now() };
    const level = state === 'online' || state === 'starting' ? 'info' : 'warn';
    if (state !== 'online') this.log[level]({ state, reason, detail }, `camera ${state}${reason ? ` (${reason})` : ''}`);
    this.emit('status', this.status());
  }
}
