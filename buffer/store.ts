// The outbox's SQLite file: checks that the path is the outbox's own (files.ts), opens it in WAL mode with the
// configured synchronous level, creates the schema, runs quick_check, and replaces a damaged file by a fresh one
// holding the rows that could be read (salvage.ts), the damaged file kept aside as `<file>.corrupt-<time>`.
//
// The replacement is crash safe: the copy is written as `<file>.salvage-tmp`, renamed `<file>.salvaged` once
// complete, then the damaged file is moved aside and the copy renamed into place. A start that finds
// `.salvaged` without the outbox file finishes the last step; any other leftover is discarded and redone.
import { mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { OutboxConfig } from '../config/schema/outbox.js';
import type { Logger } from '../core/log.js';
import { OutboxError, isCorruption } from './errors.js';
import { exists, fileSize, fsyncDir, inspectOutboxFile, quarantine, removeOwnFile, type OutboxFileState } from './files.js';
import { Salvage, type SalvageReport } from './salvage.js';
import { OUTBOX_TABLES, SCHEMA, SCHEMA_VERSION, prepare, type Statements } from './schema.js';

/** SQLite's page cache for the outbox connection, KiB (the pragma's negative form). */
export const PAGE_CACHE_KIB = 1024;

/** A damaged outbox found at open: where it went, and what was saved from it. */
export interface QuarantineReport {
  file: string;
  salvaged_rows: number;
  lost_rows: number;
  cause: unknown;
}

export class OutboxStore {
  private handle: Database.Database | undefined;
  private st: Statements | undefined;
  private quarantined: QuarantineReport | null = null;

  /** @param pragmas extra PRAGMA statements applied after open (tests: `max_page_count = 40` fills the disk). */
  constructor(
    private readonly config: Pick<OutboxConfig, 'path' | 'synchronous'>,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly pragmas: readonly string[] = [],
  ) {}

  get isOpen(): boolean {
    return this.handle !== undefined;
  }

  /** The open database; throws OUTBOX_NOT_OPEN when closed. */
  get db(): Database.Database {
    if (!this.handle) throw notOpen();
    return this.handle;
  }

  /** The prepared statements of the open database; throws OUTBOX_NOT_OPEN when closed. */
  get statements(): Statements {
    if (!this.st) throw notOpen();
    return this.st;
  }

  /** The damaged file moved aside at open, if any. */
  get quarantine(): QuarantineReport | null {
    return this.quarantined;
  }

  /** Database file + WAL size, bytes. */
  get sizeBytes(): number {
    return fileSize(this.config.path) + fileSize(`${this.config.path}-wal`);
  }

  open(): void {
    if (this.handle) return;
    const file = this.config.path;
    // Checked first: a path that is not the outbox's own is refused before anything beside it is touched.
    inspectOutboxFile(file);
    if (this.finishInterruptedSalvage(file) === 'absent') {
      try {
        mkdirSync(dirname(file), { recursive: true });
      } catch (err) {
        throw new OutboxError('OUTBOX_OPEN_FAILED', `cannot create the outbox directory ${dirname(file)}: ${(err as Error).message}`, { cause: err });
      }
    }
    let db: Database.Database;
    try {
      db = this.openFile(file);
    } catch (err) {
      if (!isCorruption(err)) {
        throw err instanceof OutboxError ? err : new OutboxError('OUTBOX_OPEN_FAILED', `cannot open the outbox ${file}: ${(err as Error).message}`, { cause: err });
      }
      const reseed = this.replaceDamaged(file, err);
      db = this.openFile(file);
      if (reseed) {
        // The copy failed: a fresh outbox whose seqs stay above any the damaged file issued.
        const st = prepare(db);
        st.setMeta.run('next_seq', reseed.next_seq);
        st.setMeta.run('session', reseed.session);
      }
    }
    this.handle = db;
    this.st = prepare(db);
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
    this.st = undefined;
  }

  private openFile(file: string): Database.Database {
    const db = new Database(file);
    try {
      // The first read: a damaged file throws SQLITE_CORRUPT / SQLITE_NOTADB here, and a database of something
      // else is refused before anything is written to it.
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
      const foreign = tables.filter((t) => !OUTBOX_TABLES.has(t));
      if (foreign.length > 0) {
        throw new OutboxError(
          'OUTBOX_FOREIGN_DATABASE',
          `${file} is an SQLite database of something else (tables: ${foreign.slice(0, 5).join(', ')}); expected an outbox (tables ${[...OUTBOX_TABLES].join(', ')}) or no file. Nothing was written: point outbox.path at a new file in the data directory`,
        );
      }
      db.pragma('journal_mode = WAL');
      // better-sqlite3 builds SQLite with a 16 MB page cache a connection (SQLITE_DEFAULT_CACHE_SIZE=-16000). It
      // fills as the file grows, and the agent's RSS climbed with it for hours. The outbox works at the two ends of
      // its table (appends, the oldest unsent rows); 1 MB holds both, the OS page cache the rest.
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new OutboxError('OUTBOX_CORRUPT', `quick_check failed: ${String(check).slice(0, 500)}`);
      // synchronous: FULL (default) syncs the WAL at every commit, so a committed batch survives a power cut at
      // the roadside, and a seq the center has seen is never issued again. With group commit it costs one fsync
      // per batch, not per event. NORMAL syncs only at checkpoints: faster, but a power cut can roll back the last
      // batches (events lost, their seqs issued again after the reboot).
      db.pragma(`synchronous = ${this.config.synchronous}`);
      db.exec(SCHEMA);
      for (const p of this.pragmas) db.pragma(p);
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

  /**
   * Copies the readable unsent rows of the damaged file into a new database, moves the damaged file aside and
   * puts the copy in its place. Returns the counters to seed a fresh outbox with when the copy failed.
   */
  private replaceDamaged(file: string, cause: unknown): SalvageReport | undefined {
    const tmp = `${file}.salvage-tmp`;
    const done = `${file}.salvaged`;
    removeOwnFile(tmp);
    removeOwnFile(done);
    const report = new Salvage(file, tmp, this.now()).run();
    if (report.copied) {
      renameSync(tmp, done);
      fsyncDir(dirname(file));
    } else removeOwnFile(tmp);
    const moved = quarantine(file, this.now());
    if (report.copied) {
      renameSync(done, file);
      fsyncDir(dirname(file));
    }
    this.quarantined = { file: moved, salvaged_rows: report.salvaged_rows, lost_rows: report.lost_rows, cause };
    this.log.error(
      {
        err: cause,
        file,
        quarantined_file: moved,
        salvaged_rows: report.salvaged_rows,
        lost_rows: report.lost_rows,
        lost_counted_by: report.lost_counted_by,
        unreadable_stretches: report.unreadable_stretches,
        next_seq: report.next_seq,
        copy_error: report.copy_error,
      },
      report.copied
        ? `outbox database is corrupt: ${report.salvaged_rows} unsent rows copied to a fresh outbox, ${report.lost_rows} unreadable; the damaged file was moved aside`
        : `outbox database is corrupt and copying its rows failed (${report.copy_error}): moved aside with its rows, starting a fresh outbox`,
    );
    return report.copied ? undefined : report;
  }

  /**
   * Completes or discards what a salvage interrupted by a crash or power cut left behind; returns the state
   * of the outbox file afterwards.
   */
  private finishInterruptedSalvage(file: string): OutboxFileState {
    const done = `${file}.salvaged`;
    if (exists(done) && !exists(file) && inspectOutboxFile(done) === 'sqlite') {
      renameSync(done, file);
      fsyncDir(dirname(file));
      this.log.warn({ file }, 'outbox: finished replacing a damaged outbox by its salvaged copy (interrupted at the last start)');
    }
    // An incomplete copy, or a complete one while the damaged file is still in place: discarded (the salvage
    // runs again when the file is opened).
    removeOwnFile(done);
    removeOwnFile(`${file}.salvage-tmp`);
    return inspectOutboxFile(file);
  }
}

function notOpen(): OutboxError {
  return new OutboxError('OUTBOX_NOT_OPEN', 'the outbox is not open (start() not called, or stopped)');
}
