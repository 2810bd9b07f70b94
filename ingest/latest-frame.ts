// The consumer's side of a camera: one waiting frame, replaced by a newer one (latest frame wins).
import { CameraError } from './errors.js';
import type { CameraCounters } from './counters.js';
import type { FramePool } from './frames.js';
import type { Frame } from './types.js';

interface Waiter {
  resolve: (f: Frame | null) => void;
  cleanup: () => void;
}

/**
 * Holds the newest frame for one consumer. A frame that arrives while the consumer is busy replaces the
 * waiting one (its buffer goes back to the pool; counted as skipped). Closed, `next()` answers null.
 */
export class LatestFrame {
  private pending: Frame | null = null;
  private waiter: Waiter | null = null;
  /** stop() was called (and no start() since). Before the first start() next() waits. */
  private closed = false;

  constructor(
    private readonly name: string,
    private readonly pool: FramePool,
    private readonly counters: CameraCounters,
  ) {}

  open(): void {
    this.closed = false;
  }

  /** From now on next() answers null; a waiting next() gets null at once. */
  close(): void {
    this.closed = true;
    this.resolveWaiter(null);
  }

  /** A new frame: to the waiting consumer, else into the slot (replacing the one there). */
  offer(frame: Frame): void {
    if (this.waiter) {
      this.counters.processed();
      this.resolveWaiter(frame);
      return;
    }
    if (this.pending) {
      this.counters.skipped(frame.mono_ms);
      this.pool.give(this.pending.data);
    }
    this.pending = frame;
  }

  /** The newest frame: at once if one waits, else the next to arrive; null once closed or on abort. */
  next(signal?: AbortSignal): Promise<Frame | null> {
    if (this.closed || signal?.aborted) return Promise.resolve(null);
    const f = this.pending;
    if (f) {
      this.pending = null;
      this.counters.processed();
      return Promise.resolve(f);
    }
    if (this.waiter) return Promise.reject(new CameraError('CAMERA_CONSUMER_BUSY', `${this.name}: next() called while another next() is pending`));
    return new Promise((resolve) => {
      const onAbort = (): void => this.resolveWaiter(null);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = { resolve, cleanup: () => signal?.removeEventListener('abort', onAbort) };
    });
  }

  /** A frame waiting from before a stall or disconnect is stale: nobody should detect on it. */
  drop(): void {
    if (this.pending) this.pool.give(this.pending.data);
    this.pending = null;
  }

  private resolveWaiter(frame: Frame | null): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    w.cleanup();
    w.resolve(frame);
  }
}
