// Schema migrations: the pending ones applied in order inside one transaction and recorded in schema_migrations
// (version, name, checksum). Receivers starting together take an advisory lock, so one applies and the others see
// the result; a rerun with nothing pending changes nothing. An applied migration whose text changed, or a database
// newer than this receiver, is refused rather than guessed at.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

/** Arbitrary constant of this schema's migration lock (pg_advisory_xact_lock takes a bigint). */
const MIGRATION_LOCK = 7_402_114_118;

export interface MigrationResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** Schema version after the call. */
  version: number;
}

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new AgentError('PG_MIGRATION_ORDER', `migration ${m.name} has version ${m.version}, expected ${i + 1} (versions are 1, 2, 3… in order)`);
  });
}

export async function migrate(pool: pg.Pool, log: Logger, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  checkOrder(migrations);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    for (const row of rows) {
      const m = migrations[row.version - 1];
      if (!m) {
        throw new AgentError('PG_SCHEMA_NEWER', `the database schema is at version ${rows.length} (migration ${row.version} "${row.name}"), newer than this receiver knows (${migrations.length}): upgrade the receiver`);
      }
      if (checksum(m.sql) !== row.checksum) {
        throw new AgentError('PG_MIGRATION_CHANGED', `migration ${m.version} "${m.name}" differs from the one applied to the database: add a new migration instead of editing an applied one`);
      }
    }
    const applied: number[] = [];
    for (const m of migrations.slice(rows.length)) {
      try {
        await client.query(m.sql);
      } catch (err) {
        throw new AgentError('PG_MIGRATION_FAILED', `migration ${m.version} "${m.name}" failed: ${(err as Error).message}`, { cause: err });
      }
      await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, checksum(m.sql)]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    if (applied.length) log.info({ applied, version: migrations.length }, 'center: database schema migrated');
    return { applied, version: migrations.length };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
