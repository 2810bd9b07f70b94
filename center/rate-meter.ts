// Message rate of the receiver (and row rate of a sink): counts per whole second, the mean of the last 5 complete seconds and the peak.
// Not core/time's EventWindow: that keeps one timestamp per message, too many at fleet rates.
const WINDOW_S = 5;

export class RateMeter {
  /** Messages counted since the start. */
  total = 0;
  private readonly perSecond: number[] = [];
  private currentSecond = 0;
  private currentCount = 0;
  private peak = 0;

  /** `n` messages (default one) at `now` (ms since epoch). */
  add(now: number, n = 1): void {
    this.roll(now);
    this.currentCount += n;
    this.total += n;
  }

  /** Closes the seconds that ended before `now`; the periodic tick calls it so quiet seconds count as 0. */
  roll(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec === this.currentSecond) return;
    if (this.currentSecond !== 0) {
      this.perSecond.push(this.currentCount);
      this.peak = Math.max(this.peak, this.currentCount);
      for (let s = this.currentSecond + 1; s < sec && this.perSecond.length <= WINDOW_S; s++) this.perSecond.push(0);
      while (this.perSecond.length > WINDOW_S) this.perSecond.shift();
    }
    this.currentSecond = sec;
    this.currentCount = 0;
  }

  /** Mean messages per second over the last 5 complete seconds. */
  get msgsPerS(): number {
    if (this.perSecond.length === 0) return 0;
    return Math.round(this.perSecond.reduce((a, b) => a + b, 0) / this.perSecond.length);
  }

  /** Highest count of one complete second. */
  get peakPerS(): number {
    return this.peak;
  }
}
