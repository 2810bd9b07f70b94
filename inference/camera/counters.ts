// Sliding-window event counters (fps over a few seconds, reconnects over an hour) and the reconnect backoff.

/** Timestamps of recent events in a ring; counts those inside the window. Saturates at `capacity`. */
export class EventWindow {
  private readonly ts: Float64Array;
  private head = 0;
  private size = 0;

  constructor(
    readonly windowMs: number,
    capacity: number,
    private readonly createdMs = performance.now(),
  ) {
    this.ts = new Float64Array(capacity);
  }

  add(nowMs: number = performance.now()): void {
    const cap = this.ts.length;
    if (this.size === cap) {
      this.head = (this.head + 1) % cap; // overwrite the oldest
      this.size--;
    }
    this.ts[(this.head + this.size) % cap] = nowMs;
    this.size++;
  }

  count(nowMs: number = performance.now()): number {
    const cap = this.ts.length;
    const cutoff = nowMs - this.windowMs;
    while (this.size > 0 && this.ts[this.head]! <= cutoff) {
      this.head = (this.head + 1) % cap;
      this.size--;
    }
    return this.size;
  }

  /** Events per second over the window (over the time since creation while that is shorter). */
  rate(nowMs: number = performance.now()): number {
    const n = this.count(nowMs);
    const span = Math.min(this.windowMs, nowMs - this.createdMs);
    return span > 0 ? (n * 1000) / span : 0;
  }
}

export interface BackoffOptions {
  /** First delay, ms. Default 500. */
  initial_ms: number;
  /** Cap, ms. Default 30 000. */
  max_ms: number;
  /** Growth per attempt. Default 2. */
  factor: number;
  /** Fraction of the delay taken off at random, 0-1 (spreads cameras that failed together). Default 0.5. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initial_ms: 500, max_ms: 30_000, factor: 2, jitter: 0.5 };

/** Delay before reconnect attempt `attempt` (0-based): capped exponential, jittered downwards. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.max_ms, opts.initial_ms * opts.factor ** Math.min(attempt, 64));
  return Math.round(base * (1 - opts.jitter * random()));
}
