// Acknowledged seqs as a sorted set of closed ranges [lo, hi]. Acks mostly arrive in seq order, so a drain of
// thousands of rows becomes a handful of ranges: acknowledging costs no row update, and the outbox stores only
// the changed ranges at each group commit (table `acked`).

export interface AckedRange {
  lo: number;
  hi: number;
  /** Time of the latest ack in the range, ms: the range is purged keep_acked_s after it. */
  acked_at: number;
  /** When the range was opened, ms; -Infinity for ranges loaded from disk (closed). */
  born: number;
  /** `lo` under which the range is stored in the database, or null if not stored yet. */
  stored_lo: number | null;
}

export class AckedRanges {
  private ranges: AckedRange[] = [];
  private readonly dirty = new Set<AckedRange>();
  private readonly removed = new Set<number>();

  /**
   * @param growMs a range accepts neighbours for this long after it was opened, then a new range starts: this
   *   bounds how long the rows of one range outlive keep_acked_s.
   */
  constructor(private readonly growMs: number) {}

  load(rows: readonly { lo: number; hi: number; acked_at: number }[]): void {
    this.ranges = [...rows]
      .sort((a, b) => a.lo - b.lo)
      .map((r) => ({ lo: r.lo, hi: r.hi, acked_at: r.acked_at, born: -Infinity, stored_lo: r.lo }));
    this.dirty.clear();
    this.removed.clear();
  }

  get size(): number {
    return this.ranges.length;
  }

  all(): readonly AckedRange[] {
    return this.ranges;
  }

  /** Index of the last range with lo <= seq, or -1. */
  private floor(seq: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ranges[mid] as AckedRange).lo <= seq) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** The range containing seq, if any. */
  find(seq: number): AckedRange | undefined {
    const r = this.ranges[this.floor(seq)];
    return r && r.hi >= seq ? r : undefined;
  }

  has(seq: number): boolean {
    return this.find(seq) !== undefined;
  }

  /** lo of the first range starting above seq, or +Infinity. */
  nextLoAfter(seq: number): number {
    return this.ranges[this.floor(seq) + 1]?.lo ?? Infinity;
  }

  /** Adds seq; returns false if it was already acknowledged. */
  add(seq: number, now: number): boolean {
    const i = this.floor(seq);
    const prev = this.ranges[i];
    if (prev && prev.hi >= seq) return false;
    const next = this.ranges[i + 1];
    const extend = prev !== undefined && prev.hi === seq - 1 && now - prev.born <= this.growMs;
    const join = next !== undefined && next.lo === seq + 1 && now - next.born <= this.growMs;
    if (extend && join) {
      prev.hi = next.hi;
      prev.acked_at = Math.max(now, next.acked_at);
      this.ranges.splice(i + 1, 1);
      this.forget(next);
      this.dirty.add(prev);
    } else if (extend) {
      prev.hi = seq;
      prev.acked_at = now;
      this.dirty.add(prev);
    } else if (join) {
      if (next.stored_lo !== null) this.removed.add(next.stored_lo);
      next.stored_lo = null;
      next.lo = seq;
      next.acked_at = now;
      this.dirty.add(next);
    } else {
      const r: AckedRange = { lo: seq, hi: seq, acked_at: now, born: now, stored_lo: null };
      this.ranges.splice(i + 1, 0, r);
      this.dirty.add(r);
    }
    return true;
  }

  /** Removes a whole range (its rows were deleted). */
  remove(r: AckedRange): void {
    const i = this.ranges.indexOf(r);
    if (i >= 0) this.ranges.splice(i, 1);
    this.forget(r);
  }

  /** Drops seqs below `newLo` from a range (its oldest rows were deleted). */
  trimFront(r: AckedRange, newLo: number): void {
    if (newLo > r.hi) {
      this.remove(r);
      return;
    }
    if (newLo <= r.lo) return;
    if (r.stored_lo !== null) this.removed.add(r.stored_lo);
    r.stored_lo = null;
    r.lo = newLo;
    this.dirty.add(r);
  }

  /** Changes to write: ranges to delete by stored lo, ranges to upsert. */
  changes(): { deletes: number[]; upserts: AckedRange[] } {
    return { deletes: [...this.removed], upserts: [...this.dirty] };
  }

  /** Call after the changes were committed. */
  persisted(): void {
    for (const r of this.dirty) r.stored_lo = r.lo;
    this.dirty.clear();
    this.removed.clear();
  }

  get pendingChanges(): number {
    return this.dirty.size + this.removed.size;
  }

  clear(): void {
    this.ranges = [];
    this.dirty.clear();
    this.removed.clear();
  }

  private forget(r: AckedRange): void {
    this.dirty.delete(r);
    if (r.stored_lo !== null) this.removed.add(r.stored_lo);
    r.stored_lo = null;
  }
}
