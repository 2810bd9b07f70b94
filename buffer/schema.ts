// The outbox database: tables and the prepared statements every part uses.
//
// Table `outbox` holds every row (unsent and acknowledged-but-kept); table `acked` holds the acknowledged seqs
// as ranges [lo, hi] (see acked-ranges.ts), so an acknowledgement updates no row; table `meta` holds next_seq
// and the uplink's session counter.
import type Database from 'better-sqlite3';
import { COLS } from './rows.js';

export const SCHEMA_VERSION = 1;

/** The only tables an outbox file has: a database with any other table belongs to someone else. */
export const OUTBOX_TABLES: ReadonlySet<string> = new Set(['meta', 'outbox', 'acked']);

export const SCHEMA = `
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

/** Rows per multi-row INSERT: about a third less CPU per row than single-row statements. */
export const INSERT_CHUNK = 16;

type Stmt = Database.Statement;

export interface Statements {
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

export function prepare(db: Database.Database): Statements {
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
