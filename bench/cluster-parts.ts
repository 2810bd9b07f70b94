// Parts of the broker-cluster scenario (bench/cluster.ts): a simulated box and the store the receivers write to.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PgSink } from '../center/pg/sink.js';
import { SqliteSink, type EventSink } from '../center/sinks.js';
import type { Logger } from '../core/log.js';
import { Postgres } from '../testkit/postgres.js';
import { SimDevice, type SimDeviceOptions } from '../testkit/fleet-sim.js';


/** One simulated box of the cluster scenario, with its failover bookkeeping. */
export class ClusterBox extends SimDevice {
  /** Failover bookkeeping: when the connection was lost after the kill, when it was back, the backlog then. */
  lostAt: number | null = null;
  backAt: number | null = null;
  backlogAtBack = 0;
  /** Connection attempts it took to get back (the first one after the loss included). */
  attemptsToBack = 0;
  attemptsAtLoss = 0;
  drainedAt: number | null = null;

  constructor(site: string, id: string, dir: string, urls: string[], o: Omit<SimDeviceOptions, 'protocol'>, log: Logger) {
    super(id, dir, urls, { ...o, protocol: 4 }, log, site);
  }
}

/** Where the receivers store: counts and per-device seqs, events and health together. */
export interface Store {
  sinks(receiver: number): EventSink[];
  /** The `roadside-agent center` options that store into the same place as sinks(receiver). */
  cliArgs(receiver: number): string[];
  /** Rows stored (events + health). */
  count(): Promise<number>;
  /** key → seq → copies stored. */
  seqs(): Promise<Map<string, Map<number, number>>>;
  close(): Promise<void>;
}

export async function postgresStore(log: Logger): Promise<Store> {
  const server = await Postgres.start();
  const url = await server.createDatabase('cluster');
  return {
    sinks: () => [new PgSink({ url }, log)],
    cliArgs: () => ['--pg', url],
    count: async () => {
      const [r] = await server.query<{ n: string }>('SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM health_samples) AS n', [], url);
      return Number(r?.n ?? 0);
    },
    seqs: async () => {
      const rows = await server.query<{ key: string; seq: string; n: string }>(
        `SELECT site || '/' || device AS key, seq, count(*) AS n FROM (SELECT site, device, seq FROM events UNION ALL SELECT site, device, seq FROM health_samples) x GROUP BY 1, 2`,
        [],
        url,
      );
      return bySeq(rows.map((r) => ({ key: r.key, seq: Number(r.seq), n: Number(r.n) })));
    },
    close: () => server.stop(),
  };
}

/** SQLite sinks keep events only: a health seq counts as stored when a receiver accepted it (noted here). */
export function sqliteStore(dir: string): Store {
  const files: string[] = [];
  const healthSeqs = new Map<string, Map<number, number>>();
  const noteHealth: EventSink = {
    name: 'health-seqs',
    write: () => undefined,
    writeHealth: (h) => {
      const key = `${h.site}/${h.device}`;
      const m = healthSeqs.get(key) ?? new Map<number, number>();
      m.set(h.health.seq, (m.get(h.health.seq) ?? 0) + 1);
      healthSeqs.set(key, m);
    },
    flush: () => undefined,
    close: () => Promise.resolve(),
  };
  const read = (sql: string): { key: string; seq: number; n: number }[] =>
    files.flatMap((f) => {
      if (!existsSync(f)) return [];
      const db = new Database(f, { readonly: true });
      try {
        return db.prepare(sql).all() as { key: string; seq: number; n: number }[];
      } finally {
        db.close();
      }
    });
  const healthRows = (): number => [...healthSeqs.values()].reduce((a, m) => a + m.size, 0);
  return {
    sinks: (i) => {
      const file = join(dir, `center-${i}.db`);
      files.push(file);
      return [new SqliteSink(file), noteHealth];
    },
    cliArgs: (i) => ['--db', join(dir, `center-${i}.db`)],
    count: () => Promise.resolve(read("SELECT '' AS key, 0 AS seq, count(*) AS n FROM events").reduce((a, r) => a + r.n, 0) + healthRows()),
    seqs: () => {
      const out = bySeq(read("SELECT site || '/' || device AS key, seq, count(*) AS n FROM events GROUP BY 1, 2"));
      for (const [key, m] of healthSeqs) {
        const d = out.get(key) ?? new Map<number, number>();
        for (const [seq, n] of m) d.set(seq, (d.get(seq) ?? 0) + n);
        out.set(key, d);
      }
      return Promise.resolve(out);
    },
    close: () => Promise.resolve(),
  };
}

function bySeq(rows: { key: string; seq: number; n: number }[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const r of rows) {
    const m = out.get(r.key) ?? new Map<number, number>();
    m.set(r.seq, (m.get(r.seq) ?? 0) + r.n);
    out.set(r.key, m);
  }
  return out;
}

