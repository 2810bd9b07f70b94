import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { DEFAULT_MODEL } from '../../core/paths.js';
import type { z } from 'zod';
import { DetectorSchema, type DetectorConfig } from '../../config/schema/detector.js';
import { buildGate, resolveClassNames } from './classes.js';
import type { DecoderOptions } from './decoders/index.js';
import { deserializeError, DetectorError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import { loadImageFrame } from './image.js';
import type { ModelInfo } from './pipeline.js';
import type { FromWorker, RunMessage, WorkerDebug, WorkerInit } from './protocol.js';
import type {
  CameraDetectorStats,
  Detection,
  DetectorFrame,
  DetectorState,
  DetectorStats,
  DetectResult,
  DetectTiming,
  RestartEvent,
  RestartReason,
} from './types.js';

/** The detector section as written in a config file (defaults not yet filled in). */
export type DetectorConfigInput = z.input<typeof DetectorSchema>;

export interface DetectorHooks {
  /** A stuck or crashed worker was terminated and is being restarted (health reports it). */
  onRestart?: (event: RestartEvent) => void;
  /** max_restarts within restart_window_s: the detector gave up. The agent should exit non-zero. */
  onFatal?: (error: DetectorError) => void;
}

export interface DetectorOptions extends DetectorHooks {
  /** Region of interest per camera id, camera pixels: detections whose box centre is outside are dropped. */
  roi?: Record<string, PolygonPoints | undefined>;
  /** Overrides of decoder conventions (other NanoDet exports, tests). */
  decoder_options?: DecoderOptions;
  /** Test hooks (hang, crash, slow worker); never set from the config file. */
  debug?: WorkerDebug;
}

export interface DetectorEvents {
  restart: [RestartEvent];
  fatal: [DetectorError];
}

interface Pending {
  cameraId: string;
  frame: DetectorFrame;
  queuedAt: number;
  resolve: (r: DetectResult) => void;
  reject: (e: Error) => void;
}

interface InFlight {
  id: number;
  pending: Pending;
  sentAt: number;
  timer: NodeJS.Timeout;
}

/** Fixed-size window of recent samples. */
class Samples {
  private readonly buf: Float64Array;
  private n = 0;
  private at = 0;
  constructor(size = 256) {
    this.buf = new Float64Array(size);
  }
  push(v: number): void {
    this.buf[this.at] = v;
    this.at = (this.at + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }
  mean(): number {
    let s = 0;
    for (let i = 0; i < this.n; i++) s += this.buf[i]!;
    return this.n ? s / this.n : 0;
  }
  p95(): number {
    if (!this.n) return 0;
    const sorted = Array.from(this.buf.subarray(0, this.n)).sort((a, b) => a - b);
    return sorted[Math.min(this.n - 1, Math.ceil(0.95 * this.n) - 1)]!;
  }
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const HOUR_MS = 3_600_000;
const STOP_GRACE_MS = 2_000;

/**
 * The object detector: one ONNX Runtime session in one worker thread, shared by all cameras.
 *
 * Scheduling: each camera has a single waiting slot; a newer frame replaces the waiting one (the older call
 * resolves `{status: 'replaced'}` and counts as skipped for that camera). When the worker is free it takes the
 * next camera with a waiting frame in round-robin order, so a fast camera cannot starve a slow one.
 *
 * Supervision: a run longer than stuck_timeout_s, or a worker that dies, gets the worker terminated and
 * restarted; the frame in flight is rejected (DETECTOR_STUCK / DETECTOR_CRASHED), waiting frames stay queued.
 * Each restart is emitted ('restart', onRestart); max_restarts within restart_window_s is fatal ('fatal',
 * onFatal) and the detector stops taking frames (DETECTOR_FAILED).
 */
export class Detector extends EventEmitter<DetectorEvents> implements Module {
  readonly name = 'detector';
  private readonly log: Logger;
  private state: DetectorState = 'stopped';
  private worker: Worker | undefined;
  /** Bumped whenever a worker is dropped, so its late messages and events are ignored. */
  private gen = 0;
  private init: WorkerInit | undefined;
  private info: ModelInfo | undefined;
  /** Fails a spawn() still waiting for its worker's model load (stop, fatal). */
  private abortSpawn: ((err: DetectorError) => void) | undefined;
  private readonly rois = new Map<string, PolygonPoints>();

  private readonly slots = new Map<string, Pending>();
  private readonly order: string[] = [];
  /** Camera served last: the round-robin resumes after it (cameras join `order` as they first submit). */
  private lastServed: string | undefined;
  private inflight: InFlight | undefined;
  private seq = 0;

  private readonly cams = new Map<string, CameraDetectorStats>();
  private runs = 0;
  private errors = 0;
  private restarts = 0;
  private restartTimes: number[] = [];
  private lastRestartReason: RestartReason | null = null;
  private consecutiveFailures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private frameCopies = 0;
  private readonly modelMs = new Samples();
  private readonly preMs = new Samples();
  private readonly postMs = new Samples();
  private readonly totalMs = new Samples();
  private readonly waitMs = new Samples();

  constructor(
    private readonly cfg: DetectorConfig,
    log: Logger,
    private readonly opts: DetectorOptions = {},
  ) {
    super();
    this.log = log.child({ mod: 'detector' });
    for (const [cam, roi] of Object.entries(opts.roi ?? {})) if (roi) this.rois.set(cam, roi);
  }

  /** The model input size frames must be scaled to (ffmpeg's scale target). */
  get inputSize(): { width: number; height: number } {
    return { ...this.cfg.input_size };
  }

  /** How the camera source should fit frames to the input size. */
  get resize(): DetectorConfig['resize'] {
    return this.cfg.resize;
  }

  /** The loaded model's input and outputs (after start). */
  get modelInfo(): ModelInfo | undefined {
    return this.info;
  }

  /** Sets or clears a camera's region of interest (camera pixels); applies to frames dispatched from now on. */
  setRoi(cameraId: string, roi: PolygonPoints | undefined): void {
    if (roi) this.rois.set(cameraId, roi);
    else this.rois.delete(cameraId);
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'stopped') throw new DetectorError('DETECTOR_CONFIG', `detector already ${this.state}`);
    const cfg = this.cfg;
    const class_names = resolveClassNames(cfg);
    const gate = buildGate(cfg, class_names);
    this.init = {
      pipeline: {
        model_path: cfg.model_path ?? DEFAULT_MODEL(),
        threads: cfg.threads,
        spinning: cfg.spinning,
        decoder: cfg.decoder,
        decoder_options: this.opts.decoder_options,
        input_width: cfg.input_size.width,
        input_height: cfg.input_size.height,
        class_names,
        gate,
        nms_iou: cfg.nms_iou,
        min_area_px: cfg.min_area_px,
        max_detections: cfg.max_detections,
      },
      debug: this.opts.debug,
    };
    this.state = 'starting';
    try {
      await this.spawn(signal);
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    const info = this.info!;
    this.log.info(
      { model: this.init.pipeline.model_path, decoder: cfg.decoder, threads: cfg.threads, spinning: cfg.spinning, input: info.input_dims, classes: class_names.length },
      'detector ready',
    );
    this.dispatch();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearTimeout(this.restartTimer);
    const w = this.dropWorker();
    this.rejectAll(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped'));
    if (w) await Promise.race([w.terminate(), new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
  }

  /**
   * Queues a frame for detection. Resolves `done` with detections in camera pixels, or `replaced` when a newer
   * frame of the same camera took its slot first. Rejects with a DetectorError (bad frame, run failed, stuck or
   * crashed worker, not running, failed).
   */
  detect(cameraId: string, frame: DetectorFrame): Promise<DetectResult> {
    if (this.state === 'stopped') return Promise.reject(new DetectorError('DETECTOR_NOT_RUNNING', 'detector is not running'));
    if (this.state === 'failed') return Promise.reject(new DetectorError('DETECTOR_FAILED', 'detector failed; the agent must restart'));
    const { width, height } = this.cfg.input_size;
    if (frame.width !== width || frame.height !== height || frame.data.length !== width * height * 3) {
      return Promise.reject(
        new DetectorError(
          'DETECTOR_BAD_FRAME',
          `frame ${frame.width}x${frame.height} with ${frame.data.length} bytes does not match the model input ${width}x${height} RGB (${width * height * 3} bytes)`,
        ),
      );
    }
    const cam = this.cam(cameraId);
    cam.submitted++;
    return new Promise<DetectResult>((resolve, reject) => {
      const old = this.slots.get(cameraId);
      if (old) {
        cam.skipped++;
        old.resolve({ status: 'replaced', buffer: old.frame.data.buffer });
      } else if (!this.order.includes(cameraId)) {
        this.order.push(cameraId);
      }
      this.slots.set(cameraId, { cameraId, frame, queuedAt: performance.now(), resolve, reject });
      this.dispatch();
    });
  }

  /** Runs the model on one image file (decoded and fitted with sharp, as config.resize says). */
  async detectImage(path: string, cameraId = 'image'): Promise<Extract<DetectResult, { status: 'done' }>> {
    const frame = await loadImageFrame(path, this.cfg.input_size, this.cfg.resize);
    for (;;) {
      const res = await this.detect(cameraId, { ...frame, data: frame.data.slice() });
      if (res.status === 'done') return res;
    }
  }

  stats(): DetectorStats {
    const now = Date.now();
    const model = this.modelMs.mean();
    const pre = this.preMs.mean();
    const post = this.postMs.mean();
    const cameras: Record<string, CameraDetectorStats> = {};
    let skipped = 0;
    for (const [id, c] of this.cams) {
      cameras[id] = { ...c };
      skipped += c.skipped;
    }
    return {
      state: this.state,
      decoder: this.cfg.decoder,
      threads: this.cfg.threads,
      input_width: this.cfg.input_size.width,
      input_height: this.cfg.input_size.height,
      runs: this.runs,
      errors: this.errors,
      restarts: this.restarts,
      restarts_last_hour: this.restartTimes.filter((t) => now - t < HOUR_MS).length,
      last_restart_reason: this.lastRestartReason,
      inference_ms_mean: round(model),
      inference_ms_p95: round(this.modelMs.p95()),
      pre_ms_mean: round(pre, 3),
      post_ms_mean: round(post, 3),
      total_ms_mean: round(this.totalMs.mean()),
      wait_ms_mean: round(this.waitMs.mean()),
      prepost_share_pct: model > 0 ? round((100 * (pre + post)) / model) : 0,
      skipped,
      frame_copies: this.frameCopies,
      cameras,
    };
  }

  // ---- scheduling ----

  private cam(id: string): CameraDetectorStats {
    let c = this.cams.get(id);
    if (!c) this.cams.set(id, (c = { submitted: 0, done: 0, skipped: 0, errors: 0 }));
    return c;
  }

  /** Next camera with a waiting frame, round-robin from the one after the last served. */
  private takeNext(): Pending | undefined {
    const n = this.order.length;
    const from = this.lastServed === undefined ? 0 : this.order.indexOf(this.lastServed) + 1;
    for (let k = 0; k < n; k++) {
      const p = this.slots.get(this.order[(from + k) % n]!);
      if (p) {
        this.lastServed = p.cameraId;
        this.slots.delete(p.cameraId);
        return p;
      }
    }
    return undefined;
  }

  private dispatch(): void {
    while (this.state === 'running' && this.worker && !this.inflight) {
      const p = this.takeNext();
      if (!p) return;
      const { data } = p.frame;
      let buffer: ArrayBufferLike = data.buffer;
      let offset = data.byteOffset;
      const transfer: ArrayBuffer[] = [];
      if (!(data.buffer instanceof ArrayBuffer)) {
        // SharedArrayBuffer: the worker reads it in place; nothing to transfer.
      } else if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
        transfer.push(data.buffer);
      } else {
        // A view into a larger buffer (e.g. a pooled Buffer): transferring would take its neighbours too.
        const copy = data.slice();
        buffer = copy.buffer;
        offset = 0;
        transfer.push(copy.buffer);
        this.frameCopies++;
      }
      const f = p.frame;
      const msg: RunMessage = {
        type: 'run',
        id: ++this.seq,
        camera_id: p.cameraId,
        buffer,
        byte_offset: offset,
        length: data.length,
        width: f.width,
        height: f.height,
        source_width: f.source_width,
        source_height: f.source_height,
        letterbox: f.letterbox,
        roi: this.rois.get(p.cameraId),
      };
      try {
        this.worker.postMessage(msg, transfer);
      } catch (err) {
        this.cam(p.cameraId).errors++;
        this.errors++;
        p.reject(new DetectorError('DETECTOR_BAD_FRAME', `cannot hand the frame to the worker: ${(err as Error).message}`, { cause: err }));
        continue;
      }
      const id = msg.id;
      const timer = setTimeout(() => this.onStuck(id), this.cfg.stuck_timeout_s * 1000);
      timer.unref();
      this.inflight = { id, pending: p, sentAt: performance.now(), timer };
    }
  }

  private onMessage(gen: number, msg: FromWorker): void {
    if (gen !== this.gen) return;
    if (msg.type !== 'result' && msg.type !== 'run_error') return; // ready/init_error: handled by spawn()
    const f = this.inflight;
    if (!f || f.id !== msg.id) return;
    clearTimeout(f.timer);
    this.inflight = undefined;
    const cam = this.cam(f.pending.cameraId);
    if (msg.type === 'result') {
      const now = performance.now();
      const timing: DetectTiming = { ...msg.timing, total_ms: now - f.sentAt, wait_ms: f.sentAt - f.pending.queuedAt };
      this.runs++;
      cam.done++;
      this.consecutiveFailures = 0;
      this.modelMs.push(timing.model_ms);
      this.preMs.push(timing.pre_ms);
      this.postMs.push(timing.post_ms);
      this.totalMs.push(timing.total_ms);
      this.waitMs.push(timing.wait_ms);
      f.pending.resolve({ status: 'done', detections: msg.detections satisfies Detection[], timing, buffer: msg.buffer });
    } else {
      this.errors++;
      cam.errors++;
      f.pending.reject(deserializeError(msg.error));
    }
    this.dispatch();
  }

  private rejectAll(err: DetectorError): void {
    const f = this.inflight;
    this.inflight = undefined;
    if (f) {
      clearTimeout(f.timer);
      f.pending.reject(err);
    }
    for (const p of this.slots.values()) p.reject(err);
    this.slots.clear();
  }

  // ---- worker lifecycle and supervision ----

  private workerInitTimeoutMs(): number {
    return Math.max(30_000, this.cfg.stuck_timeout_s * 1000);
  }

  /** Starts a worker and waits for its session to load. */
  private spawn(signal?: AbortSignal): Promise<void> {
    const gen = ++this.gen;
    const w = createWorker(this.init!);
    this.worker = w;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (this.abortSpawn === settle) this.abortSpawn = undefined;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (!err) return resolve();
        if (this.gen === gen) this.dropWorker();
        reject(err);
      };
      const onAbort = () => settle(new DetectorError('DETECTOR_NOT_RUNNING', 'detector start aborted'));
      const timer = setTimeout(
        () => settle(new DetectorError('DETECTOR_STUCK', `detector worker did not load the model within ${this.workerInitTimeoutMs() / 1000} s`)),
        this.workerInitTimeoutMs(),
      );
      timer.unref();
      this.abortSpawn = settle;
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      w.on('message', (msg: FromWorker) => {
        if (gen !== this.gen) return;
        if (msg.type === 'ready') {
          this.info = msg.info;
          settle();
        } else if (msg.type === 'init_error') {
          settle(deserializeError(msg.error));
        } else {
          this.onMessage(gen, msg);
        }
      });
      w.on('error', (err) => {
        if (gen !== this.gen) return;
        const e = new DetectorError('DETECTOR_CRASHED', `detector worker crashed: ${err.message}`, { cause: err });
        if (!settled) return settle(e);
        this.onWorkerDeath(e);
      });
      w.on('exit', (code) => {
        if (gen !== this.gen) return;
        const e = new DetectorError('DETECTOR_CRASHED', `detector worker exited with code ${code}`);
        if (!settled) return settle(e);
        this.onWorkerDeath(e);
      });
    });
  }

  /** Detaches the current worker (its later events are ignored) and terminates it without waiting. */
  private dropWorker(): Worker | undefined {
    const w = this.worker;
    this.worker = undefined;
    this.gen++;
    const abort = this.abortSpawn;
    this.abortSpawn = undefined;
    abort?.(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped while its worker was starting'));
    if (w) {
      w.removeAllListeners();
      w.on('error', () => undefined); // late errors of a dropped worker must not become uncaught
      // terminate() settles only once the thread returns to JS: a run hung inside native code keeps its thread.
      w.terminate().catch(() => undefined);
    }
    return w;
  }

  private onStuck(id: number): void {
    const f = this.inflight;
    if (!f || f.id !== id) return;
    const err = new DetectorError(
      'DETECTOR_STUCK',
      `detector run on camera ${f.pending.cameraId} exceeded stuck_timeout_s (${this.cfg.stuck_timeout_s} s); worker restarted`,
    );
    this.failWorker('stuck', err);
  }

  private onWorkerDeath(err: DetectorError): void {
    this.failWorker('crash', err);
  }

  /** Rejects the frame in flight, drops the worker and restarts it, or gives up after max_restarts in the window. */
  private failWorker(reason: RestartReason, err: DetectorError): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.dropWorker();
    const f = this.inflight;
    this.inflight = undefined;
    if (f) {
      clearTimeout(f.timer);
      this.errors++;
      this.cam(f.pending.cameraId).errors++;
      f.pending.reject(err);
    }
    const now = Date.now();
    this.restarts++;
    this.consecutiveFailures++;
    this.lastRestartReason = reason;
    this.restartTimes = this.restartTimes.filter((t) => now - t < Math.max(HOUR_MS, this.cfg.restart_window_s * 1000));
    this.restartTimes.push(now);
    const inWindow = this.restartTimes.filter((t) => now - t < this.cfg.restart_window_s * 1000).length;
    if (inWindow >= this.cfg.max_restarts) {
      this.fail(
        new DetectorError(
          'DETECTOR_FAILED',
          `detector worker failed ${inWindow} times within ${this.cfg.restart_window_s} s (last: ${err.message}); giving up`,
          { cause: err },
        ),
      );
      return;
    }
    const event: RestartEvent = { reason, restarts: this.restarts, error: err };
    this.log.warn({ reason, restarts: this.restarts, err }, 'detector worker restarting');
    this.emit('restart', event);
    this.callHook(() => this.opts.onRestart?.(event));
    this.state = 'restarting';
    const delay = this.consecutiveFailures <= 1 ? 0 : Math.min(30_000, 500 * 2 ** (this.consecutiveFailures - 2));
    this.restartTimer = setTimeout(() => {
      this.spawn().then(
        () => {
          if (this.state !== 'restarting') return;
          this.state = 'running';
          this.log.info({ restarts: this.restarts }, 'detector worker restarted');
          this.dispatch();
        },
        (e: unknown) => {
          if (this.state !== 'restarting') return;
          const de = e instanceof DetectorError ? e : new DetectorError('DETECTOR_CRASHED', String(e));
          this.failWorker('init', de);
        },
      );
    }, delay);
  }

  private fail(err: DetectorError): void {
    this.state = 'failed';
    clearTimeout(this.restartTimer);
    this.dropWorker();
    this.rejectAll(err);
    this.log.error({ err }, 'detector failed');
    this.emit('fatal', err);
    this.callHook(() => this.opts.onFatal?.(err));
  }

  private callHook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'detector hook threw');
    }
  }
}

/**
 * The worker script next to this module: compiled `worker.js` under dist/, else (vitest, tsx) `worker.ts`.
 * Node 20 does not apply a Worker's `execArgv: ['--import', 'tsx']` to the worker's entry module
 * (ERR_UNKNOWN_FILE_EXTENSION ".ts", seen on 20.20), so the .ts fallback registers tsx's loader in a tiny
 * eval'd bootstrap first. tsx is a dev dependency: only sources need it.
 */
function createWorker(init: WorkerInit): Worker {
  const js = new URL('./worker.js', import.meta.url);
  const opts = { workerData: init, name: 'detector' };
  if (existsSync(fileURLToPath(js))) return new Worker(js, opts);
  const ts = new URL('./worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}

/**
 * Starts a detector, runs it on one image file and stops it (tests, `doctor`). `cfg` takes config-file
 * input (defaults filled in); without model_path the bundled model is used.
 */
export async function detectImage(
  path: string,
  cfg: DetectorConfigInput = {},
  log?: Logger,
  opts?: DetectorOptions,
): Promise<{ detections: Detection[]; timing: DetectTiming; model: ModelInfo }> {
  const parsed = DetectorSchema.parse(cfg);
  const { silentLogger } = await import('../../core/log.js');
  const d = new Detector({ ...parsed, model_path: parsed.model_path ?? DEFAULT_MODEL() }, log ?? silentLogger(), opts);
  await d.start();
  try {
    const res = await d.detectImage(path);
    return { detections: res.detections, timing: res.timing, model: d.modelInfo! };
  } finally {
    await d.stop();
  }
}
