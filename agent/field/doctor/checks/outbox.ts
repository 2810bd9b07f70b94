// Outbox: integrity (PRAGMA quick_check) and rows waiting, on a read-only connection to the live file, never
// the Outbox class (its open() switches to WAL and quarantines a damaged file: doctor must not change anything).
//
// The connection runs in a worker thread: better-sqlite3 is synchronous and quick_check of a large outbox on an
// SD card takes seconds, which would stall the camera measurement running meanwhile. Like any SQLite reader of
// a WAL database it may leave an empty -wal and a -shm beside the file; SQLite gives them the database file's
// owner and mode, so the agent uses them as its own.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { OUTBOX_PRIORITIES, type OutboxConfig } from '../../../../config/schema/index.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

/** Rows waiting beyond this share of outbox.max_rows is a warning: eviction of old rows is near. */
export const WAITING_WARN_RATIO = 0.8;

interface Inspection {
  ok: true;
  problems: string[];
  has_tables: boolean;
  rows_total: number;
  waiting: { p: number; n: number; oldest: number | null }[];
}
interface InspectionError {
  ok: false;
  code: string | null;
  message: string;
}

// CommonJS, evaluated in the worker: plain JS, so it runs the same from sources (vitest) and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.file, { readonly: true, fileMustExist: true, timeout: workerData.busyMs });
  const problems = db.pragma('quick_check(20)', { simple: false }).map((r) => String(Object.values(r)[0]));
  const ok = problems.length === 1 && problems[0] === 'ok';
  const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all());
  const has_tables = tables.has('outbox') && tables.has('acked');
  let rows_total = 0;
  let waiting = [];
  if (ok && has_tables) {
    rows_total = db.prepare('SELECT count(*) FROM outbox').pluck().get();
    // Acknowledged seqs are disjoint ranges [lo, hi] (buffer/acked-ranges.ts): a row waits unless the range
    // starting at or below its seq reaches it.
    waiting = db.prepare(
      'SELECT priority AS p, count(*) AS n, min(created_at) AS oldest FROM outbox o ' +
      'WHERE coalesce((SELECT hi FROM acked a WHERE a.lo <= o.seq ORDER BY a.lo DESC LIMIT 1), 0) < o.seq GROUP BY priority'
    ).all();
  }
  parentPort.postMessage({ ok: true, problems: ok ? [] : problems, has_tables, rows_total, waiting });
} catch (err) {
  parentPort.postMessage({ ok: false, code: typeof err.code === 'string' ? err.code : null, message: String(err.message || err) });
} finally {
  try { if (db) db.close(); } catch {}
}
`;

function inspect(file: string, signal: AbortSignal): Promise<Inspection | InspectionError> {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, module, busyMs: 2_000 }, name: 'doctor-outbox' });
  return new Promise((resolve) => {
    const done = (r: Inspection | InspectionError): void => {
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = (): void => {
      void worker.terminate();
      done({ ok: false, code: 'ABORTED', message: 'aborted' });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: Inspection | InspectionError) => done(m));
    worker.once('error', (err) => done({ ok: false, code: null, message: err.message }));
    worker.once('exit', (code) => done({ ok: false, code: null, message: `inspection worker exited (${code})` }));
  });
}

const fileBytes = (f: string): number => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

function hasSqliteHeader(f: string): boolean {
  try {
    const fd = openSync(f, 'r');
    try {
      const head = Buffer.alloc(SQLITE_HEADER.length);
      return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_HEADER);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

const showBytes = (b: number): string => (b < 1e6 ? `${Math.ceil(b / 1e3)} kB` : `${(b / 1e6).toFixed(1)} MB`);

export async function checkOutbox(outbox: OutboxConfig, signal: AbortSignal, now = Date.now()): Promise<CheckOutcome> {
  const file = outbox.path;
  let quarantined: string[] = [];
  try {
    quarantined = readdirSync(dirname(file)).filter((n) => n.startsWith(`${basename(file)}.corrupt-`) && !/-(wal|shm)$/.test(n));
  } catch {
    // no data dir: the files check reports it
  }
  const figures: Record<string, unknown> = { path: file, quarantined_files: quarantined.length };
  if (!existsSync(file)) return pass(`no outbox yet at ${file} (the agent creates it at its first start)`, figures);
  const bytes = fileBytes(file) + fileBytes(`${file}-wal`);
  figures.size_mb = Math.round(bytes / 1e4) / 100;

  // The agent refuses to open (or quarantine) a file that is not an SQLite database: it may be someone else's.
  if (bytes > 0 && !hasSqliteHeader(file)) {
    return fail(`${file} is not an SQLite database: the agent refuses to open or move it`, 'move that file out of the way if it is a leftover, or point outbox.path at a file of the agent\'s own', figures);
  }
  const r = await inspect(file, signal);
  if (!r.ok) {
    if (r.code !== null && /^SQLITE_(CORRUPT|NOTADB)/.test(r.code)) {
      return fail(`${file} is damaged: ${r.message} (${r.code})`, 'restart the agent: it moves the damaged file aside and starts a fresh outbox with the unsent rows it can still read; keep the .corrupt file', figures);
    }
    if (r.code !== null && /^SQLITE_(BUSY|LOCKED)/.test(r.code)) {
      return warn(`${file} is locked: ${r.message}; not checked`, 'run doctor again in a minute', figures);
    }
    return warn(`cannot check ${file}: ${r.message}${r.code ? ` (${r.code})` : ''}`, 'run doctor as root (sudo) or as the agent user, so it can read the outbox', figures);
  }
  if (r.problems.length > 0) {
    figures.quick_check = r.problems;
    return fail(
      `${file} is damaged: quick_check: ${r.problems[0]}${r.problems.length > 1 ? ` (+${r.problems.length - 1} more)` : ''}`,
      'restart the agent: it moves the damaged file aside and starts a fresh outbox with the unsent rows it can still read; keep the .corrupt file',
      figures,
    );
  }
  figures.quick_check = 'ok';
  if (!r.has_tables) return pass(`${file}: intact, empty (no outbox tables yet)`, figures);

  const waiting = Object.fromEntries(OUTBOX_PRIORITIES.map((p) => [p, 0])) as Record<string, number>;
  let total = 0;
  let oldest: number | null = null;
  for (const w of r.waiting) {
    const name = OUTBOX_PRIORITIES[w.p] ?? `priority_${w.p}`;
    waiting[name] = (waiting[name] ?? 0) + w.n;
    total += w.n;
    if (w.oldest !== null) oldest = oldest === null ? w.oldest : Math.min(oldest, w.oldest);
  }
  const oldest_s = oldest === null ? null : Math.max(0, Math.round((now - oldest) / 1000));
  Object.assign(figures, { rows_total: r.rows_total, rows_waiting: total, waiting, oldest_waiting_age_s: oldest_s, acked_kept: r.rows_total - total, max_rows: outbox.max_rows });
  const age = oldest_s === null ? '' : `, oldest ${oldest_s < 120 ? `${oldest_s} s` : oldest_s < 7200 ? `${Math.round(oldest_s / 60)} min` : `${Math.round(oldest_s / 3600)} h`}`;
  const head = `intact (quick_check ok), ${total} row(s) waiting${age}, ${showBytes(bytes)}${quarantined.length ? `; ${quarantined.length} damaged file(s) quarantined earlier` : ''}`;
  if (total >= WAITING_WARN_RATIO * outbox.max_rows) {
    return warn(`${head}: near outbox.max_rows (${outbox.max_rows})`, 'the uplink is not draining: fix the broker check first; old low-priority rows will be evicted', figures);
  }
  return pass(head, figures);
}
