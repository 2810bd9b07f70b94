// One detector worker thread: spawned, its model load awaited, its replies passed on, and closed without
// cutting ONNX Runtime short.
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../../core/log.js';
import { startOrtWorker } from '../ort.js';
import { deserializeError, DetectorError } from './errors.js';
import { RunClaims } from './handoff.js';
import type { ModelInfo } from './pipeline.js';
import type { CloseMessage, FromWorker, RunMessage, RunReply, WorkerInit } from './protocol.js';

/**
 * How long a closing worker may take to finish its model load or run and exit before it is terminated.
 * Terminating a thread inside ONNX Runtime aborts the process (SIGABRT, a core for systemd), so this
 * is a last resort for a worker that is hung anyway.
 */
export const CLOSE_GRACE_MS = 5_000;
/** terminate() settles only once the thread is back in JS: a thread hung in native code keeps it pending. */
const TERMINATE_WAIT_MS = 2_000;

export interface WorkerHostHooks {
  /** A run's reply, or its input buffer back when it was cancelled (after the model loaded). */
  reply: (msg: RunReply) => void;
  /** The thread died after its model loaded (crash, uncaught exception, exit). Called at most once. */
  death: (err: DetectorError) => void;
}

interface Loading {
  resolve: (info: ModelInfo) => void;
  reject: (err: DetectorError) => void;
}

/**
 * A worker thread holding one ONNX session. `start()` resolves once the model is loaded; `close()` asks
 * the thread to finish and exit (terminate only after CLOSE_GRACE_MS); `kill()` terminates at once (a
 * stuck run: the thread is lost either way). Once closed or killed its events are ignored.
 */
export class WorkerHost {
  private worker: Worker | undefined;
  private loading: Loading | undefined;
  private loaded = false;
  private detached = false;
  private exited = false;
  private closing: Promise<'closed' | 'terminated'> | undefined;
  /** Who takes a posted run: this thread, or the host taking it back (handoff.ts). */
  readonly claims = new RunClaims();

  constructor(
    private readonly init: WorkerInit,
    private readonly hooks: WorkerHostHooks,
    private readonly log: Logger,
  ) {}

  /** The model is loaded and the host is neither closed nor dead. */
  get ready(): boolean {
    return this.loaded && !this.detached;
  }

  /**
   * Spawns the thread and waits for its session. On a load error, `timeoutMs` passing or `signal` aborting,
   * the thread is closed (it first leaves ONNX Runtime) before this rejects.
   */
  async start(timeoutMs: number, signal?: AbortSignal): Promise<ModelInfo> {
    const aborted = () => new DetectorError('DETECTOR_NOT_RUNNING', 'detector start aborted');
    if (signal?.aborted) throw aborted();
    const w = startOrtWorker(new URL('./worker.js', import.meta.url), { workerData: { ...this.init, claims: this.claims.buffer }, name: 'detector' });
    this.worker = w;
    w.once('exit', () => (this.exited = true));
    w.on('message', (msg: FromWorker) => this.onMessage(msg));
    // Listeners stay for the thread's life: a late 'error' of a closed worker must not become uncaught.
    w.on('error', (err) => this.onDeath(new DetectorError('DETECTOR_CRASHED', `detector worker crashed: ${err.message}`, { cause: err })));
    w.on('exit', (code) => this.onDeath(new DetectorError('DETECTOR_CRASHED', `detector worker exited with code ${code}`)));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<ModelInfo>((resolve, reject) => {
        this.loading = { resolve, reject };
        timer = setTimeout(() => reject(new DetectorError('DETECTOR_STUCK', `detector worker did not load the model within ${timeoutMs / 1000} s`)), timeoutMs);
        timer.unref();
        onAbort = () => reject(aborted());
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      this.loading = undefined;
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Hands a run to the thread, its input buffer transferred; claimable by the thread until cancelled. */
  post(msg: RunMessage): void {
    if (!this.ready || !this.worker) throw new DetectorError('DETECTOR_NOT_RUNNING', 'detector worker is not ready');
    this.claims.offer(msg.id);
    this.worker.postMessage(msg, [msg.input]);
  }

  /**
   * Asks the thread to finish its model load or run, release its session and exit; terminates it only if
   * it has not exited after `graceMs`. A start still waiting for the model rejects. Idempotent.
   */
  close(graceMs = CLOSE_GRACE_MS): Promise<'closed' | 'terminated'> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  /** Terminates the thread without waiting (a stuck run: it does not answer `close`). */
  kill(): void {
    this.detach();
    this.closing ??= Promise.resolve('terminated');
    this.worker?.terminate().catch(() => undefined);
  }

  private async shutdown(graceMs: number): Promise<'closed' | 'terminated'> {
    this.detach();
    const w = this.worker;
    if (!w || this.exited) return 'closed';
    const t0 = performance.now();
    const exited = new Promise<true>((resolve) => w.once('exit', () => resolve(true)));
    try {
      w.postMessage({ type: 'close' } satisfies CloseMessage);
    } catch {
      // the port is already closed: the thread is on its way out
    }
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([exited, new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
    clearTimeout(timer);
    if (inTime) {
      this.log.debug({ close_ms: Math.round(performance.now() - t0) }, 'detector worker closed');
      return 'closed';
    }
    this.log.warn({ grace_ms: graceMs }, 'detector worker did not exit in time; terminating it');
    await Promise.race([w.terminate().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, TERMINATE_WAIT_MS).unref())]);
    return 'terminated';
  }

  /** From now on the thread's messages and death are not reported; a pending start rejects. */
  private detach(): void {
    this.detached = true;
    this.loading?.reject(new DetectorError('DETECTOR_NOT_RUNNING', 'detector stopped while its worker was starting'));
  }

  private onMessage(msg: FromWorker): void {
    if (this.detached) return;
    if (msg.type === 'pinned') {
      if (msg.error) this.log.warn({ cpus: msg.cpus, err: msg.error }, 'detector thread not pinned to detector.cpus: it runs on any CPU');
      else this.log.info({ cpus: msg.cpus }, 'detector thread pinned');
    } else if (msg.type === 'ready') {
      this.loaded = true;
      this.loading?.resolve(msg.info);
    } else if (msg.type === 'init_error') {
      this.loading?.reject(deserializeError(msg.error));
    } else {
      this.hooks.reply(msg);
    }
  }

  private onDeath(err: DetectorError): void {
    if (this.detached) return;
    if (this.loading) return this.loading.reject(err);
    this.detached = true;
    this.hooks.death(err);
  }
}
