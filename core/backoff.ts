/** Exponential reconnect backoff with jitter (mqtt.js only knows a fixed reconnectPeriod). */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly opts: { initial_ms: number; max_ms: number; jitter: number },
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt: min(max, initial * 2^n), minus a random fraction up to `jitter`. */
  next(): number {
    const base = Math.min(this.opts.max_ms, this.opts.initial_ms * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.max(0, Math.round(base * (1 - this.opts.jitter * this.random())));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
