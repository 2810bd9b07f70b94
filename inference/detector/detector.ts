// The detector as the agent sees it: frames in, detections out. The worker thread and its supervision
// (supervised-worker.ts, worker-host.ts), the scheduling (scheduler.ts) and the counters (stats.ts) are
// classes of their own; this one ties them to the config and the detector's state.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { DEFAULT_MODEL } from '../../core/paths.js';
import type { z } from 'zod';
import { DetectorSchema, type DetectorConfig } from '../../config/schema/detector.js';
import { buildGate, resolveClassNames } from './classes.js';
import type { DecoderOptions } from './decoders/index.js';
import { DetectorError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import { nextRunId } from './handoff.js';
import { loadImageFrame } from './image.js';
import type { ModelInfo, PipelineOptions } from './pipeline.js';
import { fillInput } from './input.js';
import type { WorkerDebug, WorkerInit } from './protocol.js';
import { FrameScheduler, type Pending } from './scheduler.js';
import { DetectorCounters } from './stats.js';
import { SupervisedWorker, type RunOutcome } from './supervised-worker.js';
import type { Detection, DetectorFrame, DetectorState, DetectorStats, DetectResult, DetectTiming, RestartEvent } from './types.js';

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

/** The detector's pipeline (worker side) for a detector config: the model, its threads, class names and score gate. */
export function pipelineOptions(cfg: DetectorConfig, decoder_options?: DecoderOptions): PipelineOptions {
  const class_names = resolveClassNames(cfg);
  return {
    model_path: cfg.model_path ?? DEFAULT_MODEL(),
    threads: cfg.threads,
    spinning: cfg.spinning,
    decoder: cfg.decoder,
    ...(decoder_options ? { decoder_options } : {}),
    input_width: cfg.input_size.width,
    input_height: cfg.input_size.height,
    class_names,
    gate: buildGate(cfg, class_names),
    nms_iou: cfg.nms_iou,
    min_area_px: cfg.min_area_px,
    max_detections: cfg.max_detections,
  };
}

/**
 * The object detector: one ONNX Runtime session in one worker thread, shared by all cameras.
 *
 * Scheduling: each camera has a single waiting slot; a newer frame replaces the waiting one (the older call
 * resolves `{status: 'replaced'}` and counts as skipped for that camera). The worker takes the next camera with a
 * waiting frame in round-robin order, so a fast camera cannot starve a slow one.
 *
 * Hand-over (handoff.ts): the main thread pre-processes the next frame (input.ts: a copy of its bytes for a
 * uint8 model, CHW float32 for a float one) and queues it in the worker while the worker still runs the current
 * one, so the worker goes from one session.run to the next without waiting for the main thread. Until the worker
 * starts it, that frame can still be replaced by a newer frame of its camera or overtaken by a camera the
 * round-robin serves first (it is taken back). The frame's bytes are read in place.
 *
 * Supervision: a run longer than stuck_timeout_s, or a worker that dies, gets the worker terminated and
 * restarted; the frame in flight is rejected (DETECTOR_STUCK / DETECTOR_CRASHED), waiting frames stay queued.
 * Each restart is emitted ('restart', onRestart); max_restarts within restart_window_s is fatal ('fatal',
 * onFatal) and the detector stops taking frames (DETECTOR_FAILED).
 *
 * Stopping (also a start aborted by its signal) lets the worker finish its model load or run and exit on its
 * own: terminating a thread inside ONNX Runtime aborts the process.
 */
export class Detector extends EventEmitter<DetectorEvents> implements Module {
  readonly name = 'detector';
  private readonly log: Logger;
  private state: DetectorState = 'stopped';
  private info: ModelInfo | undefined;
  private readonly rois = new Map<string, PolygonPoints>();
  private readonly queue = new FrameScheduler();
  private readonly counters = new DetectorCounters();
  private readonly worker: SupervisedWorker;
  /** The frame queued in the worker behind the running one, while it can still be taken back. */
  private queuedInWorker: Pending | undefined;
  private seq = 0;

  constructor(
    private readonly cfg: DetectorConfig,
    log: Logger,
    private readonly opts: DetectorOptions = {},
  ) {
    super();
    this.log = log.child({ mod: 'detector' });
    for (const [cam, roi] of Object.entries(opts.roi ?? {})) if (roi) this.rois.set(cam, roi);
    this.worker = new SupervisedWorker(cfg, this.log, {
      restarting: (e) => this.onRestarting(e),
      restarted: () => this.onRestarted(),
      failed: (e) => this.onFailed(e),
    });
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
    const init: WorkerInit = {
      pipeline: pipelineOptions(cfg, this.opts.decoder_options),
      ...(cfg.cpus ? { cpus: cfg.cpus } : {}),
      debug: this.opts.debug,
    };
    this.state = 'starting';
    this.log.info({ model: init.pipeline.model_path }, 'detector starting');
    try {
      this.info = await this.worker.start(init, signal);
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    this.log.info(
      { model: init.pipeline.model_path, decoder: cfg.decoder, threads: cfg.threads, spinning: cfg.spinning, input: this.info.input_dims, classes: init.pipeline.class_names.length },
      'detector ready',
    );
    this.dispatch();
  }

  /** Fails every frame, then waits for the worker to leave ONNX Runtime and exit (bounded). */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const stopped = this.worker.stop();
    this.rejectWaiting(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped'));
    await stopped;
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
    const queuedAt = performance.now();
    this.counters.submitted(cameraId, queuedAt);
    return new Promise<DetectResult>((resolve, reject) => {
      // Settled once (the busy share counts the frame as waiting until then).
      let waiting = true;
      const settle = (): boolean => {
        if (!waiting) return false;
        waiting = false;
        this.counters.settled(performance.now());
        return true;
      };
      const p: Pending = {
        cameraId,
        frame,
        queuedAt,
        resolve: (r) => settle() && resolve(r),
        reject: (e) => settle() && reject(e),
      };
      const old = this.queue.offer(p);
      if (old) this.replaced(old);
      this.takeBackIfOvertaken();
      this.dispatch();
    });
  }

  /** Runs the model on one image file (decoded and fitted with sharp, as config.resize says). */
  async detectImage(path: string, cameraId = 'image'): Promise<Extract<DetectResult, { status: 'done' }>> {
    const frame = await loadImageFrame(path, this.cfg.input_size, this.cfg.resize);
    for (;;) {
      const res = await this.detect(cameraId, frame);
      if (res.status === 'done') return res;
    }
  }

  stats(): DetectorStats {
    return this.counters.snapshot(this.state, this.cfg, this.worker.restartFigures, performance.now());
  }

  /** Hands waiting frames to the worker: one to run when it is idle, one to queue behind the running one. */
  private dispatch(): void {
    while (this.state === 'running') {
      const idle = this.worker.idle;
      if (!idle && !this.worker.canQueue) return;
      const p = this.queue.take();
      if (!p) return;
      this.send(p, idle);
    }
  }

  private send(p: Pending, idle: boolean): void {
    const { width, height } = this.cfg.input_size;
    let pre_ms = 0;
    this.seq = nextRunId(this.seq);
    let run: Promise<RunOutcome>;
    try {
      run = this.worker.run({
        id: this.seq,
        cameraId: p.cameraId,
        geometry: p.frame,
        roi: this.rois.get(p.cameraId),
        fill: (input) => {
          const t0 = performance.now();
          fillInput(p.frame.data, input, width, height);
          pre_ms = performance.now() - t0;
        },
      });
    } catch (err) {
      this.counters.failed(p.cameraId);
      p.reject(new DetectorError('DETECTOR_BAD_FRAME', `cannot hand the frame to the worker: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (!idle) this.queuedInWorker = p;
    run.then(
      (o) => this.onOutcome(p, o, pre_ms),
      (err: DetectorError) => this.onRunFailed(p, err),
    );
  }

  /**
   * A frame arrived: the frame queued in the worker must still be the one the round-robin serves next (not
   * replaced by a newer frame of its camera, not overtaken by another camera), else it is taken back, unless the
   * worker has already started it.
   */
  private takeBackIfOvertaken(): void {
    const q = this.queuedInWorker;
    if (!q || this.queue.stillFirst(q) || !this.worker.cancelQueued()) return;
    this.queuedInWorker = undefined;
    this.counters.requeue();
    const superseded = this.queue.putBack(q);
    if (superseded) this.replaced(superseded);
  }

  private replaced(old: Pending): void {
    this.counters.skipped(old.cameraId);
    old.resolve({ status: 'replaced', buffer: old.frame.data.buffer });
  }

  private onOutcome(p: Pending, o: RunOutcome, pre_ms: number): void {
    if (this.queuedInWorker === p) this.queuedInWorker = undefined;
    if (o.status === 'not_started') {
      // Queued behind a run whose worker died: it goes to the next worker, or fails with the detector.
      if (this.state === 'failed') p.reject(new DetectorError('DETECTOR_FAILED', 'detector failed; the agent must restart'));
      else if (this.state === 'stopped') p.reject(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped'));
      else {
        const superseded = this.queue.restore(p);
        if (superseded) this.replaced(superseded);
      }
      this.dispatch();
      return;
    }
    const { reply, total_ms, started_at } = o;
    const timing: DetectTiming = { pre_ms: pre_ms + reply.timing.convert_ms, model_ms: reply.timing.model_ms, post_ms: reply.timing.post_ms, total_ms, wait_ms: Math.max(0, started_at - p.queuedAt) };
    this.counters.done(p.cameraId, timing);
    p.resolve({ status: 'done', detections: reply.detections satisfies Detection[], timing, buffer: p.frame.data.buffer });
    this.dispatch();
  }

  private onRunFailed(p: Pending, err: DetectorError): void {
    if (this.queuedInWorker === p) this.queuedInWorker = undefined;
    // A stop is not the frame's fault; anything else (run error, stuck, crashed) counts against its camera.
    if (err.code !== 'DETECTOR_NOT_RUNNING') this.counters.failed(p.cameraId);
    p.reject(err);
    this.dispatch();
  }

  private rejectWaiting(err: DetectorError): void {
    for (const p of this.queue.drain()) p.reject(err);
  }

  private onRestarting(event: RestartEvent): void {
    this.state = 'restarting';
    this.log.warn({ reason: event.reason, restarts: event.restarts, err: event.error }, 'detector worker restarting');
    this.emit('restart', event);
    this.callHook(() => this.opts.onRestart?.(event));
  }

  private onRestarted(): void {
    if (this.state !== 'restarting') return;
    this.state = 'running';
    this.log.info({ restarts: this.worker.restartFigures.restarts }, 'detector worker restarted');
    this.dispatch();
  }

  private onFailed(err: DetectorError): void {
    this.state = 'failed';
    this.rejectWaiting(err);
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
