// The detector's worker under supervision: one run at a time, a stuck run or a dead thread gets the worker
// replaced, too many replacements in the window are fatal.
import { performance } from 'node:perf_hooks';
import type { DetectorConfig } from '../../config/schema/detector.js';
import type { Logger } from '../../core/log.js';
import { backoffDelay, EventWindow } from '../../core/time.js';
import { deserializeError, DetectorError } from './errors.js';
import type { ModelInfo } from './pipeline.js';
import type { RunMessage, RunReply, WorkerInit } from './protocol.js';
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

/** A run's reply with the round trip measured here. */
export interface RunOutcome {
  reply: Extract<RunReply, { type: 'result' }>;
  /** From handing the frame to the worker until its reply was back. */
  total_ms: number;
}

interface InFlight {
  id: number;
  cameraId: string;
  sentAt: number;
  timer: NodeJS.Timeout;
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
 * Owns the worker host, the run in flight with its stuck timer, and the restarts. A run longer than
 * stuck_timeout_s gets the worker killed (its thread is hung) and replaced; a dead worker is replaced;
 * the run in flight rejects (DETECTOR_STUCK / DETECTOR_CRASHED). `stop()` closes the worker gracefully.
 */
export class SupervisedWorker {
  private host: WorkerHost | undefined;
  private init: WorkerInit | undefined;
  private inflight: InFlight | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private active = false;
  private readonly history: RestartHistory;

  constructor(
    private readonly cfg: SupervisionConfig,
    private readonly log: Logger,
    private readonly hooks: SupervisionHooks,
  ) {
    this.history = new RestartHistory(cfg.restart_window_s, cfg.max_restarts);
  }

  /** A worker has loaded its model and nothing is in flight. */
  get idle(): boolean {
    return this.active && !this.inflight && this.host?.ready === true;
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

  /** Rejects the run in flight and closes the worker (it leaves ONNX Runtime first; terminated only after a grace). */
  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.restartTimer);
    this.settleInflight(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped'));
    const host = this.host;
    this.host = undefined;
    await host?.close();
  }

  /**
   * Hands one run to the worker (only when `idle`). Throws when it cannot be posted; the promise rejects
   * with the run's error, or DETECTOR_STUCK / DETECTOR_CRASHED / DETECTOR_NOT_RUNNING.
   */
  run(msg: RunMessage, transfer: ArrayBuffer[]): Promise<RunOutcome> {
    const host = this.host;
    if (!this.idle || !host) throw new DetectorError('DETECTOR_NOT_RUNNING', 'detector worker is busy or not ready');
    host.post(msg, transfer);
    return new Promise<RunOutcome>((resolve, reject) => {
      const timer = setTimeout(() => this.onStuck(msg.id), this.cfg.stuck_timeout_s * 1000);
      timer.unref();
      this.inflight = { id: msg.id, cameraId: msg.camera_id, sentAt: performance.now(), timer, resolve, reject };
    });
  }

  private async spawn(signal?: AbortSignal): Promise<ModelInfo> {
    const host: WorkerHost = new WorkerHost(this.init!, {
      reply: (msg) => this.onReply(host, msg),
      death: (err) => this.failWorker('crash', err),
    }, this.log);
    this.host = host;
    return host.start(Math.max(30_000, this.cfg.stuck_timeout_s * 1000), signal);
  }

  private onReply(host: WorkerHost, msg: RunReply): void {
    const f = this.inflight;
    if (host !== this.host || !f || f.id !== msg.id) return;
    clearTimeout(f.timer);
    this.inflight = undefined;
    if (msg.type === 'result') {
      this.history.succeeded();
      f.resolve({ reply: msg, total_ms: performance.now() - f.sentAt });
    } else {
      f.reject(deserializeError(msg.error));
    }
  }

  private onStuck(id: number): void {
    const f = this.inflight;
    if (!f || f.id !== id) return;
    const err = new DetectorError('DETECTOR_STUCK', `detector run on camera ${f.cameraId} exceeded stuck_timeout_s (${this.cfg.stuck_timeout_s} s); worker restarted`);
    this.failWorker('stuck', err);
  }

  private settleInflight(err: DetectorError): void {
    const f = this.inflight;
    this.inflight = undefined;
    if (!f) return;
    clearTimeout(f.timer);
    f.reject(err);
  }

  /** Drops the worker, rejects the run in flight, and restarts after a delay or gives up after max_restarts. */
  private failWorker(reason: RestartReason, err: DetectorError): void {
    if (!this.active) return;
    const host = this.host;
    this.host = undefined;
    // A stuck thread does not answer `close`; a dead or unloaded one has nothing left in ONNX Runtime.
    if (reason === 'stuck') host?.kill();
    else void host?.close();
    this.settleInflight(err);
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
