// Raise a condition only once it has held for a while, clear it only once it has been gone for a while: one
// odd check (a passing truck, a keyframe) neither raises nor clears an alarm.

/** A time on both clocks: monotonic for durations, wall for event times. */
export interface Stamp {
  mono: number;
  wall: number;
}

/** An alarm going up or coming down, with the episode it belongs to. */
export interface Transition {
  to: 'raise' | 'clear';
  /** First check that saw the condition. */
  since: Stamp;
  /** Last check that saw it. */
  lastSeen: Stamp;
}

/**
 * One condition's alarm state. `update` takes what a check saw: true (present), false (absent) or undefined
 * (could not be judged, e.g. blur behind a black cover): an undecided check changes nothing.
 */
export class Hysteresis {
  active = false;
  /** First check of the current episode (the condition seen, not interrupted for longer than `gap_ms`). */
  since: Stamp | undefined;
  /** Last check that saw the condition. */
  lastSeen: Stamp | undefined;
  private absentSince: number | undefined;

  constructor(
    private readonly raise_ms: number,
    private readonly clear_ms: number,
    /** While not yet raised, absences up to this long do not end the episode (one odd check). */
    private readonly gap_ms: number,
  ) {}

  update(seen: boolean | undefined, now: Stamp): Transition | undefined {
    if (seen === undefined) return undefined;
    if (seen) {
      this.since ??= now;
      this.lastSeen = now;
      this.absentSince = undefined;
      if (!this.active && now.mono - this.since.mono >= this.raise_ms) {
        this.active = true;
        return { to: 'raise', since: this.since, lastSeen: now };
      }
      return undefined;
    }
    if (!this.active) {
      if (this.lastSeen && now.mono - this.lastSeen.mono > this.gap_ms) this.since = undefined;
      return undefined;
    }
    this.absentSince ??= now.mono;
    if (now.mono - this.absentSince >= this.clear_ms) return this.end();
    return undefined;
  }

  /** Ends the episode now (rebase-reference): a 'clear' when the alarm was up. */
  reset(): Transition | undefined {
    const cleared = this.active ? this.end() : undefined;
    this.since = undefined;
    this.absentSince = undefined;
    return cleared;
  }

  private end(): Transition | undefined {
    const { since, lastSeen } = this;
    this.active = false;
    this.since = undefined;
    this.absentSince = undefined;
    return since && lastSeen ? { to: 'clear', since, lastSeen } : undefined;
  }
}
