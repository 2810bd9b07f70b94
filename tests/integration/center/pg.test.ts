// PostgreSQL sink of the center against a real PostgreSQL 15 and a real mosquitto, with real boxes (Outbox +
// Uplink): migrations, every seq stored once through duplicates, resends and replays, a receiver killed mid-gap
// and the next one resuming gap repair from the database, and the views operations use.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { centerCommand } from '../../../center/cli.js';
import { migrate } from '../../../center/pg/migrate.js';
import { MIGRATIONS } from '../../../center/pg/migrations/index.js';
import { PgSink, type PgSinkOptions } from '../../../center/pg/sink.js';
import { FleetReceiver, type FleetReceiverOptions, type GapReport } from '../../../center/receiver.js';
import type { ReceivedEvent } from '../../../center/sinks.js';
import type { DeviceSnapshot } from '../../../center/state.js';
import { makeEvent, PRIORITY, type WireEvent } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { syntheticEvent, syntheticHealth } from '../../../testkit/fleet-sim.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { Postgres } from '../../../testkit/postgres.js';
import { spawnGuarded, terminate, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const log = silentLogger();
let server: Postgres;
let broker: Mosquitto;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [server, broker] = await Promise.all([Postgres.start(), Mosquitto.start()]);
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await Promise.all([server?.stop(), broker?.stop()]);
});

const q = <R extends pg.QueryResultRow = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<R[]> => server.query<R>(sql, params, url);

async function startReceiver(url: string, opts: Partial<FleetReceiverOptions> = {}, sinkOpts: Partial<PgSinkOptions> = {}): Promise<{ r: FleetReceiver; sink: PgSink }> {
  const sink = new PgSink({ url, state_ms: 200, ...sinkOpts }, log);
  const r = new FleetReceiver({ url: broker.url, tick_ms: 50, sinks: [sink], state: sink, ...opts }, log);
  cleanup.push(() => r.stop());
  await r.start();
  return { r, sink };
}

/** A real box: its own outbox file and uplink. */
async function startBox(site: string, id: string) {
  const dir = makeTempDir('pgbox');
  const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db') }), log);
  await outbox.start(new AbortController().signal);
  const uplink = new Uplink({
    config: MqttSchema.parse({ url: broker.url }),
    device: { site, id },
    outbox,
    log,
    birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [{ id: 'cam1' }], capabilities: [], last_reboot_reason: 'test' }),
  });
  cleanup.push(async () => {
    await uplink.stop();
    await outbox.stop();
  });
  let n = 0;
  const t0 = Date.now() - 3_600_000;
  return {
    outbox,
    uplink,
    appendEvents(count: number): void {
      for (let i = 0; i < count; i++) {
        // One second apart: each flow event has its own bin.
        const ev = syntheticEvent(site, id, n, t0 + n++ * 1000);
        outbox.append({ id: ev.id, topic: `events/${ev.camera}`, priority: PRIORITY[ev.type], payload: ev });
      }
    },
    appendHealth(): void {
      const h = syntheticHealth(Date.now(), 3, 1);
      outbox.append({ id: h.id, topic: 'health', priority: 'health', payload: h });
    },
  };
}

async function sniff(filter: string): Promise<{ client: MqttClient; messages: { topic: string; payload: Buffer }[] }> {
  const client = await connectMqtt(broker.url, { clientId: `sniff-${Math.random().toString(16).slice(2)}` });
  cleanup.push(() => endMqtt(client));
  const messages: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, messages };
}

describe('migrations', () => {
  it('apply in order in one transaction; a rerun is a no-op; an edited, unknown or failing migration is refused', async () => {
    const url = await server.createDatabase('mig');
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      expect(await migrate(pool, log)).toEqual({ applied: [1, 2], version: 2 });
      const recorded = async () => (await pool.query<{ version: number; name: string }>('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version')).rows;
      const relations = async () => (await pool.query<{ relname: string }>("SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname")).rows;
      const before = { recorded: await recorded(), relations: await relations() };
      expect(before.recorded.map((r) => [r.version, r.name])).toEqual([
        [1, 'schema'],
        [2, 'views'],
      ]);
      // Both receivers of a pair starting together: one applies, the other finds nothing to do.
      expect(await Promise.all([migrate(pool, log), migrate(pool, log)])).toEqual([
        { applied: [], version: 2 },
        { applied: [], version: 2 },
      ]);
      expect({ recorded: await recorded(), relations: await relations() }).toEqual(before);

      const edited = [{ ...MIGRATIONS[0]!, sql: `${MIGRATIONS[0]!.sql}\n-- edited` }, MIGRATIONS[1]!];
      await expect(migrate(pool, log, edited)).rejects.toMatchObject({ code: 'PG_MIGRATION_CHANGED' });
      await expect(migrate(pool, log, [MIGRATIONS[0]!])).rejects.toMatchObject({ code: 'PG_SCHEMA_NEWER' });
      const failing = [...MIGRATIONS, { version: 3, name: 'broken', sql: 'CREATE TABLE half_done (x int); SELECT 1 / 0;' }];
      await expect(migrate(pool, log, failing)).rejects.toMatchObject({ code: 'PG_MIGRATION_FAILED', message: expect.stringMatching(/division by zero/) as unknown });
      expect({ recorded: await recorded(), relations: await relations() }).toEqual(before); // rolled back: no half_done
    } finally {
      await pool.end();
    }
  });
});

describe('PostgreSQL sink with real boxes', () => {
  it('stores every seq exactly once through duplicate copies, a resend of everything and replays', { timeout: 40_000 }, async () => {
    const url = await server.createDatabase('once');
    const { r, sink } = await startReceiver(url, { grace_ms: 300 });
    const sniffer = await sniff('roadside/once/box1/+/#');
    const box = await startBox('once', 'box1');
    box.appendEvents(40); // line crossings, 2 wrong-way violations, 2 flow statistics
    box.appendHealth();
    box.appendEvents(20);
    box.appendHealth();
    await box.uplink.start(new AbortController().signal);
    await waitFor(() => r.device('once/box1')?.seq.last === 62, { timeout_ms: 10_000, message: 'all 62 seqs at the receiver' });
    await waitFor(() => sniffer.messages.length >= 62, { message: 'sniffer copies' });
    const wire = sniffer.messages.filter((m) => /\/(events\/cam1|health)$/.test(m.topic));
    expect(wire).toHaveLength(62);

    // At-least-once copies of every message, and the box resending its whole range.
    for (const m of wire) await sniffer.client.publishAsync(m.topic, m.payload, { qos: 1 });
    await sniffer.client.publishAsync('roadside/once/box1/cmd/resend', JSON.stringify({ id: 'all-again', from: 1, to: 62 }), { qos: 1 });
    await waitFor(() => (r.device('once/box1')?.seq.duplicates ?? 0) >= 124, { timeout_ms: 10_000, message: `124 duplicates, device ${JSON.stringify(r.device('once/box1')?.seq)}` });
    await sink.flushAll();

    const counts = async () =>
      (
        await q<{ events: number; distinct_seqs: number; violations: number; flows: number; health: number; first: number; last: number }>(
          url,
          `SELECT (SELECT count(*)::int FROM events) AS events,
                  (SELECT count(DISTINCT (device, seq))::int FROM events) AS distinct_seqs,
                  (SELECT count(*)::int FROM violations) AS violations,
                  (SELECT count(*)::int FROM flow_bins) AS flows,
                  (SELECT count(*)::int FROM health_samples) AS health,
                  (SELECT min(seq)::int FROM events) AS first,
                  (SELECT max(seq)::int FROM events) AS last`,
        )
      )[0];
    // Seqs 1-40 events, 41 health, 42-61 events, 62 health.
    const expected = { events: 60, distinct_seqs: 60, violations: 3, flows: 3, health: 2, first: 1, last: 61 };
    expect(await counts()).toEqual(expected);
    expect(sink.written).toBe(62);
    const seqs = await q<{ seq: number }>(url, "SELECT seq::int FROM events WHERE device = 'box1' ORDER BY seq");
    const healthSeqs = await q<{ seq: number }>(url, 'SELECT seq::int FROM health_samples ORDER BY seq');
    expect([...seqs, ...healthSeqs].map((x) => x.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 62 }, (_, i) => i + 1));
    expect((await q(url, "SELECT site, device, state, session, backlog, agent_version FROM devices WHERE device = 'box1'"))[0]).toEqual({
      site: 'once',
      device: 'box1',
      state: 'online',
      session: r.device('once/box1')?.session,
      backlog: 3,
      agent_version: 't',
    });
    expect((await q(url, "SELECT first_seq::int, last_seq::int, contiguous_seq::int, received::int, missing::int, gaps FROM device_seqs WHERE device = 'box1'"))[0]).toEqual({
      first_seq: 1,
      last_seq: 62,
      contiguous_seq: 62,
      received: 62,
      missing: 0,
      gaps: [],
    });
    const duplicatesSeen = r.device('once/box1')!.seq.duplicates;
    await r.stop();

    // A replay of the recorded traffic into a receiver without seq tracking (as in a $share group): every row
    // reaches the database again, which keeps the first copy and counts the rest as duplicates.
    const replay = await startReceiver(url, { gaps: 'off' });
    for (const m of wire) replay.r.ingest(m.topic, m.payload);
    await replay.sink.flushAll();
    expect({ written: replay.sink.written, duplicates: replay.sink.duplicates }).toEqual({ written: 0, duplicates: 62 });
    expect(await counts()).toEqual(expected);
    await replay.r.stop();

    // A receiver tracking seqs resumes from the saved seq state: the same replay is recognised as duplicates.
    const resumed = await startReceiver(url);
    expect(resumed.r.device('once/box1')?.seq).toMatchObject({ first: 1, last: 62, received: 62, missing: 0 });
    for (const m of wire) resumed.r.ingest(m.topic, m.payload);
    await resumed.sink.flushAll();
    expect(resumed.r.device('once/box1')?.seq.duplicates).toBe(duplicatesSeen + 62);
    expect(resumed.sink.written).toBe(0);
    expect(await counts()).toEqual(expected);
  });

  it('a receiver killed mid-gap: the next one resumes gap repair from the database', { timeout: 40_000 }, async () => {
    const url = await server.createDatabase('resume');
    const box = await startBox('resume', 'box1');
    box.appendEvents(10);
    box.appendHealth();
    box.outbox.flush();
    // The broker acknowledged seqs 4-6 and lost them before delivery.
    const leased = box.outbox.lease(11, { liveFrom: 0 });
    for (const row of leased) if (row.seq >= 4 && row.seq <= 6) box.outbox.ack(row.seq);
    box.outbox.release(leased.filter((row) => row.seq < 4 || row.seq > 6).map((row) => row.seq));
    box.outbox.flush();

    // Receiver A: the CLI with --pg, so slow to call a hole a gap that it never asks for it; killed with SIGKILL.
    const a: ChildProcess = spawnGuarded(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'center', '--url', broker.url, '--pg', url, '--grace-ms', '60000', '--json', '--interval-s', '0.5'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let aOut = '';
    a.stdout?.on('data', (b: Buffer) => (aOut += b.toString()));
    a.stderr?.on('data', (b: Buffer) => (aOut += b.toString()));
    cleanup.push(() => terminate(a, 'SIGKILL'));
    await waitFor(() => aOut.includes('fleet_summary'), { timeout_ms: 20_000, message: `receiver A running: ${aOut}` });
    await box.uplink.start(new AbortController().signal);
    type SeqRow = { last_seq: number; contiguous_seq: number; missing: number; gaps: { lo: number; hi: number; tries: number }[] };
    const saved = async () => (await q<SeqRow>(url, "SELECT last_seq::int, contiguous_seq::int, missing::int, gaps FROM device_seqs WHERE device = 'box1'"))[0];
    await waitFor(async () => (await saved())?.last_seq === 11, { timeout_ms: 10_000, message: `A saved the seq state: ${aOut}` });
    expect(await saved()).toMatchObject({ contiguous_seq: 3, missing: 3, gaps: [{ lo: 4, hi: 6, tries: 0 }] });
    await terminate(a, 'SIGKILL');
    expect((await q<{ n: number }>(url, 'SELECT count(*)::int AS n FROM events'))[0]?.n).toBe(7);

    // Receiver B knows nothing of the box but what the database says; the box sends nothing new.
    const gaps: GapReport[] = [];
    const b = await startReceiver(url, { grace_ms: 300, confirm_ms: 2000 });
    b.r.on('gap', (g) => gaps.push(g));
    expect(b.r.device('resume/box1')?.seq).toMatchObject({ first: 1, last: 11, missing: 3, gaps_open: 1 });
    await waitFor(() => gaps.some((g) => g.state === 'repaired'), { timeout_ms: 15_000, message: `repaired: ${JSON.stringify(gaps)}` });
    expect(gaps.map((g) => [g.state, g.from, g.to])).toEqual([
      ['requested', 4, 6],
      ['repaired', 4, 6],
    ]);
    await b.sink.flushAll();
    const seqs = await q<{ seq: number }>(url, 'SELECT seq::int FROM events ORDER BY seq');
    expect(seqs.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await saved()).toMatchObject({ last_seq: 11, contiguous_seq: 11, missing: 0, gaps: [] });
    expect((await q(url, "SELECT repaired::int, resend_requests::int FROM device_seqs WHERE device = 'box1'"))[0]).toEqual({ repaired: 3, resend_requests: 1 });
  });
});

describe('views', () => {
  it('count known events per 15 min and hour, violations per day and type, offline devices and backlog', async () => {
    const url = await server.createDatabase('views');
    const sink = new PgSink({ url }, log);
    await sink.start();
    cleanup.push(() => sink.close());
    let seq = 0;
    const env = (capturedIso: string) => ({ site: 'v', device: 'box1', camera: 'cam1', mono_ms: 1, clock_synced: true, captured_at_ms: Date.parse(capturedIso) });
    const object = { track_id: 1, class: 'car', score: 0.9, box: [1, 2, 3, 4] as [number, number, number, number] };
    const put = (draft: ReturnType<typeof makeEvent>): void => {
      const ev = { ...draft, seq: ++seq, sent_at: draft.captured_at, replayed: false } as WireEvent;
      const e: ReceivedEvent = { topic: 'roadside/v/box1/events/cam1', site: 'v', device: 'box1', received_at: Date.now(), event: ev };
      sink.write(e);
    };
    const crossing = (at: string, line: string, direction: 'in' | 'out') =>
      put(makeEvent({ type: 'line_crossing', ...env(at), object, rule: { kind: 'line', id: line }, attributes: { direction, point_px: [1, 1], crossed_at: at } }));
    // 10:00-10:15: a/in ×3, a/out ×1; 10:15-10:30: a/in ×2, b/out ×1; 11:00-11:15: a/in ×4
    for (const t of ['10:01', '10:07', '10:14:59']) crossing(`2026-03-02T${t.padEnd(8, ':00')}Z`, 'a', 'in');
    crossing('2026-03-02T10:03:00Z', 'a', 'out');
    for (const t of ['10:15:00', '10:29:00']) crossing(`2026-03-02T${t}Z`, 'a', 'in');
    crossing('2026-03-02T10:20:00+02:00', 'b', 'out'); // 08:20 UTC
    for (const m of [0, 1, 2, 3]) crossing(`2026-03-02T11:0${m}:00Z`, 'a', 'in');
    const wrongWay = (at: string) =>
      put(makeEvent({ type: 'wrong_way', ...env(at), object, rule: { kind: 'zone', id: 'ramp' }, attributes: { distance_px: 100, allowed_direction: [0, 1], heading: [0, -1] } }));
    const evidence = { frame_sha256: 'a'.repeat(64), crop_sha256: 'b'.repeat(64), frame_file: 'f.jpg', crop_file: 'c.jpg' };
    wrongWay('2026-03-02T09:00:00Z');
    wrongWay('2026-03-02T23:59:59Z');
    wrongWay('2026-03-03T00:00:00Z');
    put(
      makeEvent({
        type: 'stopped_vehicle',
        ...env('2026-03-02T12:00:00Z'),
        object,
        rule: { kind: 'zone', id: 'shoulder' },
        attributes: { dwell_s: 70, dwell_threshold_s: 60, entered_at: '2026-03-02T11:58:50Z' },
        evidence,
      }),
    );
    const now = Date.now();
    const snapshot = (device: string, state: DeviceSnapshot['state'], since: number, backlog: number | null): DeviceSnapshot => ({
      site: 'v',
      device,
      state,
      state_source: 'status',
      session: 3,
      state_since: since,
      last_seen: since,
      birth: null,
      health: backlog === null ? null : { ts: new Date(now - 5000).toISOString(), seq: 9, status: 'ok', reasons: [], soc_temp_c: 50, process_fps: 10, backlog, uplink_session: 3 },
      seqs: null,
    });
    let states = [snapshot('box1', 'online', now - 60_000, 42), snapshot('box2', 'offline', now - 600_000, 7), snapshot('box3', 'stopped', now - 30_000, null)];
    sink.track(() => states.splice(0));
    await sink.flushAll();
    // A receiver restarting sees the same offline state again, later: the box has still been offline since before.
    states = [snapshot('box2', 'offline', now, 7)];
    await sink.flushAll();

    const rows = (sql: string) => q(url, sql);
    expect(await rows("SELECT line_id, direction, to_char(bin_start AT TIME ZONE 'UTC', 'HH24:MI') AS bin, vehicles::int FROM traffic_counts_15min ORDER BY bin, line_id, direction")).toEqual([
      { line_id: 'b', direction: 'out', bin: '08:15', vehicles: 1 },
      { line_id: 'a', direction: 'in', bin: '10:00', vehicles: 3 },
      { line_id: 'a', direction: 'out', bin: '10:00', vehicles: 1 },
      { line_id: 'a', direction: 'in', bin: '10:15', vehicles: 2 },
      { line_id: 'a', direction: 'in', bin: '11:00', vehicles: 4 },
    ]);
    expect(await rows("SELECT line_id, direction, to_char(bin_start AT TIME ZONE 'UTC', 'HH24:MI') AS bin, vehicles::int FROM traffic_counts_hourly ORDER BY bin, line_id, direction")).toEqual([
      { line_id: 'b', direction: 'out', bin: '08:00', vehicles: 1 },
      { line_id: 'a', direction: 'in', bin: '10:00', vehicles: 5 },
      { line_id: 'a', direction: 'out', bin: '10:00', vehicles: 1 },
      { line_id: 'a', direction: 'in', bin: '11:00', vehicles: 4 },
    ]);
    expect(await rows("SELECT to_char(day, 'YYYY-MM-DD') AS day, type, violations::int, with_evidence::int, with_plate::int FROM violations_daily ORDER BY day, type")).toEqual([
      { day: '2026-03-02', type: 'stopped_vehicle', violations: 1, with_evidence: 1, with_plate: 0 },
      { day: '2026-03-02', type: 'wrong_way', violations: 2, with_evidence: 0, with_plate: 0 },
      { day: '2026-03-03', type: 'wrong_way', violations: 1, with_evidence: 0, with_plate: 0 },
    ]);
    expect((await rows("SELECT evidence, plate_text FROM violations WHERE type = 'stopped_vehicle'"))[0]).toEqual({ evidence, plate_text: null });
    const offline = await q<{ device: string; state: string; offline_s: string }>(url, 'SELECT device, state, offline_s FROM devices_offline ORDER BY device');
    expect(offline.map((o) => [o.device, o.state])).toEqual([
      ['box2', 'offline'],
      ['box3', 'stopped'],
    ]);
    expect(Number(offline[0]!.offline_s)).toBeGreaterThanOrEqual(600);
    expect(Number(offline[0]!.offline_s)).toBeLessThan(700);
    expect(Number(offline[1]!.offline_s)).toBeGreaterThanOrEqual(30);
    expect(await rows('SELECT device, backlog, health_status FROM device_backlog ORDER BY device')).toEqual([
      { device: 'box1', backlog: 42, health_status: 'ok' },
      { device: 'box2', backlog: 7, health_status: 'ok' },
    ]);
    // The day partitions were made on demand, by UTC day.
    expect((await rows("SELECT relname FROM pg_class WHERE relname LIKE 'events_p%' AND relkind = 'r' ORDER BY relname")).map((x) => x.relname)).toEqual([
      'events_p20260302',
      'events_p20260303',
    ]);
  });
});

describe('database trouble', () => {
  it('refuses an unreachable database at start with a clear error and no password', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: {}, interactive: false };
    expect(await centerCommand(['--help'], io)).toBe(0);
    expect(out.join('')).toContain('--pg URL');
    out.length = 0;
    expect(await centerCommand(['--url', 'mqtt://127.0.0.1:1', '--pg', 'postgres://center:s3cret@127.0.0.1:1/fleet'], io)).toBe(1);
    expect(out.join('')).toMatch(/PostgreSQL at postgres:\/\/\[redacted\]@127\.0\.0\.1:1\/fleet: .*ECONNREFUSED/);
    expect(out.join('')).not.toContain('s3cret');
  });

  it('keeps a row PostgreSQL cannot store in rejected_rows and stores the rest of its batch', async () => {
    const url = await server.createDatabase('reject');
    const sink = new PgSink({ url }, log);
    await sink.start();
    cleanup.push(() => sink.close());
    for (let seq = 1; seq <= 5; seq++) {
      const ev = { ...syntheticEvent('rej', 'box1', seq * 20), seq, sent_at: new Date().toISOString(), replayed: false } as WireEvent;
      if (seq === 3 && 'object' in ev) ev.object.class = 'car\u0000'; // valid JSON and contract, not a PostgreSQL text
      sink.write({ topic: 'roadside/rej/box1/events/cam1', site: 'rej', device: 'box1', received_at: Date.now(), event: ev });
    }
    await sink.flushAll();
    expect(sink.stats()).toMatchObject({ written: 4, rejected: 1, pending: 0, error: null });
    expect((await q<{ seq: number }>(url, 'SELECT seq::int FROM events ORDER BY seq')).map((r) => r.seq)).toEqual([1, 2, 4, 5]);
    const [rejected] = await q<{ target: string; seq: number; error: string; row_json: string }>(url, 'SELECT target, seq::int, error, row_json FROM rejected_rows');
    expect(rejected).toMatchObject({ target: 'events', seq: 3, error: expect.stringMatching(/Unicode|0x00/) as unknown });
    expect((JSON.parse(rejected!.row_json) as { payload: { object: { class: string } } }).payload.object.class).toBe('car\u0000');
  });

  // Last in this file: it stops the shared server.
  it('keeps rows while the database is down, pauses reading from the broker, writes them when it is back; past the cap drops the oldest and stops saving seq state', { timeout: 30_000 }, async () => {
    const url = await server.createDatabase('outage');
    const kept = new PgSink({ url, flush_ms: 50 }, log);
    const capped = new PgSink({ url, flush_ms: 50, max_pending_rows: 50 }, log);
    await kept.start();
    await capped.start();
    cleanup.push(() => kept.close(), () => capped.close());
    const snapshot = (device: string, last: number): DeviceSnapshot => ({
      site: 'out',
      device,
      state: 'online',
      state_source: 'status',
      session: 1,
      state_since: Date.now(),
      last_seen: Date.now(),
      birth: null,
      health: null,
      seqs: { first: 1, last, received: last, duplicates: 0, gaps: [], filled_late: 0, repaired: 0, resend_requests: 0, contiguous: last, missing: 0, lost: 0 },
    });
    const write = (sink: PgSink, device: string, n: number): void => {
      for (let seq = 1; seq <= n; seq++) {
        const ev = { ...syntheticEvent('out', device, seq), seq, sent_at: new Date().toISOString(), replayed: false } as WireEvent;
        sink.write({ topic: `roadside/out/${device}/events/cam1`, site: 'out', device, received_at: Date.now(), event: ev });
      }
    };
    // A receiver whose sink pauses it at 20 waiting rows, fed through the broker.
    const paced = await startReceiver(url, { prefix: 'paced', gaps: 'off' }, { pause_rows: 20, flush_ms: 50 });
    const publisher = await connectMqtt(broker.url, { clientId: `pub-${process.pid}` });
    cleanup.push(() => endMqtt(publisher));

    await server.stop();
    kept.track(() => [snapshot('kept', 80)]);
    capped.track(() => [snapshot('capped', 80)]);
    write(kept, 'kept', 80);
    write(capped, 'capped', 80);
    for (let seq = 1; seq <= 100; seq++) {
      const ev = { ...syntheticEvent('out', 'paced', seq), seq, sent_at: new Date().toISOString(), replayed: false };
      await publisher.publishAsync('paced/out/paced/events/cam1', JSON.stringify(ev), { qos: 1 });
    }
    await waitFor(() => kept.stats().error !== null && paced.sink.stats().error !== null, { message: 'a failed write' });
    expect(kept.stats()).toMatchObject({ pending: 80, dropped: 0, written: 0 });
    expect(capped.stats()).toMatchObject({ pending: 50, dropped: 30 });
    await new Promise((res) => setTimeout(res, 500));
    expect(paced.sink.stats()).toMatchObject({ pending: 20, dropped: 0 }); // the other 80 wait at the broker
    expect(paced.r.totals().events).toBe(20);

    await server.start();
    await waitFor(() => kept.stats().pending === 0 && capped.stats().pending === 0, { timeout_ms: 15_000, message: 'written after the outage' });
    await waitFor(() => paced.sink.written === 100, { timeout_ms: 15_000, message: `the paced receiver got everything: ${JSON.stringify(paced.sink.stats())}` });
    await kept.flushAll();
    await capped.flushAll();
    expect(kept.stats()).toMatchObject({ written: 80, error: null });
    const rows = await q<{ device: string; n: number; lo: number; hi: number }>(url, 'SELECT device, count(*)::int AS n, min(seq)::int AS lo, max(seq)::int AS hi FROM events GROUP BY device ORDER BY device');
    expect(rows).toEqual([
      { device: 'capped', n: 50, lo: 31, hi: 80 },
      { device: 'kept', n: 80, lo: 1, hi: 80 },
      { device: 'paced', n: 100, lo: 1, hi: 100 },
    ]);
    // The capped sink saved no seq state: a restarted receiver finds 1-30 missing and asks for them again.
    expect(await q(url, 'SELECT device, last_seq::int FROM device_seqs ORDER BY device')).toEqual([{ device: 'kept', last_seq: 80 }]);
  });
});
