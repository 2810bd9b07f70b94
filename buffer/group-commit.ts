// Group commit and housekeeping: the memory batch and the acknowledgements are written in one transaction every
// commit_interval_ms or commit_rows rows; every 5 s a housekeeping transaction applies the TTLs and purges
// acknowledged rows older than keep_acked_s. A failed commit keeps everything in memory and retries every second.
// While the disk is full, each retry first gives up the acknowledged rows kept for resend (already delivered), so
// the space that acknowledgements free once the link works goes to the rows waiting in memory.
//
// Durability (synchronous = FULL): the transactions run on the main thread, but their fsync does not: the WAL is
// synced by a worker thread (wal-sync.ts), so the event loop never waits for the disk. Rows become durable, and
// only then leasable (`durableNext`) and announced to the commit listeners, once that fsync has returned. flush()
// (and the last commit at stop) syncs inline instead: durable when it returns. Without the worker (it failed to
// start, or died) every commit with rows syncs inline, as SQLite's FULL mode does.
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OutboxConfig } from '../config/schema/outbox.js';
import type { Logger } from '../core/log.js';
import type { PendingBatch } from './batch.js';
import type { Failures } from './failures.js';
import { fsyncDir } from './files.js';
import type { Leases } from './leases.js';
import { newDelta, type Delta, type Ledger } from './ledger.js';
import type { Retention } from './retention.js';
import { P, inc, round, type PendingRow } from './rows.js';
import { INSERT_CHUNK, type Statements } from './schema.js';
import type { OutboxStore } from './store.js';
import { WalSync, type WalSyncStats } from './wal-sync.js';

export const RETRY_MS = 1000;
const HOUSEKEEPING_MS = 5000;
/** A PASSIVE checkpoint rides along with a sync at most this often (SQLite's own would run every ~1000 pages). */
const CHECKPOINT_MS = 5000;
/** SQLite's default, restored when checkpoints are back on the main connection. */
const AUTOCHECKPOINT_PAGES = 1000;

export interface CommitStats {
  commits: number;
  /** Duration of group commits on the main thread, ms (avg: moving average). */
  commit_ms: { last: number; avg: number; max: number };
  /** Rows written per group commit. */
  batch_rows: { last: number; avg: number; max: number };
  /** The WAL fsyncs and checkpoints of the worker thread. */
  wal_sync: WalSyncStats;
}

type SyncLevel = 'FULL' | 'NORMAL';

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
  /** The main connection's synchronous level: NORMAL while the worker syncs. */
  private level: SyncLevel = 'FULL';
  /** Rows with a seq below this are durable (leasable). */
  private durable = 1;
  /** Highest seq bound of commits whose fsync is pending in the worker. */
  private syncingUpTo = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastCheckpoint = -Infinity;
  private sync: WalSync | undefined;

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
    private readonly syncInWorker = true,
  ) {}

  /** Rows with a seq below this are durable: the uplink may lease them. */
  get durableNext(): number {
    return this.durable;
  }

  /**
   * Everything stored so far is durable (under FULL the WAL and its directory entry are synced once, inline, as a
   * crash may have left unsynced commits behind); first housekeeping now, then every 5 s; the sync worker starts.
   */
  start(): void {
    this.level = this.config.synchronous;
    if (this.level === 'FULL') this.syncInline('fsync of the outbox WAL at open');
    this.durable = this.batch.nextSeq;
    this.housekeeping();
    this.housekeepingTimer = setInterval(() => this.housekeeping(), HOUSEKEEPING_MS);
    this.housekeepingTimer.unref();
    if (!this.syncInWorker) return;
    const sync: WalSync = new WalSync(this.config.path, { ready: () => this.onSyncReady(sync), lost: () => this.onSyncLost(sync) }, this.log);
    try {
      sync.start();
      this.sync = sync;
    } catch (err) {
      this.log.warn({ err }, 'outbox sync worker could not be started; syncing on the main thread');
    }
  }

  stop(): void {
    this.clearCommitTimers();
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    this.housekeepingTimer = undefined;
    clearTimeout(this.retryTimer);
    this.acksSinceCommit = 0;
  }

  /** Lets the sync worker finish and close its connection (after the last, inline-synced commit). */
  async closeSync(): Promise<void> {
    const sync = this.sync;
    this.sync = undefined;
    await sync?.stop();
  }

  /** Terminates the sync worker at once (an abrupt close). */
  killSync(): void {
    this.sync?.kill();
    this.sync = undefined;
  }

  /** Runs a write outside the group commit (the session counter) durably: synced inline when the worker syncs. */
  durably<T>(write: () => T): T {
    const db = this.store.db;
    const raise = this.config.synchronous === 'FULL' && this.level === 'NORMAL';
    if (raise) db.pragma('synchronous = FULL');
    try {
      return write();
    } finally {
      if (raise) db.pragma('synchronous = NORMAL');
    }
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

  /**
   * One transaction: acknowledged ranges, cap eviction, the memory batch, next_seq. False when it failed.
   * `durableNow` (flush, stop): the rows are durable when this returns, synced inline.
   */
  commit(durableNow = false): boolean {
    this.clearCommitTimers();
    if (!this.store.isOpen) return false;
    if (this.batch.size === 0 && this.leases.acked.pendingChanges === 0 && !(durableNow && this.syncingUpTo > this.durable)) return true;
    const db = this.store.db;
    const st = this.store.statements;
    if (this.failures.diskFull) this.freeDisk();

    const t0 = performance.now();
    const full = this.config.synchronous === 'FULL';
    // The level of this transaction. A commit with acknowledgements only need not reach the disk at once: losing
    // it in a power cut only means sending those rows again, so it skips the inline fsync (NORMAL); the next commit
    // with rows syncs the WAL, which makes the earlier frames durable too.
    let level: SyncLevel = this.level;
    if (full && this.level === 'FULL' && this.batch.size === 0) level = 'NORMAL';
    if (full && this.level === 'NORMAL' && durableNow) level = 'FULL';
    let d: Delta;
    try {
      if (level !== this.level) db.pragma(`synchronous = ${level}`);
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
      if (level !== this.level) db.pragma(`synchronous = ${this.level}`);
    }
    const ms = performance.now() - t0;

    const rows = this.batch.size;
    const upTo = this.batch.nextSeq;
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
    // SQLite synced the WAL in this commit (everything committed so far is durable), or NORMAL was chosen.
    if (level === 'FULL' || !full) this.madeDurable(upTo);
    else if (d.inserted > 0) this.requestSync(upTo);
    if (!full && this.sync?.active && this.checkpointDue()) this.sync.request({ fsync: false, checkpoint: true }, () => undefined);
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
      wal_sync: this.sync?.stats() ?? { sync_in_worker: false, fsyncs: 0, fsync_ms: { last: 0, avg: 0, max: 0 }, checkpoints: 0 },
      commits: this.commits,
      commit_ms: { last: round(this.commitMs.last, 3), avg: round(this.commitMs.avg, 3), max: round(this.commitMs.max, 3) },
      batch_rows: { last: this.batchRows.last, avg: round(this.batchRows.avg, 1), max: this.batchRows.max },
    };
  }

  /** Rows below `upTo` are durable: leasable from now, and the commit listeners hear of them. */
  private madeDurable(upTo: number): void {
    if (upTo <= this.durable) return;
    this.durable = upTo;
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err }, 'outbox commit listener failed');
      }
    }
  }

  /** Asks the worker to fsync the WAL; rows below `upTo` become durable when it has. */
  private requestSync(upTo: number): void {
    this.syncingUpTo = Math.max(this.syncingUpTo, upTo);
    const sync = this.sync;
    if (!sync?.active) return;
    sync.request({ fsync: true, checkpoint: this.checkpointDue() }, (err) => {
      if (!err) return this.madeDurable(upTo);
      // The worker is gone (onSyncLost syncs inline) or closing (stop commits inline); else the fsync failed.
      if (this.sync !== sync || !sync.active) return;
      this.failures.writeFailed(err, 'fsync of the outbox WAL');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.requestSync(this.syncingUpTo), RETRY_MS);
      this.retryTimer.unref();
    });
  }

  private checkpointDue(): boolean {
    const t = performance.now();
    if (t - this.lastCheckpoint < CHECKPOINT_MS) return false;
    this.lastCheckpoint = t;
    return true;
  }

  /** The worker has its connection: the main connection commits without fsync and leaves checkpoints to it. */
  private onSyncReady(sync: WalSync): void {
    if (this.sync !== sync || !this.store.isOpen) return;
    const db = this.store.db;
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 0');
    this.level = 'NORMAL';
  }

  /** The worker is gone: the main connection syncs and checkpoints itself again; pending syncs are done inline. */
  private onSyncLost(sync: WalSync): void {
    if (this.sync !== sync) return;
    this.sync = undefined;
    if (!this.store.isOpen) return;
    const db = this.store.db;
    db.pragma(`synchronous = ${this.config.synchronous}`);
    db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    this.level = this.config.synchronous;
    // Otherwise the next commit with rows syncs them (FULL again).
    if (this.syncingUpTo > this.durable && this.syncInline('fsync of the outbox WAL')) this.madeDurable(this.syncingUpTo);
  }

  private syncInline(what: string): boolean {
    try {
      syncWalInline(this.config.path);
      return true;
    } catch (err) {
      this.failures.writeFailed(err, what);
      return false;
    }
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

/** fsync of the WAL file and of its directory (the WAL may just have been created), on this thread. */
function syncWalInline(file: string): void {
  try {
    const fd = openSync(`${file}-wal`, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fsyncDir(dirname(file));
}
