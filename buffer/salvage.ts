// Salvage of a damaged outbox: before the file is set aside, every readable unsent row is copied, with its seq,
// id, topic, priority, payload and creation time, into a new outbox database that then takes its place.
//
// A damaged page makes any query that touches it fail, so rows are read in seq order and, when reading fails,
// the reader looks for the next seq where a `seq >= x` seek works again (galloping, then bisecting) and steps
// over the unreadable stretch. Rows in a stretch are counted as lost: by the (priority, seq) index when it is
// readable (exact), else by the width of the seq gap (an upper bound).
import Database from 'better-sqlite3';
import { AckedRanges } from './acked-ranges.js';
import { fileSize } from './files.js';
import { COLS, MAX_SEQ, P, type RawRow } from './rows.js';
import { SCHEMA, SCHEMA_VERSION } from './schema.js';

const COPY_CHUNK = 1000;
/** No stored row is smaller than this (rowid, record header, id, topic, numbers): bounds a seq-gap estimate. */
const MIN_ROW_BYTES = 24;
const FAIL = Symbol('unreadable');

export interface SalvageReport {
  /** Unsent rows copied into the new database. */
  salvaged_rows: number;
  /** Unsent rows of the damaged file that could not be read (or copied). */
  lost_rows: number;
  /** 'index': lost_rows is exact; 'seq_gaps': the index was unreadable too, lost_rows is an upper bound. */
  lost_counted_by: 'index' | 'seq_gaps';
  /** Stretches of seqs that could not be read. */
  unreadable_stretches: number;
  /** True when the new database is complete; false when writing it failed (copy_error) and it must be discarded. */
  copied: boolean;
  copy_error: string | null;
  /** Where the seqs of the fresh outbox continue: above every seq the damaged file issued. */
  next_seq: number;
  session: number;
}

const isRow = (r: unknown[]): r is RawRow =>
  Number.isSafeInteger(r[0]) &&
  typeof r[1] === 'string' &&
  typeof r[2] === 'string' &&
  Number.isInteger(r[3]) &&
  (r[3] as number) >= 0 &&
  (r[3] as number) < P &&
  Number.isFinite(r[4]) &&
  typeof r[5] === 'string' &&
  Number.isInteger(r[6]);

export class Salvage {
  private src: Database.Database | undefined;
  private dst: Database.Database | undefined;
  private insert: Database.Statement | undefined;
  private probeStmt: Database.Statement | undefined;
  private readonly acked = new AckedRanges(0);
  private readonly chunk: RawRow[] = [];
  private readonly holes: [number, number][] = [];
  private meta: { next_seq?: number; session?: number } = {};
  private salvaged = 0;
  private lost = 0;
  private countedBy: SalvageReport['lost_counted_by'] = 'index';
  private maxSeq = 0;
  private copyError: string | null = null;

  /**
   * @param damaged the damaged database (read only, never written)
   * @param target where the new database is written (must not exist)
   */
  constructor(
    private readonly damaged: string,
    private readonly target: string,
    private readonly now_ms: number,
  ) {}

  run(): SalvageReport {
    try {
      try {
        this.src = new Database(this.damaged, { readonly: true, fileMustExist: true });
      } catch {
        // unreadable as a whole: nothing to copy, the counters fall back to safe floors
      }
      if (this.src) this.readMetaAndAcks(this.src);
      this.openTarget();
      if (this.src) {
        this.walk(this.src);
        this.flush();
        this.countHoles(this.src);
      }
      this.finishTarget();
    } finally {
      close(this.src);
      close(this.dst);
    }
    return {
      salvaged_rows: this.salvaged,
      lost_rows: this.lost,
      lost_counted_by: this.countedBy,
      unreadable_stretches: this.holes.length,
      copied: this.copyError === null,
      copy_error: this.copyError,
      next_seq: this.nextSeq(),
      session: this.meta.session ?? Math.floor(this.now_ms / 1000),
    };
  }

  /** Above every seq seen; without a readable next_seq, the epoch in ms (above any seq a box can have issued). */
  private nextSeq(): number {
    return Math.max(this.meta.next_seq ?? this.now_ms, this.maxSeq + 1);
  }

  private readMetaAndAcks(src: Database.Database): void {
    const get = (key: string): number | undefined => {
      try {
        const v = src.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key);
        return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
      } catch {
        return undefined;
      }
    };
    const next_seq = get('next_seq');
    const session = get('session');
    this.meta = { ...(next_seq !== undefined ? { next_seq } : {}), ...(session !== undefined ? { session } : {}) };
    // The ranges read before a damaged page still count; rows of unreadable ranges are sent again (the center
    // drops duplicates by id).
    const ranges: { lo: number; hi: number; acked_at: number }[] = [];
    try {
      for (const r of src.prepare('SELECT lo, hi, acked_at FROM acked ORDER BY lo').iterate() as IterableIterator<{ lo: unknown; hi: unknown; acked_at: unknown }>) {
        if (Number.isSafeInteger(r.lo) && Number.isSafeInteger(r.hi) && typeof r.acked_at === 'number') {
          ranges.push({ lo: r.lo as number, hi: r.hi as number, acked_at: r.acked_at });
          this.maxSeq = Math.max(this.maxSeq, r.hi as number);
        }
      }
    } catch {
      // keep what was read
    }
    this.acked.load(ranges);
    try {
      const m = src.prepare('SELECT max(seq) FROM outbox').pluck().get();
      if (Number.isSafeInteger(m)) this.maxSeq = Math.max(this.maxSeq, m as number);
    } catch {
      // the rightmost pages are damaged: the walk and the index tell the rest
    }
  }

  /** Reads every row in seq order, stepping over unreadable stretches. */
  private walk(src: Database.Database): void {
    let scan: Database.Statement;
    try {
      scan = src.prepare(`SELECT ${COLS} FROM outbox WHERE seq >= ? ORDER BY seq`).raw();
      this.probeStmt = src.prepare(`SELECT ${COLS} FROM outbox WHERE seq >= ? ORDER BY seq LIMIT 1`).raw();
    } catch {
      this.holes.push([0, Infinity]); // the schema itself is unreadable
      return;
    }
    let from = 1;
    for (;;) {
      let last: number | undefined;
      try {
        for (const r of scan.iterate(from) as IterableIterator<unknown[]>) {
          last = r[0] as number;
          this.take(r);
        }
        return;
      } catch {
        // a damaged page: find where reading works again
      }
      // The lowest seq whose seek may fail: past the last row read, or `from` itself when nothing was read.
      const bad = last === undefined ? from : last + 1;
      const resume = this.resume(bad, last === undefined);
      this.holes.push([bad - 1, resume ?? Infinity]);
      if (resume === undefined) return;
      from = resume;
    }
  }

  /** The seq of the first readable row above an unreadable stretch that starts at `bad`, if any. */
  private resume(bad: number, knownBad: boolean): number | undefined {
    if (!knownBad) {
      const r = this.probe(bad);
      if (r !== FAIL) return r?.[0] as number | undefined;
    }
    let lo = bad; // a seek at lo fails
    let hi: number | undefined; // a seek at hi works
    let hiRow: unknown[] | undefined;
    for (let step = 1; lo < MAX_SEQ; step *= 2) {
      const x = Math.min(MAX_SEQ, lo + step);
      const r = this.probe(x);
      if (r !== FAIL) {
        hi = x;
        hiRow = r;
        break;
      }
      lo = x;
    }
    if (hi === undefined) return undefined;
    let good: number = hi;
    while (good - lo > 1) {
      const mid: number = lo + Math.floor((good - lo) / 2);
      const r = this.probe(mid);
      if (r === FAIL) lo = mid;
      else {
        good = mid;
        hiRow = r;
      }
    }
    return hiRow?.[0] as number | undefined;
  }

  /** The first row with seq >= x (undefined: none), or FAIL when reading it fails. */
  private probe(x: number): unknown[] | undefined | typeof FAIL {
    try {
      return this.probeStmt?.get(x) as unknown[] | undefined;
    } catch {
      return FAIL;
    }
  }

  private take(r: unknown[]): void {
    const seq = r[0];
    if (typeof seq === 'number') {
      this.maxSeq = Math.max(this.maxSeq, seq);
      if (this.acked.has(seq)) return; // delivered
    }
    if (!isRow(r) || !this.dst) {
      this.lost++;
      return;
    }
    this.chunk.push(r);
    if (this.chunk.length >= COPY_CHUNK) this.flush();
  }

  /** Counts the unsent rows of each unreadable stretch: from the index, else from the seq gap. */
  private countHoles(src: Database.Database): void {
    let bySeq: Database.Statement | undefined;
    try {
      bySeq = src.prepare('SELECT seq FROM outbox INDEXED BY outbox_priority WHERE priority = ? AND seq > ? AND seq < ?').pluck();
    } catch {
      // no readable index
    }
    for (const [a, b] of this.holes) {
      let n = bySeq ? this.countByIndex(bySeq, a, b) : undefined;
      if (n === undefined) {
        this.countedBy = 'seq_gaps';
        n = this.countBySpan(a, b);
      }
      this.lost += n;
    }
  }

  private countByIndex(bySeq: Database.Statement, a: number, b: number): number | undefined {
    let n = 0;
    try {
      for (let p = 0; p < P; p++) {
        for (const seq of bySeq.iterate(p, a, Math.min(b, MAX_SEQ)) as IterableIterator<number>) {
          this.maxSeq = Math.max(this.maxSeq, seq);
          if (!this.acked.has(seq)) n++;
        }
      }
    } catch {
      return undefined;
    }
    return n;
  }

  /** Unacknowledged seqs strictly between a and b (b open-ended: up to next_seq), at most what the file can hold. */
  private countBySpan(a: number, b: number): number {
    const end = Number.isFinite(b) ? b : (this.meta.next_seq ?? this.maxSeq + 1);
    let n = Math.max(0, end - a - 1);
    for (const r of this.acked.all()) n -= Math.max(0, Math.min(r.hi, end - 1) - Math.max(r.lo, a + 1) + 1);
    return Math.min(Math.max(0, n), Math.ceil(fileSize(this.damaged) / MIN_ROW_BYTES));
  }

  private openTarget(): void {
    try {
      const dst = new Database(this.target);
      this.dst = dst;
      dst.pragma('journal_mode = WAL');
      dst.pragma('synchronous = FULL');
      dst.exec(SCHEMA);
      this.insert = dst.prepare(`INSERT INTO outbox(${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    } catch (err) {
      this.copyFailed(err);
    }
  }

  private flush(): void {
    const rows = this.chunk.splice(0);
    const dst = this.dst;
    const insert = this.insert;
    if (rows.length === 0) return;
    if (!dst || !insert) {
      this.lost += rows.length;
      return;
    }
    try {
      dst.transaction(() => {
        for (const r of rows) insert.run(r);
      })();
      this.salvaged += rows.length;
    } catch (err) {
      this.lost += rows.length;
      this.copyFailed(err);
    }
  }

  /** Stores the counters and closes the new database cleanly (checkpointed: one self-contained file). */
  private finishTarget(): void {
    const dst = this.dst;
    if (!dst) return;
    try {
      const set = dst.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
      dst.transaction(() => {
        set.run('schema_version', SCHEMA_VERSION);
        set.run('next_seq', this.nextSeq());
        set.run('session', this.meta.session ?? Math.floor(this.now_ms / 1000));
      })();
      dst.pragma('wal_checkpoint(TRUNCATE)');
      dst.close();
      this.dst = undefined;
    } catch (err) {
      this.copyFailed(err);
    }
  }

  /** Writing the copy failed: it is discarded, so what it held counts as lost too. */
  private copyFailed(err: unknown): void {
    this.copyError ??= (err as Error).message ?? String(err);
    this.lost += this.salvaged;
    this.salvaged = 0;
    close(this.dst);
    this.dst = undefined;
  }
}

function close(db: Database.Database | undefined): void {
  try {
    db?.close();
  } catch {
    // the handle is unusable anyway
  }
}
