// The durable outbox: every message is appended here before anything is sent; the uplink leases rows,
// publishes them and acknowledges them after the broker's PUBACK. SQLite (better-sqlite3) in WAL mode with
// group commit, per-device sequence numbers, priority classes, TTL, row and size caps.
//
// This is the face the rest of the agent uses; the work is done by its parts:
//   store.ts         the SQLite file: path checks, open, schema, quick_check, salvage and quarantine
//   batch.ts         rows appended and not yet committed, and the seq counter
//   group-commit.ts  the group commit and housekeeping transactions, timers, disk-full handling, durability
//   wal-sync.ts      the worker thread that fsyncs the WAL and checkpoints, off the event loop
//   leases.ts        lease / ack / release / resend bookkeeping (acknowledged ranges: acked-ranges.ts)
//   retention.ts     caps (rows, MB), TTL per class, purge of acknowledged rows, counted evictions
//   ledger.ts        counts of what is stored, so caps and stats need no full scans
//   failures.ts      commit failures, last error, disk full since when
import { OUTBOX_PRIORITIES, type OutboxConfig } from '../config/schema/outbox.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import { isRelativeTopic } from '../contract/topics.js';
import { PendingBatch } from './batch.js';
import { OutboxError } from './errors.js';
import { Failures, type FailureStats } from './failures.js';
import { GroupCommit, type CommitStats } from './group-commit.js';
import { Leases, type LeaseOptions } from './leases.js';
import { Ledger } from './ledger.js';
import { Retention, type RetentionStats } from './retention.js';
import { MAX_SEQ, P, PRIO_INDEX, perPriority, round, sum, type OutboxMessage, type OutboxRow, type PerPriority } from './rows.js';
import type { Statements } from './schema.js';
import { OutboxStore } from './store.js';

export type { LeaseOptions } from './leases.js';
export type { OutboxMessage, OutboxRow, PerPriority } from './rows.js';

export interface OutboxStats extends RetentionStats, CommitStats {
  /** Unsent rows per priority (stored and still in the memory batch). */
  depth: PerPriority;
  depth_total: number;
  /** Rows appended but not yet committed (memory batch). */
  pending_rows: number;
  /** Rows leased to the uplink and not yet acknowledged. */
  leased: number;
  /** Acknowledged rows kept for resend. */
  acked_kept: number;
  /** Age of the oldest unsent row, seconds; null when nothing waits. */
  oldest_unsent_age_s: number | null;
  appended: number;
  acked: number;
  /** Database file + WAL size, MB. */
  db_size_mb: number;
  /** Sum of stored payload sizes, MB (what max_mb caps). */
  stored_mb: number;
  /** Next seq to be assigned. */
  next_seq: number;
  synchronous: OutboxConfig['synchronous'];
  errors: FailureStats;
  /**
   * True while the last commit failed because the disk is full. Meanwhile rows wait in memory (at most
   * pending_max_rows, the newest health report given up last) and acknowledged rows are purged to make room.
   * (errors.disk_full counts such failed commits since start.)
   */
  disk_full: boolean;
  /** Since when the disk is full: time of the first of the consecutive failed commits (ISO 8601); null while it is not. */
  disk_full_since: string | null;
  /** Path of the damaged database moved aside at start, if any. */
  quarantined_file: string | null;
  /** Unsent rows of the damaged database copied into the fresh outbox at start (seq and id kept). */
  salvaged_rows: number;
  /** Unsent rows of the damaged database that could not be read (or copied) at start. */
  salvage_lost_rows: number;
}

export interface OutboxOptions {
  /** Clock, ms since epoch (tests). */
  now?: () => number;
  /** Extra PRAGMA statements applied after open, e.g. `max_page_count = 40` to simulate a full disk in tests. */
  pragmas?: string[];
  /**
   * fsync the WAL and checkpoint in a worker thread (default true). false: SQLite syncs inside each commit on the
   * main thread (benchmarks compare the two).
   */
  syncInWorker?: boolean;
}

const RESERVED_SET = new Set(['seq', 'sent_at', 'replayed']);
const TOPICS_REMEMBERED = 4096;

/** The payload as JSON, carrying the message id as `id` and none of the keys the uplink adds when sending. */
function serialize(payload: object, id: string): string {
  const p = payload as Record<string, unknown>;
  if (p.id === id && !('seq' in p) && !('sent_at' in p) && !('replayed' in p)) return JSON.stringify(p);
  // Copy without `delete` (which would turn the object into a slow dictionary).
  const copy: Record<string, unknown> = { id };
  for (const k of Object.keys(p)) if (k !== 'id' && !RESERVED_SET.has(k)) copy[k] = p[k];
  return JSON.stringify(copy);
}

/**
 * Durable outbox. `append()` is synchronous and cheap: it assigns the next seq and pushes the row to a memory
 * batch, written in one transaction every `commit_interval_ms` or `commit_rows` rows (group commit).
 * Leases live in memory only: after a crash every unacknowledged row is sent again (at-least-once).
 */
export class Outbox implements Module {
  readonly name = 'outbox';

  private readonly now: () => number;
  private readonly store: OutboxStore;
  private readonly batch = new PendingBatch();
  private readonly ledger = new Ledger();
  private readonly leases: Leases;
  private readonly failures: Failures;
  private readonly retention: Retention;
  private readonly writer: GroupCommit;
  private readonly topicsSeen = new Set<string>();
  private sessionFallback = 0;
  private appended = 0;
  private ackedCount = 0;

  constructor(
    private readonly config: OutboxConfig,
    private readonly log: Logger,
    options: OutboxOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.store = new OutboxStore(config, log, this.now, options.pragmas);
    // A range of acknowledged seqs grows for at most 10% of keep_acked_s (1-60 s), so rows outlive
    // keep_acked_s by that much at most.
    this.leases = new Leases(this.store, Math.max(1000, Math.min(60_000, config.keep_acked_s * 100)));
    this.failures = new Failures(log, this.now);
    this.retention = new Retention(config, this.ledger, this.batch, this.leases, log, this.now);
    this.writer = new GroupCommit(config, this.store, this.batch, this.leases, this.ledger, this.retention, this.failures, log, this.now, options.syncInWorker ?? true);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  start(_signal?: AbortSignal): Promise<void> {
    try {
      this.open();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Flushes the memory batch (synced), lets the sync worker finish, and closes the database. */
  async stop(): Promise<void> {
    if (!this.store.isOpen) return;
    this.writer.stop();
    if (!this.writer.commit(true) && this.batch.size > 0) {
      this.log.error({ lost_rows: this.batch.size }, 'outbox closed with rows it could not write');
    }
    await this.writer.closeSync();
    this.close();
  }

  /**
   * Closes the database WITHOUT writing the memory batch or the acknowledgements since the last commit, as a
   * crash would. For crash tests and as the controller's last resort.
   */
  closeAbruptly(): void {
    this.writer.stop();
    this.writer.killSync();
    this.close();
  }

  get isOpen(): boolean {
    return this.store.isOpen;
  }

  // ---------------------------------------------------------------------------------------------
  // Producer side

  /**
   * Queues a message and returns its seq. Synchronous and never waits for the disk: the row is written by
   * the next group commit, and leased (sent) only once that commit is durable. Throws OutboxError only for a
   * malformed message or a closed outbox.
   */
  append(msg: OutboxMessage): number {
    this.requireOpen();
    if (typeof msg.id !== 'string' || msg.id.length === 0 || msg.id.length > 256) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', 'message id must be a non-empty string of at most 256 characters');
    }
    if (!this.topicsSeen.has(msg.topic) && !this.checkTopic(msg.topic)) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', `invalid relative topic "${String(msg.topic)}" (e.g. "events/cam1": no wildcards, no leading or trailing slash)`);
    }
    const p = PRIO_INDEX[msg.priority];
    if (p === undefined) throw new OutboxError('OUTBOX_INVALID_MESSAGE', `unknown priority "${String(msg.priority)}" (expected ${OUTBOX_PRIORITIES.join(', ')})`);
    if (typeof msg.payload !== 'object' || msg.payload === null || Array.isArray(msg.payload)) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', 'payload must be a JSON object');
    }
    let payload: string;
    try {
      payload = serialize(msg.payload, msg.id);
    } catch (err) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', `payload is not serializable: ${(err as Error).message}`, { cause: err });
    }
    const seq = this.batch.push(msg.id, msg.topic, p, this.now(), payload, Buffer.byteLength(payload));
    this.appended++;
    const max = this.config.pending_max_rows;
    if (this.batch.size > max) {
      // A burst larger than the memory bound: write now if the disk works, else drop from memory (counted).
      if (!this.failures.failing) this.writer.commit();
      if (this.batch.size > max) this.retention.evictPending(this.batch.size - max);
    }
    this.writer.schedule();
    return seq;
  }

  /**
   * Writes the memory batch now, durably (synced on this thread under FULL): its rows are leasable when this
   * returns. Returns false when the commit failed (rows stay in memory, retried).
   */
  flush(): boolean {
    this.requireOpen();
    return this.writer.commit(true);
  }

  /** Called when committed rows have become durable (the uplink drains on it). Returns an unsubscribe function. */
  onCommit(listener: () => void): () => void {
    return this.writer.onCommit(listener);
  }

  /** The seq the next append() will get (rows with a seq >= this value are "appended from now on"). */
  get nextSeq(): number {
    return this.batch.nextSeq;
  }

  // ---------------------------------------------------------------------------------------------
  // Consumer side (the uplink)

  /** Leases up to `n` durably committed, unsent, unleased rows: live first, then the backlog (see LeaseOptions). */
  lease(n: number, opts: LeaseOptions = {}): OutboxRow[] {
    this.requireOpen();
    return this.leases.lease(n, opts, this.writer.durableNext);
  }

  /** Marks a row as delivered (after the broker's PUBACK). Stored with the next group commit. */
  ack(seq: number): void {
    this.requireOpen();
    const p = this.leases.ack(seq, this.now());
    if (p === undefined) return;
    this.ledger.acked(p);
    this.ackedCount++;
    this.writer.acked();
  }

  /** Returns leased rows to the queue (on disconnect); without an argument, every lease. */
  release(seqs?: Iterable<number>): void {
    this.leases.release(seqs);
  }

  /** Rows still kept (unsent, leased or acknowledged within keep_acked_s) with from <= seq <= to, in seq order. */
  rangeForResend(from: number, to: number, limit = 10_000): OutboxRow[] {
    this.requireOpen();
    return this.leases.rangeForResend(from, Math.min(to, this.writer.durableNext - 1), limit);
  }

  /**
   * Increments and returns the persistent connection session counter (stored in the meta table). If the
   * disk refuses the write, continues in memory and records the error.
   */
  nextSession(): number {
    const st = this.requireOpen();
    try {
      this.sessionFallback = this.writer.durably(() => st.bumpMeta.get('session') as number);
    } catch (err) {
      this.sessionFallback++;
      this.failures.record(err);
      this.log.error({ err, session: this.sessionFallback }, 'cannot store the session counter; continuing in memory');
    }
    return this.sessionFallback;
  }

  // ---------------------------------------------------------------------------------------------
  // Stats

  stats(): OutboxStats {
    const depth: number[] = [];
    let oldest: number | null = null;
    for (let p = 0; p < P; p++) {
      const pending = this.batch.of(p);
      depth.push(this.ledger.unsent(p) + pending.length);
      const first = this.store.isOpen ? this.leases.readUnsent(p, 0, MAX_SEQ, 1)[0] : undefined;
      if (first && (oldest === null || first[4] < oldest)) oldest = first[4];
      const m = pending[0];
      if (m && (oldest === null || m.created_at < oldest)) oldest = m.created_at;
    }
    const q = this.store.quarantine;
    return {
      depth: perPriority(depth),
      depth_total: sum(depth),
      pending_rows: this.batch.size,
      leased: this.leases.size,
      acked_kept: this.ledger.ackedRows,
      oldest_unsent_age_s: oldest === null ? null : round(Math.max(0, this.now() - oldest) / 1000, 3),
      ...this.retention.stats(),
      appended: this.appended,
      acked: this.ackedCount,
      ...this.writer.stats(),
      db_size_mb: round(this.store.sizeBytes / 1e6, 3),
      stored_mb: round(this.ledger.bytes / 1e6, 3),
      next_seq: this.batch.nextSeq,
      synchronous: this.config.synchronous,
      errors: this.failures.stats(),
      disk_full: this.failures.diskFull,
      disk_full_since: this.failures.diskFullSince,
      quarantined_file: q?.file ?? null,
      salvaged_rows: q?.salvaged_rows ?? 0,
      salvage_lost_rows: q?.lost_rows ?? 0,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private open(): void {
    if (this.store.isOpen) return;
    this.store.open();
    const db = this.store.db;
    const st = this.store.statements;
    const q = this.store.quarantine;
    if (q) this.failures.record(new OutboxError('OUTBOX_CORRUPT', `corrupt outbox quarantined as ${q.file}`, { cause: q.cause }));
    const meta = (st.getMeta.get('next_seq') as number | undefined) ?? 1;
    const maxSeq = (db.prepare('SELECT max(seq) FROM outbox').pluck().get() as number | null) ?? 0;
    this.batch.continueFrom(Math.max(meta, maxSeq + 1, 1));
    this.sessionFallback = (st.getMeta.get('session') as number | undefined) ?? 0;
    this.leases.load(db);
    this.ledger.load(db, this.leases.acked);
    this.writer.start();
    this.log.info(
      {
        file: this.config.path,
        synchronous: this.config.synchronous,
        next_seq: this.batch.nextSeq,
        unsent: this.ledger.unsentTotal,
        acked_kept: this.ledger.ackedRows,
        stored_mb: round(this.ledger.bytes / 1e6, 3),
        quarantined_file: q?.file ?? null,
        ...(q ? { salvaged_rows: q.salvaged_rows, salvage_lost_rows: q.lost_rows } : {}),
      },
      'outbox open',
    );
  }

  private checkTopic(topic: unknown): boolean {
    if (typeof topic !== 'string' || !isRelativeTopic(topic)) return false;
    if (this.topicsSeen.size < TOPICS_REMEMBERED) this.topicsSeen.add(topic);
    return true;
  }

  /** The statements of the open database; throws OUTBOX_NOT_OPEN when closed. */
  private requireOpen(): Statements {
    return this.store.statements;
  }

  private close(): void {
    this.writer.stop();
    this.store.close();
    this.batch.clear();
    this.leases.reset();
  }
}
