// docs/monitoring/: the Grafana dashboard (valid JSON; every SQL query runs against a migrated database and
// returns the columns its panel format needs) and the Prometheus alert rules (promtool check rules, the rule unit
// tests, and every metric they name exists in the agent's /metrics).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMetrics } from '../../../agent/status/metrics.js';
import { PgSink } from '../../../center/pg/sink.js';
import type { DeviceSnapshot } from '../../../center/state.js';
import { makeEvent, type WireEvent } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { syntheticEvent, syntheticHealth } from '../../../testkit/fleet-sim.js';
import { Postgres } from '../../../testkit/postgres.js';

const execFileP = promisify(execFile);
const DIR = join(import.meta.dirname, '..', '..', '..', 'docs', 'monitoring');
const PROMTOOL = '/usr/bin/promtool';

interface Target {
  refId: string;
  format: 'table' | 'time_series';
  rawSql: string;
}
interface Panel {
  title: string;
  type: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string }[] };
};

/** Grafana's macros and variables as Grafana would expand them for a time range and site selection. */
function expand(sql: string, from: string, to: string, sites: string[]): string {
  const out = sql
    .replace(/\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)/g, (_m, col: string) => `${col} BETWEEN '${from}' AND '${to}'`)
    .replace(/\$__timeFrom\(\)/g, `'${from}'`)
    .replace(/\$__timeTo\(\)/g, `'${to}'`)
    .replace(/\$\{site\}|\$site\b/g, sites.map((s) => `'${s}'`).join(','));
  expect(out, `unexpanded macro or variable in: ${sql}`).not.toMatch(/\$\w|\$\{/);
  return out;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

let server: Postgres;
let url: string;

beforeAll(async () => {
  server = await Postgres.start();
  url = await server.createDatabase('mon');
  // A little of everything, so the queries return rows whose columns can be checked.
  const sink = new PgSink({ url }, silentLogger());
  await sink.start();
  const now = Date.now();
  let seq = 0;
  const wire = (draft: ReturnType<typeof makeEvent>): WireEvent => ({ ...draft, seq: ++seq, sent_at: draft.captured_at, replayed: false });
  for (let i = 0; i < 40; i++) {
    sink.write({ topic: 'roadside/mon/box1/events/cam1', site: 'mon', device: 'box1', received_at: now, event: wire(syntheticEvent('mon', 'box1', i, now - i * 60_000)) });
  }
  const health = { ...syntheticHealth(now, 12, 2), seq: ++seq, sent_at: new Date(now).toISOString(), replayed: false };
  sink.writeHealth({ topic: 'roadside/mon/box1/health', site: 'mon', device: 'box1', received_at: now, health });
  const states: DeviceSnapshot[] = [
    {
      site: 'mon',
      device: 'box1',
      state: 'offline',
      state_source: 'status',
      session: 2,
      state_since: now - 120_000,
      last_seen: now,
      birth: null,
      health: { ts: health.ts, seq: health.seq, status: 'ok', reasons: [], soc_temp_c: 60, process_fps: 10, backlog: 12, uplink_session: 2 },
      seqs: { first: 1, last: 50, received: 45, duplicates: 0, gaps: [{ lo: 10, hi: 14, opened_at: now, tries: 1, jump: false, lost: false, reason: null, req_from: 10, req_to: 14 }], filled_late: 0, repaired: 0, resend_requests: 1, contiguous: 9, missing: 5, lost: 0 },
    },
  ];
  sink.track(() => states.splice(0));
  await sink.close();
});
afterAll(async () => {
  await server?.stop();
});

describe('Grafana dashboard', () => {
  const panels = allPanels(dashboard.panels);

  it('is a dashboard of PostgreSQL panels using the datasource variable', () => {
    expect(panels.length).toBeGreaterThanOrEqual(8);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'site']);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'grafana-postgresql-datasource', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('every query runs against the migrated database and returns what its panel needs', async () => {
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const site = dashboard.templating.list.find((v) => v.name === 'site')!;
    expect(await server.query(site.query, [], url)).toEqual([{ site: 'mon' }]);
    let withRows = 0;
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const sql = expand(t.rawSql, from, to, ['mon']);
        const rows = await server.query(sql, [], url).catch((err: Error) => {
          throw new Error(`panel "${p.title}": ${err.message}\n${sql}`);
        });
        if (rows.length === 0) continue;
        withRows++;
        const columns = Object.keys(rows[0]!);
        if (t.format === 'time_series') expect(columns, p.title).toEqual(['time', 'metric', 'value']);
        if (p.type === 'stat') expect(columns, p.title).toContain('value');
      }
    }
    // Every panel has data from the rows written above.
    expect(withRows).toBe(panels.length);
  });
});

describe('Prometheus alert rules', () => {
  const rules = readFileSync(join(DIR, 'prometheus-alerts.yml'), 'utf8');

  it('pass promtool check rules and the rule unit tests', async () => {
    expect(existsSync(PROMTOOL), `${PROMTOOL} missing: install Debian's prometheus package (bash .ci/setup)`).toBe(true);
    const check = await execFileP(PROMTOOL, ['check', 'rules', join(DIR, 'prometheus-alerts.yml')]);
    expect(check.stdout).toMatch(/SUCCESS: 9 rules found/);
    const test = await execFileP(PROMTOOL, ['test', 'rules', 'prometheus-alerts.test.yml'], { cwd: DIR });
    expect(test.stdout).toMatch(/SUCCESS/);
  });

  it("name only metrics the agent's /metrics exports", async () => {
    const h = syntheticHealth(Date.now(), 5, 1);
    h.system.throttled = { throttled_now: false, under_voltage_now: true, freq_capped_now: false, soft_temp_limit_now: false, occurred_since_boot: true, raw: '0x50001' };
    const { text } = await renderMetrics(h);
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const used = [...new Set([...rules.matchAll(/\broadside_[a-z0-9_]+/g)].map((m) => m[0]))];
    expect(used.length).toBeGreaterThanOrEqual(7);
    for (const name of used) expect(exported, name).toContain(name);
  });
});
