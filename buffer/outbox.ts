// The durable outbox: every message is appended here before anything is sent; the uplink leases rows,
// publishes them and acknowledges them after the broker's PUBACK. SQLite (better-sqlite3) in WAL mode with
// group commit, per-device sequence numbers, priority classes, TTL, row and size caps.
//
// Storage: table `outbox` holds every row (unsent and acknowledged-but-kept); table `acked` holds the
// acknowledged seqs as ranges [lo, hi] (see acked-ranges.ts), so an acknowledgement updates no row; table
// `meta` holds next_seq and the uplink's session counter. Acknowledged rows are deleted keep_acked_s later.
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import { isRelativeTopic } from '../contract/topics.js';
import { PRIORITIES, type OutboxConfig, type Priority } from '../config/schema/outbox.js';
import { AckedRanges } from './acked-ranges.js';
import { OutboxError, isCorruption, sqliteCode } from './errors.js';

/** What the pipeline hands to the outbox. */
export interface OutboxMessage {
  /** Unique message id (event id): the center drops duplicates by it. */
  id: string;
  /** Topic relative to the device base topic, e.g. `events/cam1`. */
  topic: string;
  priority: Priority;
  /**
   * JSON object. Its `id` is set to the message id; `seq`, `sent_at` and `replayed` are reserved (added by the
   * uplink when sending) and dropped here.
   */
  payload: object;
}

/** A stored row, as leased to the uplink. */
export interface OutboxRow {
  seq: number;
  id: string;
  topic: string;
  priority: Priority;
  /** Wall-clock time of append(), ms since epoch. */
  created_at: number;
  /** JSON object text, without seq/sent_at/replayed. */
  payload: string;
  /** UTF-8 size of `payload`. */
  bytes: number;
}

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

export type PerPriority = Record<Priority, number>;

export interface OutboxStats {
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
  /** Unsent rows dropped to respect max_rows / max_mb / pending_max_rows, per priority, since start. */
  evicted: PerPriority;
  /** Acknowledged rows purged early (before keep_acked_s) to respect the caps. */
  evicted_acked: number;
  /** Unsent rows dropped because their priority's TTL passed, since start. */
  expired: PerPriority;
  appended: number;
  acked: number;
  commits: number;
  /** Duration of group commits, ms (avg: moving average). */
  commit_ms: { last: number; avg: number; max: number };
  /** Rows written per group commit. */
  batch_rows: { last: number; avg: number; max: number };
  /** Database file + WAL size, MB. */
  db_size_mb: number;
  /** Sum of stored payload sizes, MB (what max_mb caps). */
  stored_mb: number;
  /** Next seq to be assigned. */
  next_seq: number;
  synchronous: OutboxConfig['synchronous'];
  errors: {
    commit_failures: number;
    disk_full: number;
    /** True while the last commit failed (rows are kept in memory and retried). */
    failing: boolean;
    last_error: { code: string; message: string; at: string } | null;
  };
  /** Path of the damaged database moved aside at start, if any. */
  quarantined_file: string | null;
}

export interface OutboxOptions {
  /** Clock, ms since epoch (tests). */
  now?: () => number;
  /** Extra PRAGMA statements applied after open, e.g. `max_page_count = 40` to simulate a full disk in tests. */
  pragmas?: string[];
}

/** Row as read with .raw(): [seq, id, topic, priority, created_at, payload, bytes]. */
type RawRow = [number, string, string, number, number, string, number];

interface PendingRow {
  seq: number;
  id: string;
  topic: string;
  priority: number;
  created_at: number;
  payload: string;
  bytes: number;
}

interface Delta {
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
  /** Range trims/removals to apply to the in-memory ranges after the commit. */
  rangeOps: (() => void)[];
}

const P = PRIORITIES.length;
const PRIO_INDEX = Object.fromEntries(PRIORITIES.map((p, i) => [p, i])) as Record<Priority, number>;
const RESERVED_SET = new Set(['seq', 'sent_at', 'replayed']);
const RETRY_MS = 1000;
const HOUSEKEEPING_MS = 5000;
const SUMMARY_LOG_MS = 30_000;
const SCAN_CHUNK = 500;
const INSERT_CHUNK = 16;
/** Times before this (2024-01-01) come from an unset clock. */
const PLAUSIBLE_TIME_MS = Date.UTC(2024, 0, 1);
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq        INTEGER PRIMARY KEY,
  id         TEXT    NOT NULL,
  topic      TEXT    NOT NULL,
  priority   INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  payload    TEXT    NOT NULL,
  bytes      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_priority ON outbox(priority, seq);
CREATE TABLE IF NOT EXISTS acked (lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL, acked_at INTEGER NOT NULL);
`;

const perPriority = (values: readonly number[]): PerPriority =>
  Object.fromEntries(PRIORITIES.map((p, i) => [p, values[i] ?? 0])) as PerPriority;

const zeros = (): number[] => new Array<number>(P).fill(0);

function newDelta(): Delta {
  return { rows: 0, bytes: 0, unsent: zeros(), acked_rows: 0, evicted: zeros(), evicted_acked: 0, expired: zeros(), inserted: 0, deleted: [], rangeOps: [] };
}

function toRow(r: RawRow): OutboxRow {
  return { seq: r[0], id: r[1], topic: r[2], priority: PRIORITIES[r[3]] ?? 'health', created_at: r[4], payload: r[5], bytes: r[6] };
}

/** The payload as JSON, carrying the message id as `id` and none of the keys the uplink adds when sending. */
function serialize(payload: object, id: string): string {
  const p = payload as Record<string, unknown>;
  if (p.id === id && !('seq' in p) && !('sent_at' in p) && !('replayed' in p)) return JSON.stringify(p);
  // Copy without `delete` (which would turn the object into a slow dictionary).
  const copy: Record<string, unknown> = { id };
  for (const k of Object.keys(p)) if (k !== 'id' && !RESERVED_SET.has(k)) copy[k] = p[k];
  return JSON.stringify(copy);
}

const inc = (a: number[], i: number, by = 1): void => {
  a[i] = (a[i] ?? 0) + by;
};

type Stmt = Database.Statement;

interface Statements {
  insert: Stmt;
  insertChunk: Stmt;
  probe: Stmt;
  read: Stmt;
  deleteRow: Stmt;
  countRange: Stmt;
  deleteRange: Stmt;
  rangeHead: Stmt;
  priorityOf: Stmt;
  setMeta: Stmt;
  getMeta: Stmt;
  bumpMeta: Stmt;
  resend: Stmt;
  upsertAcked: Stmt;
  deleteAcked: Stmt;
}

/**
 * Durable outbox. `append()` is synchronous and cheap: it assigns the next seq and pushes the row to a memory
 * batch, written in one transaction every `commit_interval_ms` or `commit_rows` rows (group commit).
 * Leases live in memory only: after a crash every unacknowledged row is sent again (at-least-once).
 */
export class Outbox implements Module {
  readonly name = 'outbox';

  private db: Database.Database | undefined;
  private st: Statements | undefined;
  private readonly now: () => number;
  private readonly acked: AckedRanges;

  // Memory batch, one array per priority (each in seq order).
  private pending: PendingRow[][] = Array.from({ length: P }, () => []);
  private pendingCount = 0;
  private pendingBytes = 0;
  /** Acks since the last commit (they are already in `acked`; this counts what the commit will store). */
  private acksSinceCommit = 0;

  // Leases (seq → priority index) and lease cursors (per segment and priority: every unsent row at or below
  // the cursor is leased or acknowledged, so a lease scan starts just above it).
  private leased = new Map<number, number>();
  private cursors: number[] = [];
  private cursorLiveFrom = -1;

  private nextSeqValue = 1;
  private sessionFallback = 0;

  // Mirrors of the stored state, so caps and stats need no full scans.
  private rowsTotal = 0;
  private storedBytes = 0;
  private unsent = zeros();
  private ackedRows = 0;

  // Counters.
  private appended = 0;
  private ackedCount = 0;
  private commits = 0;
  private evicted = zeros();
  private evictedAcked = 0;
  private expired = zeros();
  private commitMs = { last: 0, avg: 0, max: 0 };
  private batchRows = { last: 0, avg: 0, max: 0 };
  private commitFailures = 0;
  private diskFull = 0;
  private failing = false;
  private lastError: OutboxStats['errors']['last_error'] = null;
  private lastFailureLog = 0;
  private quarantined: string | null = null;

  // Loss summaries, logged at most every SUMMARY_LOG_MS.
  private lossSinceLog = { evicted: zeros(), expired: zeros(), evicted_acked: 0 };
  private lastLossLog = 0;

  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private readonly commitListeners = new Set<() => void>();
  private readonly topicsSeen = new Set<string>();
  private lastHousekeeping = 0;

  constructor(
    private readonly config: OutboxConfig,
    private readonly log: Logger,
    private readonly options: OutboxOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    // A range of acknowledged seqs grows for at most 10% of keep_acked_s (1-60 s), so rows outlive
    // keep_acked_s by that much at most.
    this.acked = new AckedRanges(Math.max(1000, Math.min(60_000, config.keep_acked_s * 100)));
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  start(_signal?: AbortSignal): Promise<void> {
    try {
      this.openAndLoad();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Flushes the memory batch and closes the database. */
  stop(): Promise<void> {
    const db = this.db;
    if (!db) return Promise.resolve();
    this.clearTimers();
    if (!this.commit() && this.pendingCount > 0) {
      this.log.error({ lost_rows: this.pendingCount }, 'outbox closed with rows it could not write');
    }
    db.close();
    this.db = undefined;
    this.st = undefined;
    this.resetMemory();
    return Promise.resolve();
  }

  /**
   * Closes the database WITHOUT writing the memory batch or the acknowledgements since the last commit, as a
   * crash would. For crash tests and as the controller's last resort.
   */
  closeAbruptly(): void {
    this.clearTimers();
    this.db?.close();
    this.db = undefined;
    this.st = undefined;
    this.resetMemory();
  }

  get isOpen(): boolean {
    return this.db !== undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Producer side

  /**
   * Queues a message and returns its seq. Synchronous and never waits for the disk: the row is written by
   * the next group commit. Throws OutboxError only for a malformed message or a closed outbox.
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
    if (p === undefined) throw new OutboxError('OUTBOX_INVALID_MESSAGE', `unknown priority "${String(msg.priority)}" (expected ${PRIORITIES.join(', ')})`);
    if (typeof msg.payload !== 'object' || msg.payload === null || Array.isArray(msg.payload)) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', 'payload must be a JSON object');
    }
    let payload: string;
    try {
      payload = serialize(msg.payload, msg.id);
    } catch (err) {
      throw new OutboxError('OUTBOX_INVALID_MESSAGE', `payload is not serializable: ${(err as Error).message}`, { cause: err });
    }
    const bytes = Buffer.byteLength(payload);
    const seq = this.nextSeqValue++;
    (this.pending[p] as PendingRow[]).push({ seq, id: msg.id, topic: msg.topic, priority: p, created_at: this.now(), payload, bytes });
    this.pendingCount++;
    this.pendingBytes += bytes;
    this.appended++;
    if (this.pendingCount > this.config.pending_max_rows) {
      // A burst larger than the memory bound: write now if the disk works, else drop from memory (counted).
      if (!this.failing) this.commit();
      if (this.pendingCount > this.config.pending_max_rows) this.evictPending(this.pendingCount - this.config.pending_max_rows);
    }
    this.schedule();
    return seq;
  }

  private checkTopic(topic: unknown): boolean {
    if (typeof topic !== 'string' || !isRelativeTopic(topic)) return false;
    if (this.topicsSeen.size < 4096) this.topicsSeen.add(topic);
    return true;
  }

  /** Writes the memory batch now. Returns false when the commit failed (rows stay in memory, retried). */
  flush(): boolean {
    this.requireOpen();
    return this.commit();
  }

  /** Called after each commit that wrote new rows (the uplink drains on it). Returns an unsubscribe function. */
  onCommit(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** The seq the next append() will get (rows with a seq >= this value are "appended from now on"). */
  get nextSeq(): number {
    return this.nextSeqValue;
  }

  // ---------------------------------------------------------------------------------------------
  // Consumer side (the uplink)

  /** Leases up to `n` committed, unsent, unleased rows: live first, then the backlog (see LeaseOptions). */
  lease(n: number, opts: LeaseOptions = {}): OutboxRow[] {
    this.requireOpen();
    const out: OutboxRow[] = [];
    if (n <= 0) return out;
    const liveFrom = Math.max(0, opts.liveFrom ?? 0);
    if (liveFrom !== this.cursorLiveFrom) {
      this.cursors = [];
      this.cursorLiveFrom = liveFrom;
    }
    for (let p = 0; p < P && out.length < n; p++) this.leaseFrom(out, 0, p, liveFrom, MAX_SEQ, n - out.length);
    let backlog = Math.min(n - out.length, opts.maxBacklog ?? Infinity);
    for (let p = 0; p < P && backlog > 0; p++) backlog -= this.leaseFrom(out, 1, p, 0, liveFrom, backlog);
    return out;
  }

  /** Marks a row as delivered (after the broker's PUBACK). Stored with the next group commit. */
  ack(seq: number): void {
    const st = this.requireOpen();
    let p = this.leased.get(seq);
    if (p !== undefined) this.leased.delete(seq);
    else {
      // Not leased (a resend, or a row evicted meanwhile): count it only if it is still stored and unsent.
      if (this.acked.has(seq)) return;
      p = st.priorityOf.get(seq) as number | undefined;
      if (p === undefined) return;
    }
    if (!this.acked.add(seq, this.now())) return;
    inc(this.unsent, p, -1);
    this.ackedRows++;
    this.ackedCount++;
    this.acksSinceCommit++;
    this.schedule();
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
  rangeForResend(from: number, to: number, limit = 10_000): OutboxRow[] {
    const st = this.requireOpen();
    return (st.resend.all(from, to, limit) as RawRow[]).map(toRow);
  }

  /**
   * Increments and returns the persistent connection session counter (stored in the meta table). If the
   * disk refuses the write, continues in memory and records the error.
   */
  nextSession(): number {
    const st = this.requireOpen();
    try {
      this.sessionFallback = st.bumpMeta.get('session') as number;
    } catch (err) {
      this.sessionFallback++;
      this.recordError(err);
      this.log.error({ err, session: this.sessionFallback }, 'cannot store the session counter; continuing in memory');
    }
    return this.sessionFallback;
  }

  // ---------------------------------------------------------------------------------------------
  // Stats

  stats(): OutboxStats {
    const depth = this.unsent.map((n, p) => n + (this.pending[p]?.length ?? 0));
    let oldest: number | null = null;
    if (this.st) {
      for (let p = 0; p < P; p++) {
        const first = this.readUnsent(p, 0, MAX_SEQ, 1)[0];
        if (first && (oldest === null || first[4] < oldest)) oldest = first[4];
        const m = this.pending[p]?.[0];
        if (m && (oldest === null || m.created_at < oldest)) oldest = m.created_at;
      }
    }
    return {
      depth: perPriority(depth),
      depth_total: depth.reduce((a, b) => a + b, 0),
      pending_rows: this.pendingCount,
      leased: this.leased.size,
      acked_kept: this.ackedRows,
      oldest_unsent_age_s: oldest === null ? null : round(Math.max(0, this.now() - oldest) / 1000, 3),
      evicted: perPriority(this.evicted),
      evicted_acked: this.evictedAcked,
      expired: perPriority(this.expired),
      appended: this.appended,
      acked: this.ackedCount,
      commits: this.commits,
      commit_ms: { last: round(this.commitMs.last, 3), avg: round(this.commitMs.avg, 3), max: round(this.commitMs.max, 3) },
      batch_rows: { last: this.batchRows.last, avg: round(this.batchRows.avg, 1), max: this.batchRows.max },
      db_size_mb: round((fileSize(this.config.path) + fileSize(`${this.config.path}-wal`)) / 1e6, 3),
      stored_mb: round(this.storedBytes / 1e6, 3),
      next_seq: this.nextSeqValue,
      synchronous: this.config.synchronous,
      errors: { commit_failures: this.commitFailures, disk_full: this.diskFull, failing: this.failing, last_error: this.lastError },
      quarantined_file: this.quarantined,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: open, integrity, quarantine

  private openAndLoad(): void {
    if (this.db) return;
    const file = this.config.path;
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (err) {
      throw new OutboxError('OUTBOX_OPEN_FAILED', `cannot create the outbox directory ${dirname(file)}: ${(err as Error).message}`, { cause: err });
    }
    let db: Database.Database;
    let salvaged: { next_seq?: number; session?: number } | undefined;
    try {
      db = this.open(file);
    } catch (err) {
      if (!isCorruption(err)) {
        throw err instanceof OutboxError ? err : new OutboxError('OUTBOX_OPEN_FAILED', `cannot open the outbox ${file}: ${(err as Error).message}`, { cause: err });
      }
      salvaged = salvageMeta(file);
      this.quarantined = quarantine(file, this.now());
      this.log.error(
        { err, file, quarantined_file: this.quarantined, salvaged_next_seq: salvaged.next_seq ?? null },
        'outbox database is corrupt: moved aside, starting a fresh outbox (its unsent rows are not sent)',
      );
      this.recordError(new OutboxError('OUTBOX_CORRUPT', `corrupt outbox quarantined as ${this.quarantined}`, { cause: err }));
      db = this.open(file);
    }
    this.db = db;
    this.st = prepare(db);
    if (salvaged) this.reseedAfterQuarantine(salvaged);
    this.loadState();
    this.housekeeping();
    this.housekeepingTimer = setInterval(() => this.housekeeping(), HOUSEKEEPING_MS);
    this.housekeepingTimer.unref();
    this.log.info(
      {
        file,
        synchronous: this.config.synchronous,
        next_seq: this.nextSeqValue,
        unsent: this.unsent.reduce((a, b) => a + b, 0),
        acked_kept: this.ackedRows,
        stored_mb: round(this.storedBytes / 1e6, 3),
        quarantined_file: this.quarantined,
      },
      'outbox open',
    );
  }

  private open(file: string): Database.Database {
    const db = new Database(file);
    try {
      // journal_mode is the first statement that reads the file: a non-database file throws SQLITE_NOTADB here.
      db.pragma('journal_mode = WAL');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new OutboxError('OUTBOX_CORRUPT', `quick_check failed: ${String(check)}`);
      // synchronous: FULL (default) syncs the WAL at every commit, so a committed batch survives a power cut at
      // the roadside, and a seq the center has seen is never issued again. With group commit it costs one fsync
      // per batch, not per event. NORMAL syncs only at checkpoints: faster, but a power cut can roll back the last
      // batches (events lost, their seqs issued again after the reboot).
      db.pragma(`synchronous = ${this.config.synchronous}`);
      db.exec(SCHEMA);
      for (const p of this.options.pragmas ?? []) db.pragma(p);
      db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run('schema_version', SCHEMA_VERSION);
    } catch (err) {
      try {
        db.close();
      } catch {
        // the handle is unusable anyway
      }
      throw err;
    }
    return db;
  }

  private reseedAfterQuarantine(salvaged: { next_seq?: number; session?: number }): void {
    const st = this.requireOpen();
    // Seqs must stay monotonic: if the damaged file did not tell where they stopped, jump to the epoch in ms,
    // above any seq a box can have issued (the center sees one large gap, and the quarantine in the stats).
    st.setMeta.run('next_seq', salvaged.next_seq ?? this.now());
    st.setMeta.run('session', salvaged.session ?? Math.floor(this.now() / 1000));
  }

  private loadState(): void {
    const db = this.db;
    const st = this.st;
    if (!db || !st) return;
    const meta = (st.getMeta.get('next_seq') as number | undefined) ?? 1;
    const maxSeq = (db.prepare('SELECT max(seq) FROM outbox').pluck().get() as number | null) ?? 0;
    this.nextSeqValue = Math.max(meta, maxSeq + 1, 1);
    this.sessionFallback = (st.getMeta.get('session') as number | undefined) ?? 0;

    this.acked.load(db.prepare('SELECT lo, hi, acked_at FROM acked ORDER BY lo').all() as { lo: number; hi: number; acked_at: number }[]);
    const all = db.prepare('SELECT priority AS p, count(*) AS n, total(bytes) AS b FROM outbox GROUP BY priority').all() as { p: number; n: number; b: number }[];
    const countRange = db.prepare('SELECT priority AS p, count(*) AS n FROM outbox WHERE seq BETWEEN ? AND ? GROUP BY priority');
    this.unsent = zeros();
    this.rowsTotal = 0;
    this.storedBytes = 0;
    for (const r of all) {
      if (r.p >= 0 && r.p < P) inc(this.unsent, r.p, r.n);
      this.rowsTotal += r.n;
      this.storedBytes += r.b;
    }
    this.ackedRows = 0;
    for (const range of this.acked.all()) {
      for (const r of countRange.all(range.lo, range.hi) as { p: number; n: number }[]) {
        if (r.p >= 0 && r.p < P) inc(this.unsent, r.p, -r.n);
        this.ackedRows += r.n;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: group commit

  private schedule(): void {
    if (!this.db) return;
    const due = this.pendingCount + this.acksSinceCommit;
    if (due === 0 && this.acked.pendingChanges === 0) return;
    if (!this.failing && due >= this.config.commit_rows) {
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = undefined;
          this.commit();
        });
      }
    } else if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.commit();
        },
        this.failing ? Math.max(RETRY_MS, this.config.commit_interval_ms) : this.config.commit_interval_ms,
      );
      this.timer.unref();
    }
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    this.timer = undefined;
    this.immediate = undefined;
    this.housekeepingTimer = undefined;
  }

  /** One transaction: acknowledged ranges, cap eviction, the memory batch, next_seq. */
  private commit(): boolean {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const db = this.db;
    const st = this.st;
    if (!db || !st) return false;
    if (this.pendingCount === 0 && this.acked.pendingChanges === 0) return true;

    const t0 = performance.now();
    // A commit with acknowledgements only need not reach the disk at once: losing it in a power cut only means
    // sending those rows again. It skips the fsync (NORMAL); the next commit with rows syncs the WAL (FULL),
    // which makes the earlier frames durable too. Rows themselves are always committed with the configured mode.
    const relaxed = this.pendingCount === 0 && this.config.synchronous === 'FULL';
    let d: Delta;
    try {
      if (relaxed) db.pragma('synchronous = NORMAL');
      d = db.transaction(() => this.writeBatch(st))();
    } catch (err) {
      this.commitFailed(err);
      this.schedule();
      return false;
    } finally {
      if (relaxed) db.pragma('synchronous = FULL');
    }
    const ms = performance.now() - t0;

    // Committed: apply the delta to the mirrors and counters.
    const rows = this.pendingCount;
    this.pending = Array.from({ length: P }, () => []);
    this.pendingCount = 0;
    this.pendingBytes = 0;
    this.acksSinceCommit = 0;
    this.acked.persisted();
    this.applyDelta(d);
    if (this.acked.pendingChanges > 0) this.schedule();
    this.commits++;
    this.commitMs.last = ms;
    this.commitMs.avg = this.commits === 1 ? ms : this.commitMs.avg * 0.9 + ms * 0.1;
    this.commitMs.max = Math.max(this.commitMs.max, ms);
    this.batchRows.last = rows;
    this.batchRows.avg = this.commits === 1 ? rows : this.batchRows.avg * 0.9 + rows * 0.1;
    this.batchRows.max = Math.max(this.batchRows.max, rows);
    if (this.failing) {
      this.failing = false;
      this.log.info({ rows, commit_ms: round(ms, 1) }, 'outbox commits work again');
    }
    if (this.now() - this.lastHousekeeping >= HOUSEKEEPING_MS) this.housekeeping();
    this.logLosses();
    if (d.inserted > 0) {
      for (const l of this.commitListeners) {
        try {
          l();
        } catch (err) {
          this.log.error({ err }, 'outbox commit listener failed');
        }
      }
    }
    return true;
  }

  private writeBatch(st: Statements): Delta {
    const d = newDelta();
    this.writeAckedRanges(st);

    // Caps: make room for the batch. Acknowledged rows go first (already delivered), then unsent rows of the
    // lowest priority, oldest first, stored rows before the newer rows of the same class in the batch.
    const maxBytes = this.config.max_mb * 1e6;
    let overRows = this.rowsTotal + this.pendingCount - this.config.max_rows;
    let overBytes = this.storedBytes + this.pendingBytes - maxBytes;
    const over = (): boolean => overRows > 0 || overBytes > 0;
    const dropStored = (bytes: number): void => {
      overRows--;
      overBytes -= bytes;
      d.rows--;
      d.bytes -= bytes;
    };
    if (over()) {
      for (const range of this.acked.all()) {
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
        d.rangeOps.push(() => this.acked.trimFront(range, newLo));
      }
    }
    const skip = zeros();
    for (let p = P - 1; p >= 0 && over(); p--) {
      while (over()) {
        const victims = this.readUnsent(p, 0, MAX_SEQ, SCAN_CHUNK);
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
      const batch = this.pending[p] ?? [];
      let k = 0;
      while (over() && k < batch.length) {
        const r = batch[k] as PendingRow;
        overRows--;
        overBytes -= r.bytes;
        inc(d.evicted, p);
        k++;
      }
      skip[p] = k;
    }

    // Multi-row INSERTs (INSERT_CHUNK rows per statement) cost about a third less CPU per row than single ones.
    const args: (string | number)[] = [];
    for (let p = 0; p < P; p++) {
      const batch = this.pending[p] ?? [];
      for (let i = skip[p] ?? 0; i < batch.length; i++) {
        const r = batch[i] as PendingRow;
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
    st.setMeta.run('next_seq', this.nextSeqValue);
    return d;
  }

  private writeAckedRanges(st: Statements): void {
    const { deletes, upserts } = this.acked.changes();
    for (const lo of deletes) st.deleteAcked.run(lo);
    for (const r of upserts) st.upsertAcked.run(r.lo, r.hi, r.acked_at);
  }

  private applyDelta(d: Delta): void {
    this.rowsTotal += d.rows;
    this.storedBytes += d.bytes;
    this.ackedRows += d.acked_rows;
    for (let p = 0; p < P; p++) {
      inc(this.unsent, p, d.unsent[p]);
      inc(this.evicted, p, d.evicted[p]);
      inc(this.expired, p, d.expired[p]);
      inc(this.lossSinceLog.evicted, p, d.evicted[p]);
      inc(this.lossSinceLog.expired, p, d.expired[p]);
    }
    this.evictedAcked += d.evicted_acked;
    this.lossSinceLog.evicted_acked += d.evicted_acked;
    for (const seq of d.deleted) this.leased.delete(seq);
    for (const op of d.rangeOps) op();
  }

  private commitFailed(err: unknown): void {
    const code = sqliteCode(err);
    const full = code === 'SQLITE_FULL';
    this.commitFailures++;
    if (full) this.diskFull++;
    const wrapped = new OutboxError(
      full ? 'OUTBOX_DISK_FULL' : 'OUTBOX_COMMIT_FAILED',
      full
        ? `disk full: cannot write ${this.pendingCount} rows to ${this.config.path}; kept in memory (at most ${this.config.pending_max_rows}) and retried every ${RETRY_MS} ms`
        : `outbox commit failed (${code ?? 'error'}): ${(err as Error).message}; ${this.pendingCount} rows kept in memory and retried`,
      { cause: err },
    );
    this.recordError(wrapped);
    const t = this.now();
    if (!this.failing || t - this.lastFailureLog >= SUMMARY_LOG_MS) {
      this.lastFailureLog = t;
      this.log.error({ err: wrapped, sqlite_code: code, pending_rows: this.pendingCount, failures: this.commitFailures }, wrapped.message);
    }
    this.failing = true;
  }

  private recordError(err: unknown): void {
    const code = err instanceof OutboxError ? err.code : (sqliteCode(err) ?? 'OUTBOX_COMMIT_FAILED');
    this.lastError = { code, message: (err as Error).message ?? String(err), at: new Date(this.now()).toISOString() };
  }

  /** Drops `n` pending rows, lowest priority and oldest first (the disk refuses writes and memory is bounded). */
  private evictPending(n: number): void {
    for (let p = P - 1; p >= 0 && n > 0; p--) {
      const q = this.pending[p] ?? [];
      const k = Math.min(n, q.length);
      if (k === 0) continue;
      for (const r of q.splice(0, k)) this.pendingBytes -= r.bytes;
      this.pendingCount -= k;
      inc(this.evicted, p, k);
      inc(this.lossSinceLog.evicted, p, k);
      n -= k;
    }
    this.logLosses();
  }

  private logLosses(): void {
    const l = this.lossSinceLog;
    const total = l.evicted.reduce((a, b) => a + b, 0) + l.expired.reduce((a, b) => a + b, 0) + l.evicted_acked;
    if (total === 0) return;
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
    this.lossSinceLog = { evicted: zeros(), expired: zeros(), evicted_acked: 0 };
  }

  /** TTL expiry of unsent rows and purge of acknowledged rows older than keep_acked_s. */
  private housekeeping(): void {
    const db = this.db;
    const st = this.st;
    if (!db || !st) return;
    const now = this.now();
    this.lastHousekeeping = now;
    let d: Delta;
    try {
      d = db.transaction(() => {
        const delta = newDelta();
        const ackedBefore = now - this.config.keep_acked_s * 1000;
        for (const range of this.acked.all()) {
          if (range.acked_at >= ackedBefore) continue;
          const info = st.countRange.get(range.lo, range.hi) as { n: number; b: number };
          st.deleteRange.run(range.lo, range.hi);
          delta.rows -= info.n;
          delta.bytes -= info.b;
          delta.acked_rows -= info.n;
          delta.rangeOps.push(() => this.acked.remove(range));
        }
        for (let p = 0; p < P; p++) {
          const cutoff = now - this.config.ttl_s[PRIORITIES[p] as Priority] * 1000;
          // Unsent rows are read in seq order, which is append order: the first row younger than the TTL ends the scan.
          scan: for (;;) {
            const rows = this.readUnsent(p, 0, MAX_SEQ, SCAN_CHUNK);
            for (const r of rows) {
              // Appended before the clock was set (a box without RTC before NTP): age unknown, not expired.
              if (r[4] < PLAUSIBLE_TIME_MS) continue;
              if (r[4] >= cutoff) break scan;
              st.deleteRow.run(r[0]);
              delta.rows--;
              delta.bytes -= r[6];
              inc(delta.unsent, p, -1);
              inc(delta.expired, p);
              delta.deleted.push(r[0]);
            }
            if (rows.length < SCAN_CHUNK) break;
          }
        }
        return delta;
      })();
    } catch (err) {
      this.recordError(err);
      if (now - this.lastFailureLog >= SUMMARY_LOG_MS) {
        this.lastFailureLog = now;
        this.log.error({ err }, 'outbox housekeeping (TTL, purge of acknowledged rows) failed; retried');
      }
      return;
    }
    this.applyDelta(d);
    if (this.acked.pendingChanges > 0) this.schedule();
    this.logLosses();
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: reading unsent rows

  /**
   * Up to `limit` stored, unacknowledged rows of priority p with from <= seq < hi, in seq order. Jumps over
   * acknowledged ranges: a cheap index probe finds the next candidate, then the gap up to the next
   * acknowledged range is read in one query.
   */
  private readUnsent(p: number, from: number, hi: number, limit: number): RawRow[] {
    const st = this.st;
    const out: RawRow[] = [];
    if (!st) return out;
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

  private requireOpen(): Statements {
    if (!this.st) throw new OutboxError('OUTBOX_NOT_OPEN', 'the outbox is not open (start() not called, or stopped)');
    return this.st;
  }

  private resetMemory(): void {
    this.pending = Array.from({ length: P }, () => []);
    this.pendingCount = 0;
    this.pendingBytes = 0;
    this.acksSinceCommit = 0;
    this.acked.clear();
    this.leased.clear();
    this.cursors = [];
    this.cursorLiveFrom = -1;
  }
}

const COLS = 'seq, id, topic, priority, created_at, payload, bytes';

function prepare(db: Database.Database): Statements {
  return {
    insert: db.prepare(`INSERT INTO outbox(${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    insertChunk: db.prepare(`INSERT INTO outbox(${COLS}) VALUES ${new Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`),
    probe: db.prepare('SELECT seq FROM outbox WHERE priority = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT 1').pluck(),
    read: db.prepare(`SELECT ${COLS} FROM outbox WHERE priority = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?`).raw(),
    deleteRow: db.prepare('DELETE FROM outbox WHERE seq = ?'),
    countRange: db.prepare('SELECT count(*) AS n, total(bytes) AS b FROM outbox WHERE seq BETWEEN ? AND ?'),
    deleteRange: db.prepare('DELETE FROM outbox WHERE seq BETWEEN ? AND ?'),
    rangeHead: db.prepare('SELECT seq, bytes FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?').raw(),
    priorityOf: db.prepare('SELECT priority FROM outbox WHERE seq = ?').pluck(),
    setMeta: db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    bumpMeta: db.prepare('INSERT INTO meta(key, value) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value').pluck(),
    resend: db.prepare(`SELECT ${COLS} FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(),
    upsertAcked: db.prepare('INSERT INTO acked(lo, hi, acked_at) VALUES (?, ?, ?) ON CONFLICT(lo) DO UPDATE SET hi = excluded.hi, acked_at = excluded.acked_at'),
    deleteAcked: db.prepare('DELETE FROM acked WHERE lo = ?'),
  };
}

/** Best effort: read next_seq / session (and max(seq)) from a damaged database. */
function salvageMeta(file: string): { next_seq?: number; session?: number } {
  const out: { next_seq?: number; session?: number } = {};
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const get = (key: string): number | undefined => {
      try {
        const v = (db?.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: unknown } | undefined)?.value;
        return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
      } catch {
        return undefined;
      }
    };
    const nextSeq = get('next_seq');
    if (nextSeq !== undefined) {
      let maxSeq = 0;
      try {
        maxSeq = (db.prepare('SELECT max(seq) AS m FROM outbox').get() as { m: number | null }).m ?? 0;
      } catch {
        // the table itself may be damaged; meta alone is enough
      }
      out.next_seq = Math.max(nextSeq, maxSeq + 1);
    }
    const session = get('session');
    if (session !== undefined) out.session = session;
  } catch {
    // unreadable: the caller falls back to safe floors
  } finally {
    try {
      db?.close();
    } catch {
      // ignore
    }
  }
  return out;
}

/** Moves a damaged database and its -wal/-shm aside as `<file>.corrupt-<timestamp>[-wal|-shm]`. */
function quarantine(file: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  let target = `${file}.corrupt-${stamp}`;
  for (let i = 1; existsSync(target); i++) target = `${file}.corrupt-${stamp}-${i}`;
  renameSync(file, target);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(`${file}${suffix}`)) renameSync(`${file}${suffix}`, `${target}${suffix}`);
  }
  return target;
}

function fileSize(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

function round(x: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
