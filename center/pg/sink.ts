// PostgreSQL sink of the fleet receiver: events (with violations and flow bins), health reports, device
// availability and the seq bookkeeping, written in batches: as soon as `batch_rows` rows wait, else every
// `flush_ms` (a batch grows by itself while the previous one is being written). Each batch is one transaction.
//
// The device state (and with it the seq state a restarted receiver resumes from) is written at most every
// `state_ms`, always in a transaction that also writes every row queued before its snapshot: a saved seq state
// never claims a seq whose row is not stored. When the database is slow or unreachable rows wait in memory
// (retried with backoff); from `pause_rows` on the receiver stops reading from the broker until half of them are
// written (backpressure: the broker queues). Rows handed over beyond `max_pending_rows` all the same (ingest()
// without a broker) make the sink drop the oldest and stop saving seq state, so the next receiver finds those seqs
// missing and asks the boxes to resend them.
import pg from 'pg';
import { AgentError, errorMessage } from '../../core/errors.js';
import { redactUrl, type Logger } from '../../core/log.js';
import { Backoff } from '../../core/time.js';
import { RateMeter } from '../rate-meter.js';
import { closedError, type EventSink, type ReceivedEvent, type ReceivedHealth, type SinkStats } from '../sinks.js';
import type { DeviceSnapshot, DeviceStateStore, SavedDeviceSeqs } from '../state.js';
import { migrate } from './migrate.js';
import { SQL } from './rows.js';
import { BatchWriter } from './writer.js';

export interface PgSinkOptions {
  /** postgres://user@host:port/db (the password may also come from PGPASSWORD). */
  url: string;
  /** Write as soon as this many rows wait. Default 500. */
  batch_rows?: number;
  /** Write what waits at least this often, ms. Default 100. */
  flush_ms?: number;
  /** Write device state (availability, seq bookkeeping) at most this often, ms. Default 1000. */
  state_ms?: number;
  /** Rows waiting from which the receiver stops reading from the broker until half are written. Default 20000. */
  pause_rows?: number;
  /** Rows kept in memory at most (the oldest are dropped beyond). Default 100000. */
  max_pending_rows?: number;
}

const ERROR_LOG_MS = 30_000;

export class PgSink implements EventSink, DeviceStateStore {
  readonly name = 'postgres';
  /** Rows stored (events and health; copies already stored do not count). */
  written = 0;
  /** Rows handed to the database whose (device, seq) was already stored. */
  duplicates = 0;
  dropped = 0;
  /** Rows the database refused (kept in rejected_rows). */
  rejected = 0;
  private pool: pg.Pool | undefined;
  private writer: BatchWriter | undefined;
  private events: ReceivedEvent[] = [];
  private health: ReceivedHealth[] = [];
  private readonly pendingState = new Map<string, DeviceSnapshot>();
  private source: (() => DeviceSnapshot[]) | undefined;
  private stateAt = 0;
  private stateFrozen = false;
  private readonly rate = new RateMeter();
  private readonly backoff = new Backoff({ initial_ms: 250, max_ms: 10_000, jitter: 0.3 });
  private retryAt = 0;
  private lastError: string | null = null;
  private lastErrorLog = 0;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  /** Receivers waiting for the queue to shrink (backpressure). */
  private waiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly o: Required<PgSinkOptions>;

  constructor(
    opts: PgSinkOptions,
    private readonly log: Logger,
  ) {
    this.o = { batch_rows: 500, flush_ms: 100, state_ms: 1000, pause_rows: 20_000, max_pending_rows: 100_000, ...opts };
  }

  /** URL without credentials, for messages. */
  get where(): string {
    return redactUrl(this.o.url);
  }

  /** Connects and brings the schema up to date. */
  async start(): Promise<void> {
    if (this.closing) throw closedError(this.name, this.where);
    if (this.pool) return;
    const pool = new pg.Pool({ connectionString: this.o.url, max: 2, connectionTimeoutMillis: 10_000, application_name: 'roadside-center' });
    // An idle connection that breaks (server restart) must not crash the receiver: the next query reconnects.
    pool.on('error', (err) => this.log.warn({ err: err.message, db: this.where }, 'center: PostgreSQL connection lost'));
    try {
      await pool.query('SELECT 1');
      await migrate(pool, this.log);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof AgentError) throw err;
      throw new AgentError('PG_CONNECT', `PostgreSQL at ${this.where}: ${errorMessage(err)}`, { cause: err });
    }
    this.pool = pool;
    this.writer = new BatchWriter(pool, this.log);
    this.timer = setInterval(() => void this.drain(false), this.o.flush_ms);
    this.timer.unref();
  }

  async loadSeqs(sites: string[] | undefined): Promise<SavedDeviceSeqs[]> {
    const pool = this.requirePool();
    const { rows } = await pool.query<Record<string, unknown>>(sites?.length ? `${SQL.loadSeqs} WHERE site = ANY($1)` : SQL.loadSeqs, sites?.length ? [sites] : []);
    const n = (v: unknown): number => Number(v);
    return rows.map((r) => ({
      site: String(r.site),
      device: String(r.device),
      seqs: {
        first: n(r.first_seq),
        last: n(r.last_seq),
        received: n(r.received),
        duplicates: n(r.duplicates),
        gaps: r.gaps as SavedDeviceSeqs['seqs']['gaps'],
        filled_late: n(r.filled_late),
        repaired: n(r.repaired),
        resend_requests: n(r.resend_requests),
      },
    }));
  }

  track(changed: () => DeviceSnapshot[]): void {
    this.source = changed;
  }

  write(e: ReceivedEvent): void {
    if (this.closing) throw closedError(this.name, this.where);
    this.events.push(e);
    this.queued();
  }

  writeHealth(h: ReceivedHealth): void {
    if (this.closing) throw closedError(this.name, this.where);
    this.health.push(h);
    this.queued();
  }

  /** Starts writing what waits (without waiting for it). */
  flush(): void {
    void this.drain(false);
  }

  /** Writes everything that waits, device state included; rejects when the database refuses. */
  async flushAll(): Promise<void> {
    this.requirePool();
    for (;;) {
      await this.draining;
      await this.drain(true);
      if (this.pending === 0 && (this.pendingState.size === 0 || this.stateFrozen) && !this.draining) return;
    }
  }

  /** Writes what waits (a few attempts) and disconnects. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): SinkStats {
    this.rate.roll(Date.now());
    return { name: this.name, written: this.written, rows_per_s: this.rate.msgsPerS, pending: this.pending, dropped: this.dropped, rejected: this.rejected, error: this.lastError };
  }

  writable(): Promise<void> | null {
    if (this.pending < this.o.pause_rows || this.closing) return null;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(all = false): void {
    if (this.waiters.length > 0 && (all || this.pending < this.o.pause_rows / 2)) for (const w of this.waiters.splice(0)) w();
  }

  get pending(): number {
    return this.events.length + this.health.length;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.wake(true);
    if (!this.pool) return;
    let failure: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.flushAll();
        failure = undefined;
        break;
      } catch (err) {
        failure = err;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
    await this.pool.end().catch(() => undefined);
    if (failure) throw new AgentError('PG_WRITE', `PostgreSQL at ${this.where}: ${this.pending} row(s) not written at close: ${errorMessage(failure)}`, { cause: failure });
  }

  private requireWriter(): BatchWriter {
    if (!this.writer) throw new AgentError('PG_NOT_STARTED', 'the PostgreSQL sink is not started');
    return this.writer;
  }

  private requirePool(): pg.Pool {
    if (!this.pool) throw new AgentError('PG_NOT_STARTED', 'the PostgreSQL sink is not started');
    return this.pool;
  }

  private queued(): void {
    if (this.pending > this.o.max_pending_rows) this.dropOldest();
    if (this.pending >= this.o.batch_rows) void this.drain(false);
  }

  private dropOldest(): void {
    const excess = this.pending - this.o.max_pending_rows;
    const fromHealth = Math.min(excess, this.health.length);
    this.health.splice(0, fromHealth);
    this.events.splice(0, excess - fromHealth);
    this.dropped += excess;
    if (!this.stateFrozen) {
      this.stateFrozen = true;
      this.pendingState.clear();
      this.log.error(
        { db: this.where, max_pending_rows: this.o.max_pending_rows },
        'center: PostgreSQL unreachable too long: dropping the oldest rows and no longer saving seq state; restart the receiver once the database is back so the dropped seqs are resent',
      );
    }
  }

  /** One writer at a time; `force`: write device state now and ignore the retry delay. */
  private drain(force: boolean): Promise<void> {
    if (this.pool && !this.draining) {
      this.draining = this.drainLoop(force).finally(() => {
        this.draining = undefined;
      });
    }
    return this.draining ?? Promise.resolve();
  }

  private async drainLoop(force: boolean): Promise<void> {
    let stateNow = force; // one forced snapshot per call, or a call under load would never end
    for (;;) {
      const now = Date.now();
      if (!force && now < this.retryAt) return;
      const stateDue = this.source !== undefined && !this.stateFrozen && (stateNow || now - this.stateAt >= this.o.state_ms);
      stateNow = false;
      if (stateDue && this.source) {
        this.stateAt = now;
        for (const s of this.source()) this.pendingState.set(`${s.site}/${s.device}`, s);
      }
      const withState = stateDue && this.pendingState.size > 0;
      if (this.pending === 0 && !withState) return;
      // With device state: every queued row (see the top comment); otherwise one batch.
      const nEvents = withState ? this.events.length : Math.min(this.events.length, this.o.batch_rows);
      const nHealth = withState ? this.health.length : Math.min(this.health.length, this.o.batch_rows - nEvents);
      const events = this.events.splice(0, nEvents);
      const health = this.health.splice(0, nHealth);
      const state = withState ? [...this.pendingState.values()] : [];
      try {
        const r = await this.requireWriter().write(events, health, state);
        this.written += r.inserted;
        this.duplicates += r.handed - r.inserted;
        this.rejected += r.rejected;
        if (withState) for (const s of state) if (this.pendingState.get(`${s.site}/${s.device}`) === s) this.pendingState.delete(`${s.site}/${s.device}`);
        this.rate.add(Date.now(), events.length + health.length);
        if (this.lastError) this.log.warn({ db: this.where }, 'center: PostgreSQL writes work again');
        this.lastError = null;
        this.backoff.reset();
        this.retryAt = 0;
        this.wake();
      } catch (err) {
        this.events = events.concat(this.events);
        this.health = health.concat(this.health);
        if (this.pending > this.o.max_pending_rows) this.dropOldest();
        if ((err as { code?: string }).code === '23514') this.writer?.forgetPartitions(); // no partition for a row: one was dropped meanwhile
        this.lastError = errorMessage(err);
        this.retryAt = Date.now() + this.backoff.next();
        if (Date.now() - this.lastErrorLog >= ERROR_LOG_MS) {
          this.lastErrorLog = Date.now();
          this.log.error({ db: this.where, err: this.lastError, pending: this.pending }, 'center: writing to PostgreSQL failed; retrying');
        }
        if (force) throw err;
        return;
      }
    }
  }
}
