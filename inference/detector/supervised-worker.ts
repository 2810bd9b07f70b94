// The detector's worker under supervision: the run it is inside plus at most one queued behind it, a stuck run or
// a dead thread gets the worker replaced, too many replacements in the window are fatal.
import { performance } from 'node:perf_hooks';
import type { DetectorConfig } from '../../config/schema/detector.js';
import type { Logger } from '../../core/log.js';
import { backoffDelay, EventWindow } from '../../core/time.js';
import { deserializeError, DetectorError } from './errors.js';
import type { PolygonPoints } from './geometry.js';
import { InputBuffers } from './handoff.js';
import { inputByteLength } from './input.js';
import type { ModelInfo } from './pipeline.js';
import { runMessage, type RunGeometry, type RunReply, type WorkerInit } from './protocol.js';
import type { RestartFigures } from './stats.js';
import type { RestartEvent, RestartReason } from './types.js';
import { WorkerHost } from './worker-host.js';

const HOUR_MS = 3_600_000;
/** Restart delay after consecutive failures: the first at once, then 0.5 s doubling to 30 s. */
const RESTART_BACKOFF = { initial_ms: 500, max_ms: 30_000, jitter: 0 };

export type SupervisionConfig = Pick<DetectorConfig, 'stuck_timeout_s' | 'max_restarts' | 'restart_window_s'>;

export interface SupervisionHooks {
  /** The worker failed (stuck, crashed, did not load) and a new one is on its way. */
  restarting: (event: RestartEvent) => void;
  /** The replacement worker has loaded its model. */
  restarted: () => void;
  /** max_restarts within restart_window_s: no more workers. */
  failed: (err: DetectorError) => void;
}

/** One frame for the worker. */
export interface RunRequest {
  id: number;
  cameraId: string;
  geometry: RunGeometry;
  roi: PolygonPoints | undefined;
  /** Pre-processing, on the calling (main) thread: copies the frame's bytes into the input buffer (input.ts fillInput). */
  fill: (input: ArrayBuffer) => void;
}

/**
 * How a run ended, unless it failed (the promise rejects). `not_started`: it was queued behind a run whose
 * worker died, so it never reached ONNX Runtime; the frame can go to the next worker.
 */
export type RunOutcome =
  | {
      status: 'done';
      reply: Extract<RunReply, { type: 'result' }>;
      /** performance.now() when it became the worker's current run (posted to an idle worker, or the run before it answered). */
      started_at: number;
      /** From started_at until its reply was back. */
      total_ms: number;
    }
  | { status: 'not_started' };

interface Run {
  id: number;
  cameraId: string;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (o: RunOutcome) => void;
  reject: (e: DetectorError) => void;
}

/** Restart counts over the last hour and over restart_window_s; consecutive failures set the delay. */
class RestartHistory {
  private total = 0;
  private consecutive = 0;
  private lastReason: RestartReason | null = null;
  private readonly hour = new EventWindow(HOUR_MS, 1024);
  private readonly window: EventWindow;

  constructor(windowS: number, maxRestarts: number) {
    this.window = new EventWindow(windowS * 1000, Math.max(1024, maxRestarts));
  }

  /** Counts a failure; returns the failures within the window, this one included. */
  record(reason: RestartReason): number {
    const now = performance.now();
    this.total++;
    this.consecutive++;
    this.lastReason = reason;
    this.hour.add(now);
    this.window.add(now);
    return this.window.count(now);
  }

  succeeded(): void {
    this.consecutive = 0;
  }

  delayMs(): number {
    return this.consecutive <= 1 ? 0 : backoffDelay(this.consecutive - 2, RESTART_BACKOFF);
  }

  get restarts(): number {
    return this.total;
  }

  figures(): RestartFigures {
    return { restarts: this.total, restarts_last_hour: this.hour.count(), last_restart_reason: this.lastReason };
  }
}

/**
 * Owns the worker host, its runs and their input buffers, and the restarts. The worker holds the run it is inside
 * (`running`, with its stuck timer) and at most one queued behind it (`queued`: pre-processed and posted, so the
 * worker starts it the moment the running one is answered; cancellable until the worker claims it). A run longer
 * than stuck_timeout_s gets the worker killed (its thread is hung) and replaced; a dead worker is replaced; the
 * running run rejects (DETECTOR_STUCK / DETECTOR_CRASHED), the queued one ends `not_started`. `stop()` closes the
 * worker gracefully.
 */
export class SupervisedWorker {
  private host: WorkerHost | undefined;
  private init: WorkerInit | undefined;
  private running: Run | undefined;
  private queued: Run | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private active = false;
  private readonly history: RestartHistory;
  /** Input buffers, one frame's bytes each (set when a worker is first ready). */
  private inputs: InputBuffers | undefined;

  constructor(
    private readonly cfg: SupervisionConfig,
    private readonly log: Logger,
    private readonly hooks: SupervisionHooks,
  ) {
    this.history = new RestartHistory(cfg.restart_window_s, cfg.max_restarts);
  }

  /** A worker has loaded its model and runs nothing: a run posted now starts at once. */
  get idle(): boolean {
    return this.active && !this.running && this.host?.ready === true;
  }

  /** The worker runs a frame and nothing is queued behind it: a run posted now waits in the worker's queue. */
  get canQueue(): boolean {
    return this.active && this.running !== undefined && !this.queued && this.host?.ready === true;
  }

  /** Id of the run queued behind the running one, if any. */
  get queuedId(): number | undefined {
    return this.queued?.id;
  }

  get restartFigures(): RestartFigures {
    return this.history.figures();
  }

  /** Starts the first worker and waits for its model; an aborted start closes it before rejecting. */
  async start(init: WorkerInit, signal?: AbortSignal): Promise<ModelInfo> {
    this.init = init;
    this.active = true;
    try {
      return await this.spawn(signal);
    } catch (err) {
      this.active = false;
      this.host = undefined;
      throw err;
    }
  }

  /** Rejects the runs in the worker and closes it (it leaves ONNX Runtime first; terminated only after a grace). */
  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.restartTimer);
    const host = this.host;
    this.host = undefined;
    // The queued run is taken back so the thread goes straight to its exit.
    if (this.queued) host?.claims.cancel(this.queued.id);
    const err = new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped');
    this.settle('running', (r) => r.reject(err));
    this.settle('queued', (r) => r.reject(err));
    await host?.close();
  }

  /**
   * Pre-processes a frame into an input buffer and posts it: it runs at once when the worker is `idle`, or is
   * queued behind the running one when `canQueue`. Throws otherwise, or when `fill` throws. The promise
   * rejects with the run's error, or DETECTOR_STUCK / DETECTOR_CRASHED / DETECTOR_NOT_RUNNING.
   */
  run(req: RunRequest): Promise<RunOutcome> {
    const host = this.host;
    if (!host || !(this.idle || this.canQueue)) throw new DetectorError('DETECTOR_NOT_RUNNING', 'detector worker is busy or not ready');
    const pool = this.inputs!;
    const input = pool.take();
    try {
      req.fill(input);
    } catch (err) {
      pool.give(input);
      throw err;
    }
    host.post(runMessage(req.id, req.cameraId, req.geometry, input, req.roi));
    return new Promise<RunOutcome>((resolve, reject) => {
      const r: Run = { id: req.id, cameraId: req.cameraId, startedAt: 0, timer: undefined, resolve, reject };
      if (this.running) this.queued = r;
      else this.begin(r);
    });
  }

  /**
   * Takes the queued run back before the worker claims it (its promise never settles; the caller keeps the
   * frame). False when nothing is queued or the worker has already started it.
   */
  cancelQueued(): boolean {
    const q = this.queued;
    if (!q || !this.host?.claims.cancel(q.id)) return false;
    this.queued = undefined;
    return true;
  }

  private begin(r: Run): void {
    r.startedAt = performance.now();
    r.timer = setTimeout(() => this.onStuck(r.id), this.cfg.stuck_timeout_s * 1000);
    r.timer.unref();
    this.running = r;
  }

  private async spawn(signal?: AbortSignal): Promise<ModelInfo> {
    const host: WorkerHost = new WorkerHost(
      this.init!,
      {
        reply: (msg) => this.onReply(host, msg),
        death: (err) => this.failWorker('crash', err),
      },
      this.log,
    );
    this.host = host;
    const info = await host.start(Math.max(30_000, this.cfg.stuck_timeout_s * 1000), signal);
    // Every model is handed the frame's bytes (input.ts), whatever its input layout.
    const { input_width: w, input_height: h } = this.init!.pipeline;
    this.inputs ??= new InputBuffers(inputByteLength(w, h));
    return info;
  }

  private onReply(host: WorkerHost, msg: RunReply): void {
    this.inputs?.give(msg.input);
    const f = this.running;
    if (msg.type === 'skipped' || host !== this.host || !f || f.id !== msg.id) return;
    clearTimeout(f.timer);
    this.running = undefined;
    // The worker takes the queued run next, without waiting for us: it is the current run from now.
    const next = this.queued;
    this.queued = undefined;
    if (next) this.begin(next);
    if (msg.type === 'result') {
      this.history.succeeded();
      f.resolve({ status: 'done', reply: msg, started_at: f.startedAt, total_ms: performance.now() - f.startedAt });
    } else {
      f.reject(deserializeError(msg.error));
    }
  }

  private onStuck(id: number): void {
    const f = this.running;
    if (!f || f.id !== id) return;
    const err = new DetectorError('DETECTOR_STUCK', `detector run on camera ${f.cameraId} exceeded stuck_timeout_s (${this.cfg.stuck_timeout_s} s); worker restarted`);
    this.failWorker('stuck', err);
  }

  private settle(which: 'running' | 'queued', fn: (r: Run) => void): void {
    const r = this[which];
    this[which] = undefined;
    if (!r) return;
    clearTimeout(r.timer);
    fn(r);
  }

  /** Drops the worker and its runs, and restarts after a delay or gives up after max_restarts. */
  private failWorker(reason: RestartReason, err: DetectorError): void {
    if (!this.active) return;
    const host = this.host;
    this.host = undefined;
    // A stuck thread does not answer `close`; a dead or unloaded one has nothing left in ONNX Runtime.
    if (reason === 'stuck') host?.kill();
    else void host?.close();
    this.settle('running', (r) => r.reject(err));
    this.settle('queued', (r) => r.resolve({ status: 'not_started' }));
    const inWindow = this.history.record(reason);
    if (inWindow >= this.cfg.max_restarts) {
      this.active = false;
      this.hooks.failed(
        new DetectorError('DETECTOR_FAILED', `detector worker failed ${inWindow} times within ${this.cfg.restart_window_s} s (last: ${err.message}); giving up`, { cause: err }),
      );
      return;
    }
    this.hooks.restarting({ reason, restarts: this.history.restarts, error: err });
    this.restartTimer = setTimeout(() => {
      this.spawn().then(
        () => {
          if (this.active) this.hooks.restarted();
        },
        (e: unknown) => {
          if (this.active) this.failWorker('init', e instanceof DetectorError ? e : new DetectorError('DETECTOR_CRASHED', String(e)));
        },
      );
    }, this.history.delayMs());
  }
}
