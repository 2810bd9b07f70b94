// What the outbox gives up, and in which order: caps in rows (max_rows) and size (max_mb), the TTL of each
// priority class, the purge of acknowledged rows after keep_acked_s, and the memory bound while the disk
// refuses writes. Every dropped row is counted per class and summarised in the log at most every 30 s.
import { OUTBOX_PRIORITIES, type OutboxConfig, type OutboxPriority } from '../config/schema/outbox.js';
import type { Logger } from '../core/log.js';
import type { PendingBatch } from './batch.js';
import type { Leases } from './leases.js';
import type { Delta, Ledger } from './ledger.js';
import { HEALTH, MAX_SEQ, P, inc, perPriority, round, sum, zeros, type PendingRow, type PerPriority } from './rows.js';
import type { Statements } from './schema.js';

const SUMMARY_LOG_MS = 30_000;
const SCAN_CHUNK = 500;
/** Times before this (2024-01-01) come from an unset clock. */
const PLAUSIBLE_TIME_MS = Date.UTC(2024, 0, 1);

export interface RetentionStats {
  /** Unsent rows dropped to respect max_rows / max_mb / pending_max_rows, per priority, since start. */
  evicted: PerPriority;
  /** Acknowledged rows purged early (before keep_acked_s) to respect the caps or to free a full disk. */
  evicted_acked: number;
  /** Unsent rows dropped because their priority's TTL passed, since start. */
  expired: PerPriority;
}

export class Retention {
  private evicted = zeros();
  private evictedAcked = 0;
  private expired = zeros();
  private sinceLog = { evicted: zeros(), expired: zeros(), evicted_acked: 0 };
  private lastLossLog = 0;

  constructor(
    private readonly config: OutboxConfig,
    private readonly ledger: Ledger,
    private readonly batch: PendingBatch,
    private readonly leases: Leases,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /**
   * Inside the batch transaction: makes room for the batch under max_rows and max_mb. Acknowledged rows go
   * first (already delivered), then unsent rows of the lowest priority, oldest first, stored rows before the
   * newer rows of the same class in the batch. Returns, per class, how many of the oldest batch rows to skip.
   */
  makeRoom(st: Statements, d: Delta): number[] {
    const skip = zeros();
    let overRows = this.ledger.rows + this.batch.size - this.config.max_rows;
    let overBytes = this.ledger.bytes + this.batch.bytes - this.config.max_mb * 1e6;
    const over = (): boolean => overRows > 0 || overBytes > 0;
    if (!over()) return skip;
    const dropStored = (bytes: number): void => {
      overRows--;
      overBytes -= bytes;
      d.rows--;
      d.bytes -= bytes;
    };
    for (const range of this.leases.acked.all()) {
      if (!over()) break;
      let cut = range.lo;
      for (;;) {
        const victims = st.rangeHead.all(cut, range.hi, SCAN_CHUNK) as [number, number][];
        for (const [seq, bytes] of victims) {
          if (!over()) break;
          st.deleteRow.run(seq);
          dropStored(bytes);
          d.acked_rows--;
          d.evicted_acked++;
          cut = seq + 1;
        }
        if (!over() || victims.length < SCAN_CHUNK) break;
      }
      if (over()) cut = range.hi + 1;
      const newLo = cut;
      d.rangeOps.push(() => this.leases.acked.trimFront(range, newLo));
    }
    for (let p = P - 1; p >= 0 && over(); p--) {
      while (over()) {
        const victims = this.leases.readUnsent(p, 0, MAX_SEQ, SCAN_CHUNK);
        for (const v of victims) {
          if (!over()) break;
          st.deleteRow.run(v[0]);
          dropStored(v[6]);
          inc(d.unsent, p, -1);
          inc(d.evicted, p);
          d.deleted.push(v[0]);
        }
        if (victims.length < SCAN_CHUNK) break;
      }
      const rows = this.batch.of(p);
      let k = 0;
      while (over() && k < rows.length) {
        overRows--;
        overBytes -= (rows[k] as PendingRow).bytes;
        inc(d.evicted, p);
        k++;
      }
      skip[p] = k;
    }
    return skip;
  }

  /**
   * Inside a transaction: deletes the rows of acknowledged ranges acknowledged before `before_ms`. `early`:
   * before keep_acked_s ran out (a full disk), counted as evicted_acked.
   */
  purgeAcked(st: Statements, before_ms: number, d: Delta, early: boolean): void {
    for (const range of this.leases.acked.all()) {
      if (range.acked_at >= before_ms) continue;
      const info = st.countRange.get(range.lo, range.hi) as { n: number; b: number };
      st.deleteRange.run(range.lo, range.hi);
      d.rows -= info.n;
      d.bytes -= info.b;
      d.acked_rows -= info.n;
      if (early) d.evicted_acked += info.n;
      d.rangeOps.push(() => this.leases.acked.remove(range));
    }
  }

  /** Inside a transaction: deletes the unsent rows older than their class's TTL. */
  expire(st: Statements, now_ms: number, d: Delta): void {
    for (let p = 0; p < P; p++) {
      const cutoff = now_ms - this.config.ttl_s[OUTBOX_PRIORITIES[p] as OutboxPriority] * 1000;
      // Unsent rows are read in seq order, which is append order: the first row younger than the TTL ends the scan.
      scan: for (;;) {
        const rows = this.leases.readUnsent(p, 0, MAX_SEQ, SCAN_CHUNK);
        for (const r of rows) {
          // Appended before the clock was set (a box without RTC before NTP): age unknown, not expired.
          if (r[4] < PLAUSIBLE_TIME_MS) continue;
          if (r[4] >= cutoff) break scan;
          st.deleteRow.run(r[0]);
          d.rows--;
          d.bytes -= r[6];
          inc(d.unsent, p, -1);
          inc(d.expired, p);
          d.deleted.push(r[0]);
        }
        if (rows.length < SCAN_CHUNK) break;
      }
    }
  }

  /**
   * Drops `n` rows of the memory batch (the disk refuses writes and memory is bounded): the lowest class and
   * oldest first, except the newest health report, which goes last of all: once anything can be sent again it
   * tells the center how the box is (disk full included).
   */
  evictPending(n: number): void {
    for (let p = P - 1; p >= 0 && n > 0; p--) n -= this.dropPending(p, n, p === HEALTH ? 1 : 0);
    if (n > 0) this.dropPending(HEALTH, n, 0);
    this.logLosses();
  }

  /** Counts the losses of a committed transaction. */
  count(d: Delta): void {
    for (let p = 0; p < P; p++) {
      inc(this.evicted, p, d.evicted[p]);
      inc(this.expired, p, d.expired[p]);
      inc(this.sinceLog.evicted, p, d.evicted[p]);
      inc(this.sinceLog.expired, p, d.expired[p]);
    }
    this.evictedAcked += d.evicted_acked;
    this.sinceLog.evicted_acked += d.evicted_acked;
  }

  /** Logs the losses since the last summary, at most every 30 s. */
  logLosses(): void {
    const l = this.sinceLog;
    if (sum(l.evicted) + sum(l.expired) + l.evicted_acked === 0) return;
    const t = this.now();
    if (this.lastLossLog !== 0 && t - this.lastLossLog < SUMMARY_LOG_MS) return;
    const since_s = this.lastLossLog === 0 ? null : round((t - this.lastLossLog) / 1000, 1);
    this.lastLossLog = t;
    this.log.warn(
      {
        evicted: perPriority(l.evicted),
        expired: perPriority(l.expired),
        evicted_acked: l.evicted_acked,
        since_s,
        max_rows: this.config.max_rows,
        max_mb: this.config.max_mb,
      },
      'outbox dropped rows (caps or TTL)',
    );
    this.sinceLog = { evicted: zeros(), expired: zeros(), evicted_acked: 0 };
  }

  stats(): RetentionStats {
    return { evicted: perPriority(this.evicted), evicted_acked: this.evictedAcked, expired: perPriority(this.expired) };
  }

  private dropPending(p: number, n: number, keep: number): number {
    const k = this.batch.dropOldest(p, n, keep);
    inc(this.evicted, p, k);
    inc(this.sinceLog.evicted, p, k);
    return k;
  }
}
