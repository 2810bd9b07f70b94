// Group commit and housekeeping: the memory batch and the acknowledgements are written in one transaction every
// commit_interval_ms or commit_rows rows; every 5 s a housekeeping transaction applies the TTLs and purges
// acknowledged rows older than keep_acked_s. A failed commit keeps everything in memory and retries every second.
// While the disk is full, each retry first gives up the acknowledged rows kept for resend (already delivered), so
// the space that acknowledgements free once the link works goes to the rows waiting in memory.
import type { OutboxConfig } from '../config/schema/outbox.js';
import type { Logger } from '../core/log.js';
import type { PendingBatch } from './batch.js';
import type { Failures } from './failures.js';
import type { Leases } from './leases.js';
import { newDelta, type Delta, type Ledger } from './ledger.js';
import type { Retention } from './retention.js';
import { P, inc, round, type PendingRow } from './rows.js';
import { INSERT_CHUNK, type Statements } from './schema.js';
import type { OutboxStore } from './store.js';

export const RETRY_MS = 1000;
const HOUSEKEEPING_MS = 5000;

export interface CommitStats {
  commits: number;
  /** Duration of group commits, ms (avg: moving average). */
  commit_ms: { last: number; avg: number; max: number };
  /** Rows written per group commit. */
  batch_rows: { last: number; avg: number; max: number };
}

export class GroupCommit {
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  /** Acks since the last commit (they are already in the acknowledged ranges; this counts what the commit will store). */
  private acksSinceCommit = 0;
  private lastHousekeeping = 0;
  private commits = 0;
  private commitMs = { last: 0, avg: 0, max: 0 };
  private batchRows = { last: 0, avg: 0, max: 0 };
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly config: OutboxConfig,
    private readonly store: OutboxStore,
    private readonly batch: PendingBatch,
    private readonly leases: Leases,
    private readonly ledger: Ledger,
    private readonly retention: Retention,
    private readonly failures: Failures,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** First housekeeping now, then every 5 s. */
  start(): void {
    this.housekeeping();
    this.housekeepingTimer = setInterval(() => this.housekeeping(), HOUSEKEEPING_MS);
    this.housekeepingTimer.unref();
  }

  stop(): void {
    this.clearCommitTimers();
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    this.housekeepingTimer = undefined;
    this.acksSinceCommit = 0;
  }

  /** Called after each commit that wrote new rows. Returns an unsubscribe function. */
  onCommit(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** An acknowledgement was recorded: it is stored with the next commit. */
  acked(): void {
    this.acksSinceCommit++;
    this.schedule();
  }

  schedule(): void {
    if (!this.store.isOpen) return;
    const due = this.batch.size + this.acksSinceCommit;
    if (due === 0 && this.leases.acked.pendingChanges === 0) return;
    if (!this.failures.failing && due >= this.config.commit_rows) {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.commit();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.commit();
        },
        this.failures.failing ? Math.max(RETRY_MS, this.config.commit_interval_ms) : this.config.commit_interval_ms,
      );
      this.timer.unref();
    }
  }

  /** One transaction: acknowledged ranges, cap eviction, the memory batch, next_seq. False when it failed. */
  commit(): boolean {
    this.clearCommitTimers();
    if (!this.store.isOpen) return false;
    if (this.batch.size === 0 && this.leases.acked.pendingChanges === 0) return true;
    const db = this.store.db;
    const st = this.store.statements;
    if (this.failures.diskFull) this.freeDisk();

    const t0 = performance.now();
    // A commit with acknowledgements only need not reach the disk at once: losing it in a power cut only means
    // sending those rows again. It skips the fsync (NORMAL); the next commit with rows syncs the WAL (FULL),
    // which makes the earlier frames durable too. Rows themselves are always committed with the configured mode.
    const relaxed = this.batch.size === 0 && this.config.synchronous === 'FULL';
    let d: Delta;
    try {
      if (relaxed) db.pragma('synchronous = NORMAL');
      d = db.transaction(() => this.writeBatch(st))();
    } catch (err) {
      this.failures.commitFailed(err, {
        path: this.config.path,
        pending_rows: this.batch.size,
        pending_max_rows: this.config.pending_max_rows,
        retry_ms: RETRY_MS,
      });
      this.schedule();
      return false;
    } finally {
      if (relaxed) db.pragma('synchronous = FULL');
    }
    const ms = performance.now() - t0;

    const rows = this.batch.size;
    this.batch.clear();
    this.acksSinceCommit = 0;
    this.leases.acked.persisted();
    this.apply(d);
    if (this.leases.acked.pendingChanges > 0) this.schedule();
    this.commits++;
    this.commitMs.last = ms;
    this.commitMs.avg = this.commits === 1 ? ms : this.commitMs.avg * 0.9 + ms * 0.1;
    this.commitMs.max = Math.max(this.commitMs.max, ms);
    this.batchRows.last = rows;
    this.batchRows.avg = this.commits === 1 ? rows : this.batchRows.avg * 0.9 + rows * 0.1;
    this.batchRows.max = Math.max(this.batchRows.max, rows);
    this.failures.commitSucceeded(rows, ms);
    if (this.now() - this.lastHousekeeping >= HOUSEKEEPING_MS) this.housekeeping();
    this.retention.logLosses();
    if (d.inserted > 0) {
      for (const l of this.listeners) {
        try {
          l();
        } catch (err) {
          this.log.error({ err }, 'outbox commit listener failed');
        }
      }
    }
    return true;
  }

  /** TTL expiry of unsent rows and purge of acknowledged rows older than keep_acked_s. */
  housekeeping(): void {
    if (!this.store.isOpen) return;
    const now = this.now();
    this.lastHousekeeping = now;
    const st = this.store.statements;
    let d: Delta;
    try {
      d = this.store.db.transaction(() => {
        const delta = newDelta();
        this.retention.purgeAcked(st, now - this.config.keep_acked_s * 1000, delta, false);
        this.retention.expire(st, now, delta);
        return delta;
      })();
    } catch (err) {
      this.failures.writeFailed(err, 'outbox housekeeping (TTL, purge of acknowledged rows)');
      return;
    }
    this.apply(d);
    if (this.leases.acked.pendingChanges > 0) this.schedule();
    this.retention.logLosses();
  }

  stats(): CommitStats {
    return {
      commits: this.commits,
      commit_ms: { last: round(this.commitMs.last, 3), avg: round(this.commitMs.avg, 3), max: round(this.commitMs.max, 3) },
      batch_rows: { last: this.batchRows.last, avg: round(this.batchRows.avg, 1), max: this.batchRows.max },
    };
  }

  /** On a full disk: deletes every acknowledged row (delivered, kept only for resend) in its own transaction. */
  private freeDisk(): void {
    if (this.leases.acked.size === 0) return;
    const st = this.store.statements;
    let d: Delta;
    try {
      d = this.store.db.transaction(() => {
        const delta = newDelta();
        this.retention.purgeAcked(st, Infinity, delta, true);
        return delta;
      })();
    } catch (err) {
      this.failures.writeFailed(err, 'outbox purge of acknowledged rows on a full disk');
      return;
    }
    this.apply(d);
    if (d.evicted_acked > 0) this.log.warn({ evicted_acked: d.evicted_acked }, 'disk full: acknowledged rows kept for resend purged early to make room');
  }

  private writeBatch(st: Statements): Delta {
    const d = newDelta();
    const { deletes, upserts } = this.leases.acked.changes();
    for (const lo of deletes) st.deleteAcked.run(lo);
    for (const r of upserts) st.upsertAcked.run(r.lo, r.hi, r.acked_at);
    const skip = this.retention.makeRoom(st, d);
    const args: (string | number)[] = [];
    for (let p = 0; p < P; p++) {
      const rows = this.batch.of(p);
      for (let i = skip[p] ?? 0; i < rows.length; i++) {
        const r = rows[i] as PendingRow;
        args.push(r.seq, r.id, r.topic, r.priority, r.created_at, r.payload, r.bytes);
        if (args.length === INSERT_CHUNK * 7) {
          st.insertChunk.run(args);
          args.length = 0;
        }
        d.rows++;
        d.bytes += r.bytes;
        inc(d.unsent, p);
        d.inserted++;
      }
    }
    for (let i = 0; i < args.length; i += 7) st.insert.run(args.slice(i, i + 7));
    st.setMeta.run('next_seq', this.batch.nextSeq);
    return d;
  }

  /** A transaction committed: every part takes its share of the delta. */
  private apply(d: Delta): void {
    this.ledger.apply(d);
    this.retention.count(d);
    this.leases.forget(d.deleted);
    for (const op of d.rangeOps) op();
  }

  private clearCommitTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}
