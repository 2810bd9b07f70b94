// Write failures of the outbox: commit failures (disk full or other), the last error, and since when the disk is
// full. Failure lines are logged at the first failure and then at most every 30 s.
import type { Logger } from '../core/log.js';
import { OutboxError, sqliteCode } from './errors.js';

const FAILURE_LOG_MS = 30_000;

export interface FailureStats {
  commit_failures: number;
  /** Commits that failed because the disk is full (SQLITE_FULL). */
  disk_full: number;
  /** True while the last commit failed (rows are kept in memory and retried). */
  failing: boolean;
  last_error: { code: string; message: string; at: string } | null;
}

export class Failures {
  private commitFailures = 0;
  private diskFullCount = 0;
  private failingNow = false;
  private diskFullSinceMs: number | null = null;
  private lastError: FailureStats['last_error'] = null;
  private lastLog = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  get failing(): boolean {
    return this.failingNow;
  }

  /** True while the last commit failed because the disk is full (SQLITE_FULL). */
  get diskFull(): boolean {
    return this.diskFullSinceMs !== null;
  }

  /** When the disk became full (ISO 8601), or null. */
  get diskFullSince(): string | null {
    return this.diskFullSinceMs === null ? null : new Date(this.diskFullSinceMs).toISOString();
  }

  /** Keeps `err` as the last error (stats); logs nothing. */
  record(err: unknown): void {
    const code = err instanceof OutboxError ? err.code : (sqliteCode(err) ?? 'OUTBOX_COMMIT_FAILED');
    this.lastError = { code, message: (err as Error).message ?? String(err), at: new Date(this.now()).toISOString() };
  }

  /** A group commit failed: the rows stay in memory. */
  commitFailed(err: unknown, ctx: { path: string; pending_rows: number; pending_max_rows: number; retry_ms: number }): void {
    const code = sqliteCode(err);
    const full = code === 'SQLITE_FULL';
    this.commitFailures++;
    if (full) {
      this.diskFullCount++;
      this.diskFullSinceMs ??= this.now();
    } else this.diskFullSinceMs = null;
    const wrapped = new OutboxError(
      full ? 'OUTBOX_DISK_FULL' : 'OUTBOX_COMMIT_FAILED',
      full
        ? `disk full: cannot write ${ctx.pending_rows} rows to ${ctx.path}; kept in memory (at most ${ctx.pending_max_rows}) and retried every ${ctx.retry_ms} ms`
        : `outbox commit failed (${code ?? 'error'}): ${(err as Error).message}; ${ctx.pending_rows} rows kept in memory and retried`,
      { cause: err },
    );
    this.record(wrapped);
    if (this.logDue(!this.failingNow)) {
      this.log.error({ err: wrapped, sqlite_code: code, pending_rows: ctx.pending_rows, failures: this.commitFailures, disk_full_since: this.diskFullSince }, wrapped.message);
    }
    this.failingNow = true;
  }

  /** A group commit succeeded. */
  commitSucceeded(rows: number, commit_ms: number): void {
    if (!this.failingNow) return;
    this.log.info({ rows, commit_ms: Math.round(commit_ms * 10) / 10, disk_full_since: this.diskFullSince }, 'outbox commits work again');
    this.failingNow = false;
    this.diskFullSinceMs = null;
  }

  /** Another write failed (housekeeping, a disk-full purge): recorded, logged at most every 30 s. */
  writeFailed(err: unknown, what: string): void {
    this.record(err);
    if (this.logDue()) this.log.error({ err }, `${what} failed; retried`);
  }

  stats(): FailureStats {
    return { commit_failures: this.commitFailures, disk_full: this.diskFullCount, failing: this.failingNow, last_error: this.lastError };
  }

  /** True (and restarts the 30 s window) when a failure line may be logged; `first`: always. */
  private logDue(first = false): boolean {
    const t = this.now();
    if (!first && t - this.lastLog < FAILURE_LOG_MS) return false;
    this.lastLog = t;
    return true;
  }
}
