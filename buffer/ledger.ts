// What is stored, counted in memory so that caps and stats need no full scans; and the Delta a transaction
// produces, applied to the counts only once the transaction has committed.
import type Database from 'better-sqlite3';
import type { AckedRanges } from './acked-ranges.js';
import { P, inc, sum, zeros } from './rows.js';

/** Changes made by one transaction; applied by each part after the commit (a failed commit changes nothing). */
export interface Delta {
  rows: number;
  bytes: number;
  unsent: number[];
  acked_rows: number;
  evicted: number[];
  evicted_acked: number;
  expired: number[];
  inserted: number;
  /** Seqs deleted while unsent (evicted, expired): their leases are dropped after the commit. */
  deleted: number[];
  /** Range trims/removals to apply to the in-memory acknowledged ranges after the commit. */
  rangeOps: (() => void)[];
}

export function newDelta(): Delta {
  return { rows: 0, bytes: 0, unsent: zeros(), acked_rows: 0, evicted: zeros(), evicted_acked: 0, expired: zeros(), inserted: 0, deleted: [], rangeOps: [] };
}

export class Ledger {
  private rowsTotal = 0;
  private storedBytes = 0;
  private unsentRows = zeros();
  private ackedKept = 0;

  /** Stored rows (unsent and acknowledged-but-kept). */
  get rows(): number {
    return this.rowsTotal;
  }

  /** Sum of stored payload sizes, bytes (what max_mb caps). */
  get bytes(): number {
    return this.storedBytes;
  }

  /** Stored unsent rows of class p. */
  unsent(p: number): number {
    return this.unsentRows[p] ?? 0;
  }

  get unsentTotal(): number {
    return sum(this.unsentRows);
  }

  get ackedRows(): number {
    return this.ackedKept;
  }

  /** Counts the stored rows (at open). */
  load(db: Database.Database, acked: AckedRanges): void {
    const all = db.prepare('SELECT priority AS p, count(*) AS n, total(bytes) AS b FROM outbox GROUP BY priority').all() as { p: number; n: number; b: number }[];
    const countRange = db.prepare('SELECT priority AS p, count(*) AS n FROM outbox WHERE seq BETWEEN ? AND ? GROUP BY priority');
    this.reset();
    for (const r of all) {
      if (r.p >= 0 && r.p < P) inc(this.unsentRows, r.p, r.n);
      this.rowsTotal += r.n;
      this.storedBytes += r.b;
    }
    for (const range of acked.all()) {
      for (const r of countRange.all(range.lo, range.hi) as { p: number; n: number }[]) {
        if (r.p >= 0 && r.p < P) inc(this.unsentRows, r.p, -r.n);
        this.ackedKept += r.n;
      }
    }
  }

  /** A stored row of class p was acknowledged. */
  acked(p: number): void {
    inc(this.unsentRows, p, -1);
    this.ackedKept++;
  }

  apply(d: Delta): void {
    this.rowsTotal += d.rows;
    this.storedBytes += d.bytes;
    this.ackedKept += d.acked_rows;
    for (let p = 0; p < P; p++) inc(this.unsentRows, p, d.unsent[p]);
  }

  reset(): void {
    this.rowsTotal = 0;
    this.storedBytes = 0;
    this.unsentRows = zeros();
    this.ackedKept = 0;
  }
}
