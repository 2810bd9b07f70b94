// One batch of the PostgreSQL sink into the database: the day partitions its rows need (created on demand), then
// events with their violation and flow rows, health, and device state in one transaction. A row PostgreSQL cannot
// store (a data exception, e.g. a NUL character in a text) must not stop the stream: the batch is then written row
// by row and the refused rows go to rejected_rows with the error.
import type pg from 'pg';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ReceivedEvent, ReceivedHealth } from '../sinks.js';
import type { DeviceSnapshot } from '../state.js';
import { deviceRow, eventRow, flowRow, healthRow, seqRow, SQL, utcDay, violationRow, type Row } from './rows.js';

/** Rows per INSERT statement (one JSON parameter each). */
const STATEMENT_ROWS = 5000;

export interface WriteResult {
  /** Event and health rows stored. */
  inserted: number;
  /** Event and health rows handed to the database (the difference: copies already stored). */
  handed: number;
  /** Rows refused by the database, kept in rejected_rows. */
  rejected: number;
}

/** An event's rows: the event, and its violation or flow row. */
interface EventRows {
  event: Row;
  violation: Row | null;
  flow: Row | null;
  days: [string, string][];
}

/** SQLSTATE classes of a value the database cannot take: data exception, program limit exceeded. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

export class BatchWriter {
  private readonly partitions = new Set<string>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** After "no partition for this row" (one was dropped meanwhile): check every partition again. */
  forgetPartitions(): void {
    this.partitions.clear();
  }

  async write(events: ReceivedEvent[], health: ReceivedHealth[], state: DeviceSnapshot[]): Promise<WriteResult> {
    const groups = events.map((e): EventRows => {
      const flow = flowRow(e);
      const days: [string, string][] = [['events', utcDay(e.event.captured_at)]];
      if (flow) days.push(['flow_bins', utcDay(flow.bin_start as string)]);
      return { event: eventRow(e), violation: violationRow(e), flow, days };
    });
    const healthRows = health.map((h) => ({ row: healthRow(h), days: [['health_samples', utcDay(h.health.ts)]] as [string, string][] }));
    try {
      await this.ensurePartitions([...groups.flatMap((g) => g.days), ...healthRows.flatMap((h) => h.days)]);
      return await this.transaction(async (c) => {
        const result = await this.insertRows(c, groups, healthRows.map((h) => h.row));
        await this.insertState(c, state);
        return result;
      });
    } catch (err) {
      if (!isDataError(err)) throw err;
      this.log.warn({ err: errorMessage(err) }, 'center: PostgreSQL refused a row of the batch; writing it row by row');
    }
    const total: WriteResult = { inserted: 0, handed: 0, rejected: 0 };
    for (const g of groups) await this.one('events', g.event, g.days, (c) => this.insertRows(c, [g], []), total);
    for (const h of healthRows) await this.one('health_samples', h.row, h.days, (c) => this.insertRows(c, [], [h.row]), total);
    await this.transaction((c) => this.insertState(c, state));
    return total;
  }

  /** One row in its own transaction; refused: into rejected_rows. */
  private async one(target: string, row: Row, days: [string, string][], insert: (c: pg.PoolClient) => Promise<WriteResult>, total: WriteResult): Promise<void> {
    try {
      await this.ensurePartitions(days);
      const r = await this.transaction(insert);
      total.inserted += r.inserted;
      total.handed += r.handed;
    } catch (err) {
      if (!isDataError(err)) throw err;
      const error = errorMessage(err);
      this.log.error({ target, site: row.site, device: row.device, seq: row.seq, err: error }, 'center: PostgreSQL refused a row; kept in rejected_rows');
      await this.pool.query(SQL.reject, [target, row.site, row.device, row.seq, error, JSON.stringify(row)]);
      total.rejected++;
    }
  }

  private async insertRows(c: pg.PoolClient, groups: EventRows[], health: Row[]): Promise<WriteResult> {
    const result: WriteResult = { inserted: 0, handed: 0, rejected: 0 };
    const insert = async (sql: string, rows: Row[], counted: boolean): Promise<void> => {
      for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
        const chunk = rows.slice(i, i + STATEMENT_ROWS);
        const res = await c.query(sql, [JSON.stringify(chunk)]);
        if (!counted) continue;
        result.inserted += res.rowCount ?? 0;
        result.handed += chunk.length;
      }
    };
    await insert(SQL.events, groups.map((g) => g.event), true);
    await insert(SQL.violations, groups.flatMap((g) => (g.violation ? [g.violation] : [])), false);
    await insert(SQL.flowBins, groups.flatMap((g) => (g.flow ? [g.flow] : [])), false);
    await insert(SQL.health, health, true);
    return result;
  }

  private async insertState(c: pg.PoolClient, state: DeviceSnapshot[]): Promise<void> {
    if (state.length === 0) return;
    await c.query(SQL.devices, [JSON.stringify(state.map(deviceRow))]);
    const seqs = state.flatMap((s) => seqRow(s) ?? []);
    if (seqs.length) await c.query(SQL.seqs, [JSON.stringify(seqs)]);
  }

  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      // A connection that failed (e.g. the server restarted) is closed, not handed out again.
      client.release(failure);
    }
  }

  /** Creates the day partitions rows are about to need (each checked once per process). */
  private async ensurePartitions(needed: [string, string][]): Promise<void> {
    for (const [table, day] of needed) {
      const key = `${table}:${day}`;
      if (this.partitions.has(key)) continue;
      await this.pool.query(SQL.ensurePartition, [table, day]);
      this.partitions.add(key);
    }
  }
}
