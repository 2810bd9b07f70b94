// Where the fleet receiver writes the events it accepted (first copy of each (device, seq), valid payload only):
// JSON lines for a quick look or a replay, or SQLite for queries (duplicates are ignored by the primary key, so a
// replay into the same database is idempotent). The PostgreSQL sink (center/pg/) also keeps health reports and
// device state.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { WireEvent } from '../contract/event.js';
import type { HealthMessage } from '../contract/health.js';
import { AgentError } from '../core/errors.js';

export interface ReceivedEvent {
  /** MQTT topic the event arrived on. */
  topic: string;
  site: string;
  device: string;
  /** Arrival time at the receiver, ms since epoch. */
  received_at: number;
  event: WireEvent;
}

export interface ReceivedHealth {
  topic: string;
  site: string;
  device: string;
  /** Arrival time at the receiver, ms since epoch. */
  received_at: number;
  health: HealthMessage;
}

/** What a sink reports for the live view and the summary lines. */
export interface SinkStats {
  name: string;
  /** Rows stored (copies already stored are not counted). */
  written: number;
  /** Rows handed to the store per second, mean of the last 5 s. */
  rows_per_s: number;
  /** Rows waiting to be written. */
  pending: number;
  /** Rows dropped because the store was unreachable for too long (their seqs are repaired after a restart). */
  dropped: number;
  /** Rows the store refused (kept aside with the error, e.g. PostgreSQL's rejected_rows). */
  rejected: number;
  /** Last write error, while writes fail; null once a write succeeded. */
  error: string | null;
}

export interface EventSink {
  readonly name: string;
  /** Connects and prepares the store (e.g. migrations); the receiver calls it before it subscribes. */
  start?(): Promise<void>;
  /** Buffers one event. After close(): a SINK_CLOSED error (nothing is dropped silently). */
  write(e: ReceivedEvent): void;
  /** Buffers one health report (sinks that keep them). */
  writeHealth?(h: ReceivedHealth): void;
  /** Writes what is buffered. */
  flush(): void;
  /** Writes what is buffered and releases the file. Idempotent: later calls return the first call's promise. */
  close(): Promise<void>;
  stats?(): SinkStats;
  /**
   * null when the sink takes more rows now; else a promise resolved once it does. Meanwhile the receiver stops
   * acknowledging and reading messages (backpressure: the broker queues them) rather than growing memory.
   */
  writable?(): Promise<void> | null;
}

export function closedError(sink: string, path: string): AgentError {
  return new AgentError('SINK_CLOSED', `the ${sink} sink ${path} is closed: the event was not written`);
}

const FLUSH_MS = 250;

/** One JSON object per line: `{"received_at": ISO, "topic": …, "event": {…wire event…}}`. Appends to the file. */
export class JsonlSink implements EventSink {
  readonly name = 'jsonl';
  private readonly stream: WriteStream;
  private buf: string[] = [];
  private readonly timer: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  written = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.stream = createWriteStream(path, { flags: 'a' });
    this.stream.on('error', () => undefined); // surfaced by close()
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  write(e: ReceivedEvent): void {
    if (this.closing) throw closedError(this.name, this.path);
    this.buf.push(JSON.stringify({ received_at: new Date(e.received_at).toISOString(), topic: e.topic, event: e.event }));
    if (this.buf.length >= 1000) this.flush();
  }

  flush(): void {
    if (this.buf.length === 0) return;
    this.stream.write(`${this.buf.join('\n')}\n`);
    this.written += this.buf.length;
    this.buf = [];
  }

  close(): Promise<void> {
    // A second end() on the stream throws "Cannot call end after a stream was finished": close once.
    this.closing ??= new Promise<void>((resolve, reject) => {
      clearInterval(this.timer);
      this.flush();
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    return this.closing;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  site        TEXT    NOT NULL,
  device      TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  id          TEXT    NOT NULL,
  camera      TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  priority    TEXT    NOT NULL,
  captured_at TEXT    NOT NULL,
  received_at TEXT    NOT NULL,
  replayed    INTEGER NOT NULL,
  topic       TEXT    NOT NULL,
  payload     TEXT    NOT NULL,
  PRIMARY KEY (site, device, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_captured_at ON events(captured_at);
CREATE INDEX IF NOT EXISTS events_type ON events(type, captured_at);
`;

/** SQLite (WAL): table `events`, one row per (site, device, seq); written in one transaction every 250 ms. */
export class SqliteSink implements EventSink {
  readonly name = 'sqlite';
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private batch: ReceivedEvent[] = [];
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  written = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.insert = this.db.prepare(
      'INSERT OR IGNORE INTO events(site, device, seq, id, camera, type, priority, captured_at, received_at, replayed, topic, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  write(e: ReceivedEvent): void {
    if (this.closed) throw closedError(this.name, this.path);
    this.batch.push(e);
    if (this.batch.length >= 5000) this.flush();
  }

  flush(): void {
    if (this.batch.length === 0) return;
    const rows = this.batch;
    this.batch = [];
    this.db.transaction(() => {
      for (const r of rows) {
        const ev = r.event;
        const info = this.insert.run(
          r.site,
          r.device,
          ev.seq,
          ev.id,
          ev.camera,
          ev.type,
          ev.priority,
          ev.captured_at,
          new Date(r.received_at).toISOString(),
          ev.replayed ? 1 : 0,
          r.topic,
          JSON.stringify(ev),
        );
        this.written += info.changes;
      }
    })();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearInterval(this.timer);
    try {
      this.flush();
    } finally {
      this.db.close();
    }
    return Promise.resolve();
  }
}
