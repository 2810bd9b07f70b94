// Time helpers every floor uses: bounded waits, reconnect backoff with jitter, sliding-window rates.
import { AgentError } from './errors.js';

/** A wait that passed its bound. The work itself is not cancelled: callers clean up what they started. */
export class TimeoutError extends AgentError {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super('TIMEOUT', `${what} did not answer within ${ms} ms`);
  }
}

/** Rejects with TimeoutError when `p` has not settled after `ms`; the timer never keeps the process alive. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for `p` at most `ms`; never rejects (for best-effort cleanup on a stop path). */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(p, ms, 'cleanup').catch(() => undefined);
}

export interface BackoffOptions {
  /** First delay, ms. */
  initial_ms: number;
  /** Cap, ms. */
  max_ms: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay taken off at random, 0-1, so a fleet (or cameras that failed together) spreads out. */
  jitter: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initial_ms: 500, max_ms: 30_000, factor: 2, jitter: 0.5 };

/** Delay before attempt `attempt` (0-based): capped exponential, jittered downwards. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.max_ms, opts.initial_ms * (opts.factor ?? 2) ** Math.min(attempt, 64));
  return Math.max(0, Math.round(base * (1 - opts.jitter * random())));
}

/** Stateful backoff: `next()` grows the delay, `reset()` after a success (mqtt.js only has a fixed period). */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    return backoffDelay(this.attempt++, this.opts, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

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
