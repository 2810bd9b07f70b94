import { AgentError } from '../core/errors.js';

export const OUTBOX_ERROR_CODES = [
  /** append/lease/ack before start() or after stop(). */
  'OUTBOX_NOT_OPEN',
  /** append() got a message that cannot be stored (bad id, topic, priority or payload). */
  'OUTBOX_INVALID_MESSAGE',
  /** The database file could not be opened or created (permissions, missing directory...). */
  'OUTBOX_OPEN_FAILED',
  /** The outbox path exists but is not a regular file (a symlink, directory, device or fifo): nothing is touched. */
  'OUTBOX_PATH_INVALID',
  /** The outbox path is a regular file without the SQLite header: not ours, so never quarantined or written. */
  'OUTBOX_NOT_SQLITE',
  /** The outbox path is an SQLite database with tables of something else: not ours, nothing is written. */
  'OUTBOX_FOREIGN_DATABASE',
  /** The database file is damaged (quick_check failed, SQLITE_CORRUPT / SQLITE_NOTADB): its readable unsent rows are copied to a fresh outbox and it is quarantined at start. */
  'OUTBOX_CORRUPT',
  /** Copying the readable rows of a damaged outbox into a fresh one failed (e.g. disk full): they stay in the quarantined file. */
  'OUTBOX_SALVAGE_FAILED',
  /** A group commit failed because the disk is full (SQLITE_FULL): rows stay in memory and the commit is retried. */
  'OUTBOX_DISK_FULL',
  /** A group commit failed for another reason (I/O error...): rows stay in memory and the commit is retried. */
  'OUTBOX_COMMIT_FAILED',
] as const;
export type OutboxErrorCode = (typeof OUTBOX_ERROR_CODES)[number];

export class OutboxError extends AgentError {
  declare readonly code: OutboxErrorCode;
  constructor(code: OutboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** better-sqlite3 SqliteError code (e.g. SQLITE_FULL, SQLITE_IOERR_WRITE), if any. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

export function isCorruption(err: unknown): boolean {
  if (err instanceof OutboxError) return err.code === 'OUTBOX_CORRUPT';
  const code = sqliteCode(err);
  return code !== undefined && /^SQLITE_(CORRUPT|NOTADB)/.test(code);
}
