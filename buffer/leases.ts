// Lease, ack and resend bookkeeping. Leases live in memory only: after a crash every unacknowledged row is sent
// again (at-least-once). Acknowledged seqs are kept as ranges (acked-ranges.ts), stored at the next group commit.
import type Database from 'better-sqlite3';
import { AckedRanges } from './acked-ranges.js';
import { MAX_SEQ, P, toRow, type OutboxRow, type RawRow } from './rows.js';
import type { Statements } from './schema.js';

export interface LeaseOptions {
  /**
   * First seq of the "live" segment (rows appended since the current connection came up); rows below it are
   * the backlog. Live rows come first (by priority, then seq), then the backlog (by priority, oldest first).
   * Default 0: every row is live.
   */
  liveFrom?: number;
  /** Most backlog rows to return (rate limiting of the drain). Default: no limit. */
  maxBacklog?: number;
}

/** Where the statements of the open database come from (throws when the outbox is closed). */
export interface StatementSource {
  readonly statements: Statements;
}

export class Leases {
  readonly acked: AckedRanges;
  /** Leased seq → priority class. */
  private readonly leased = new Map<number, number>();
  // Lease cursors, per segment and priority: every unsent row at or below the cursor is leased or
  // acknowledged, so a lease scan starts just above it.
  private cursors: number[] = [];
  private cursorLiveFrom = -1;

  /**
   * @param ackedGrowMs how long a range of acknowledged seqs accepts neighbours (bounds how long its rows
   *   outlive keep_acked_s).
   */
  constructor(
    private readonly store: StatementSource,
    ackedGrowMs: number,
  ) {
    this.acked = new AckedRanges(ackedGrowMs);
  }

  /** Loads the stored acknowledged ranges (at open). */
  load(db: Database.Database): void {
    this.acked.load(db.prepare('SELECT lo, hi, acked_at FROM acked ORDER BY lo').all() as { lo: number; hi: number; acked_at: number }[]);
  }

  get size(): number {
    return this.leased.size;
  }

  /**
   * Leases up to `n` committed, unsent, unleased rows with a seq below `below` (the durable ones): live first,
   * then the backlog (see LeaseOptions).
   */
  lease(n: number, opts: LeaseOptions = {}, below = MAX_SEQ): OutboxRow[] {
    const out: OutboxRow[] = [];
    if (n <= 0) return out;
    const liveFrom = Math.max(0, opts.liveFrom ?? 0);
    if (liveFrom !== this.cursorLiveFrom) {
      this.cursors = [];
      this.cursorLiveFrom = liveFrom;
    }
    for (let p = 0; p < P && out.length < n; p++) this.leaseFrom(out, 0, p, liveFrom, below, n - out.length);
    let backlog = Math.min(n - out.length, opts.maxBacklog ?? Infinity);
    for (let p = 0; p < P && backlog > 0; p++) backlog -= this.leaseFrom(out, 1, p, 0, Math.min(liveFrom, below), backlog);
    return out;
  }

  /**
   * Records the delivery of a row. Returns its priority class when it was stored and unsent until now, else
   * undefined (already acknowledged, or no longer stored).
   */
  ack(seq: number, now_ms: number): number | undefined {
    let p = this.leased.get(seq);
    if (p !== undefined) this.leased.delete(seq);
    else {
      // Not leased (a resend, or a row evicted meanwhile): count it only if it is still stored and unsent.
      if (this.acked.has(seq)) return undefined;
      p = this.store.statements.priorityOf.get(seq) as number | undefined;
      if (p === undefined) return undefined;
    }
    return this.acked.add(seq, now_ms) ? p : undefined;
  }

  /** Returns leased rows to the queue (on disconnect); without an argument, every lease. */
  release(seqs?: Iterable<number>): void {
    if (seqs === undefined) {
      this.leased.clear();
      this.cursors = [];
      return;
    }
    for (const seq of seqs) {
      const p = this.leased.get(seq);
      if (p === undefined) continue;
      this.leased.delete(seq);
      const k = (seq >= this.cursorLiveFrom ? 0 : P) + p;
      const c = this.cursors[k];
      if (c !== undefined && c >= seq) this.cursors[k] = seq - 1;
    }
  }

  /** Rows still kept (unsent, leased or acknowledged within keep_acked_s) with from <= seq <= to, in seq order. */
  rangeForResend(from: number, to: number, limit: number): OutboxRow[] {
    return (this.store.statements.resend.all(from, to, limit) as RawRow[]).map(toRow);
  }

  /** Rows deleted while unsent (evicted, expired) are no longer leased. */
  forget(seqs: readonly number[]): void {
    for (const seq of seqs) this.leased.delete(seq);
  }

  /**
   * Up to `limit` stored, unacknowledged rows of priority p with from <= seq < hi, in seq order. Jumps over
   * acknowledged ranges: a cheap index probe finds the next candidate, then the gap up to the next
   * acknowledged range is read in one query.
   */
  readUnsent(p: number, from: number, hi: number, limit: number): RawRow[] {
    const st = this.store.statements;
    const out: RawRow[] = [];
    while (out.length < limit && from < hi) {
      const next = st.probe.get(p, from, hi) as number | undefined;
      if (next === undefined) break;
      const range = this.acked.find(next);
      if (range) {
        from = range.hi + 1;
        continue;
      }
      const gapEnd = Math.min(hi, this.acked.nextLoAfter(next));
      const want = limit - out.length;
      const rows = st.read.all(p, next, gapEnd, want) as RawRow[];
      for (const r of rows) out.push(r);
      from = rows.length < want ? gapEnd : (rows[rows.length - 1] as RawRow)[0] + 1;
    }
    return out;
  }

  /** Forgets leases, cursors and acknowledged ranges (on close). */
  reset(): void {
    this.acked.clear();
    this.leased.clear();
    this.cursors = [];
    this.cursorLiveFrom = -1;
  }

  /** Leases up to `want` unleased unsent rows of priority p with lo <= seq < hi into `out`; returns how many. */
  private leaseFrom(out: OutboxRow[], segment: 0 | 1, p: number, lo: number, hi: number, want: number): number {
    if (want <= 0 || lo >= hi) return 0;
    const k = segment * P + p;
    let from = Math.max(lo, (this.cursors[k] ?? lo - 1) + 1);
    let got = 0;
    while (got < want) {
      const limit = want - got;
      const rows = this.readUnsent(p, from, hi, limit);
      for (const r of rows) {
        from = r[0] + 1;
        if (this.leased.has(r[0])) continue;
        this.leased.set(r[0], p);
        out.push(toRow(r));
        got++;
      }
      if (rows.length < limit) break;
    }
    this.cursors[k] = from - 1;
    return got;
  }
}
