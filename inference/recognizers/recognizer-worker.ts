/**
 * The main-thread side every recognizer shares: one worker thread holding the models, a bounded queue of crops
 * in front of it (one run at a time in the thread), a stuck timer on the run in flight, and replacement of a
 * crashed or stuck worker until too many failures in the window make the recognizer give up. A second stage is
 * optional: its failures reject its own crops and never reach the detector or the tracker.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../../core/log.js';
import { EventWindow } from '../../core/time.js';
import type { RgbFrame } from '../../ingest/frame.js';
import { startOrtWorker } from '../ort.js';
import { deserializeRecognizerError, RecognizerError } from './errors.js';
import type { FromRecognizerWorker, RecognizeMessage, RecognizerWorkerDebug, RecognizerWorkerInit } from './protocol.js';

export interface RecognizerWorkerOptions<Init> {
  /** Thread name and log field. */
  name: string;
  /** The worker module as its `.js` URL (the `.ts` source is used when not compiled). */
  script: URL;
  /** Passed to the worker's engine factory. */
  init: Init;
  /** A run longer than this gets the worker terminated and replaced, ms. Default 10 000. */
  stuck_timeout_ms?: number;
  /** Model load allowed, ms. Default 60 000. */
  load_timeout_ms?: number;
  /** Crops waiting behind the one in flight; more are rejected with RECOGNIZER_BUSY. Default 8. */
  max_queue?: number;
  /** Worker failures within restart_window_ms after which the recognizer gives up. Default 5. */
  max_restarts?: number;
  restart_window_ms?: number;
  /** Test hooks (crash, hang); never from the config file. */
  debug?: RecognizerWorkerDebug;
}

export interface RecognizerWorkerStats {
  reads: number;
  run_errors: number;
  busy_rejections: number;
  restarts: number;
  queued: number;
  /** The worker thread exists and has not exited. */
  thread_alive: boolean;
  /** How the last worker ended on stop: it exited by itself, or had to be terminated. */
  last_close: 'closed' | 'terminated' | null;
  /** The last run's time inside the worker, ms. */
  last_run_ms: number | null;
  failed: boolean;
}

/** How long a closing worker may take to finish its run and exit before it is terminated. */
const CLOSE_GRACE_MS = 5_000;

interface Job {
  msg: RecognizeMessage;
  resolve: (r: unknown) => void;
  reject: (e: RecognizerError) => void;
}

interface Thread {
  worker: Worker;
  exited: boolean;
  ready: boolean;
  exit: Promise<void>;
  loading?: { resolve: () => void; reject: (e: RecognizerError) => void };
}

export class RecognizerWorker<Init, Result> {
  private thread: Thread | undefined;
  private active = false;
  private failed: RecognizerError | undefined;
  private readonly queue: Job[] = [];
  private inflight: (Job & { timer: NodeJS.Timeout }) | undefined;
  private nextId = 1;
  private readonly failures: EventWindow;
  private readonly counts = { reads: 0, run_errors: 0, busy_rejections: 0, restarts: 0 };
  private lastClose: 'closed' | 'terminated' | null = null;
  private lastRunMs: number | null = null;

  constructor(
    private readonly o: RecognizerWorkerOptions<Init>,
    private readonly log: Logger,
  ) {
    this.failures = new EventWindow(o.restart_window_ms ?? 600_000, Math.max(64, o.max_restarts ?? 5));
  }

  stats(): RecognizerWorkerStats {
    return {
      ...this.counts,
      queued: this.queue.length + (this.inflight ? 1 : 0),
      thread_alive: this.thread !== undefined && !this.thread.exited,
      last_close: this.lastClose,
      last_run_ms: this.lastRunMs,
      failed: this.failed !== undefined,
    };
  }

  /** Starts the worker and waits for its models; a failed or aborted start leaves no thread behind. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.active) return;
    this.active = true;
    this.failed = undefined;
    try {
      await this.spawn(signal);
    } catch (err) {
      this.active = false;
      throw err;
    }
  }

  /** Rejects the crops queued and in flight (RECOGNIZER_NOT_RUNNING) and lets the worker exit by itself. */
  async stop(): Promise<void> {
    this.active = false;
    const stopped = new RecognizerError('RECOGNIZER_NOT_RUNNING', `${this.o.name} stopped`);
    this.settleInflight(stopped);
    for (const job of this.queue.splice(0)) job.reject(stopped);
    const t = this.thread;
    this.thread = undefined;
    t?.loading?.reject(stopped); // a start or a replacement still loading its models
    if (t) this.lastClose = await this.closeThread(t);
  }

  /** Queues one crop (its bytes are copied: the caller keeps its frame). */
  run(crop: RgbFrame): Promise<Result> {
    if (this.failed) return Promise.reject(this.failed);
    if (!this.active) return Promise.reject(new RecognizerError('RECOGNIZER_NOT_RUNNING', `${this.o.name} is not running`));
    const { width, height, data } = crop;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || data.length !== width * height * 3) {
      return Promise.reject(new RecognizerError('RECOGNIZER_BAD_CROP', `${this.o.name}: crop is ${width}x${height} with ${data.length} bytes; expected ${width}x${height}x3 packed RGB`));
    }
    if (this.queue.length >= (this.o.max_queue ?? 8)) {
      this.counts.busy_rejections++;
      return Promise.reject(new RecognizerError('RECOGNIZER_BUSY', `${this.o.name}: ${this.queue.length} crops already waiting; crop dropped`));
    }
    const buffer = data.slice().buffer;
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ msg: { type: 'run', id: this.nextId++, buffer, width, height }, resolve: (r) => resolve(r as Result), reject });
      this.pump();
    });
  }

  private spawn(signal?: AbortSignal): Promise<void> {
    const init: RecognizerWorkerInit<Init> = { engine: this.o.init, debug: this.o.debug };
    const worker = startOrtWorker(this.o.script, { workerData: init, name: this.o.name });
    const t: Thread = { worker, exited: false, ready: false, exit: new Promise((resolve) => worker.once('exit', () => resolve())) };
    void t.exit.then(() => (t.exited = true));
    this.thread = t;
    worker.on('message', (m: FromRecognizerWorker) => this.onMessage(t, m));
    // Listeners stay for the thread's life: a late 'error' of a closed worker must not become uncaught.
    worker.on('error', (err) => this.onDeath(t, new RecognizerError('RECOGNIZER_CRASHED', `${this.o.name} worker crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.onDeath(t, new RecognizerError('RECOGNIZER_CRASHED', `${this.o.name} worker exited with code ${code}`)));
    const loadMs = this.o.load_timeout_ms ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const loaded = new Promise<void>((resolve, reject) => {
      t.loading = { resolve, reject };
      timer = setTimeout(() => reject(new RecognizerError('RECOGNIZER_STUCK', `${this.o.name} did not load its models within ${loadMs} ms`)), loadMs);
      timer.unref();
      onAbort = () => reject(new RecognizerError('RECOGNIZER_NOT_RUNNING', `${this.o.name} start aborted`));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    return loaded.then(
      () => {
        t.loading = undefined;
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        this.pump();
      },
      async (err: RecognizerError) => {
        t.loading = undefined;
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        if (this.thread === t) this.thread = undefined;
        this.lastClose = await this.closeThread(t);
        throw err;
      },
    );
  }

  private onMessage(t: Thread, m: FromRecognizerWorker): void {
    if (t !== this.thread) return;
    if (m.type === 'ready') {
      t.ready = true;
      t.loading?.resolve();
      return;
    }
    if (m.type === 'init_error') {
      t.loading?.reject(deserializeRecognizerError(m.error));
      return;
    }
    const f = this.inflight;
    if (!f || f.msg.id !== m.id) return;
    clearTimeout(f.timer);
    this.inflight = undefined;
    if (m.type === 'result') {
      this.counts.reads++;
      this.lastRunMs = m.run_ms;
      f.resolve(m.result);
    } else {
      this.counts.run_errors++;
      f.reject(deserializeRecognizerError(m.error));
    }
    this.pump();
  }

  private onDeath(t: Thread, err: RecognizerError): void {
    if (t !== this.thread) return;
    if (t.loading) return t.loading.reject(err);
    this.thread = undefined;
    this.fail(err);
  }

  /** Posts the next queued crop when the worker is ready and idle. */
  private pump(): void {
    const t = this.thread;
    if (!this.active || this.inflight || !t?.ready) return;
    const job = this.queue.shift();
    if (!job) return;
    const timer = setTimeout(() => this.onStuck(job.msg.id), this.o.stuck_timeout_ms ?? 10_000);
    timer.unref();
    this.inflight = { ...job, timer };
    t.worker.postMessage(job.msg, [job.msg.buffer]);
  }

  private onStuck(id: number): void {
    if (this.inflight?.msg.id !== id) return;
    const t = this.thread;
    this.thread = undefined;
    // A thread blocked in a run does not answer `close`; terminating is the only way left (a thread hung inside
    // ONNX Runtime may take the process down with it: then systemd restarts the agent, as for the detector).
    void t?.worker.terminate().catch(() => undefined);
    this.fail(new RecognizerError('RECOGNIZER_STUCK', `${this.o.name} run exceeded ${this.o.stuck_timeout_ms ?? 10_000} ms; worker terminated`));
  }

  private settleInflight(err: RecognizerError): void {
    const f = this.inflight;
    this.inflight = undefined;
    if (!f) return;
    clearTimeout(f.timer);
    f.reject(err);
  }

  /** The worker is gone: rejects the crop in flight, then starts another worker or gives up. */
  private fail(err: RecognizerError): void {
    this.settleInflight(err);
    if (!this.active) return;
    this.failures.add();
    const inWindow = this.failures.count();
    if (inWindow >= (this.o.max_restarts ?? 5)) {
      this.failed = new RecognizerError('RECOGNIZER_FAILED', `${this.o.name} worker failed ${inWindow} times (last: ${err.message}); giving up`, { cause: err });
      this.log.error({ recognizer: this.o.name, err: err.message }, 'recognizer gave up');
      for (const job of this.queue.splice(0)) job.reject(this.failed);
      return;
    }
    this.counts.restarts++;
    this.log.warn({ recognizer: this.o.name, err: err.message, restarts: this.counts.restarts }, 'recognizer worker failed; starting another');
    this.spawn().catch((e: unknown) => this.fail(e instanceof RecognizerError ? e : new RecognizerError('RECOGNIZER_CRASHED', String(e))));
  }

  /** Asks the thread to finish and exit; terminates it only if it has not after the grace. */
  private async closeThread(t: Thread, graceMs = CLOSE_GRACE_MS): Promise<'closed' | 'terminated'> {
    if (t.exited) return 'closed';
    try {
      t.worker.postMessage({ type: 'close' });
    } catch {
      // the port is already closed: the thread is on its way out
    }
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([t.exit.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
    clearTimeout(timer);
    if (inTime) return 'closed';
    this.log.warn({ recognizer: this.o.name, grace_ms: graceMs }, 'recognizer worker did not exit in time; terminating it');
    await t.worker.terminate().catch(() => undefined);
    return 'terminated';
  }
}
