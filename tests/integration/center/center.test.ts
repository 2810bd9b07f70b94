// Fleet receiver: seq bookkeeping, availability with sessions, validation, duplicates, gap repair through the
// resend command (a scripted box and a real Outbox + Uplink), shared subscriptions, sinks and the CLI.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetReceiver, type GapReport, type InvalidReport, type FleetReceiverOptions } from '../../../center/receiver.js';
import { MAX_REPAIRABLE_SEQS, SeqTracker } from '../../../center/seq-tracker.js';
import { JsonlSink, SqliteSink } from '../../../center/sinks.js';
import { renderTable, summaryLine } from '../../../center/view.js';
import { cli } from '../../../cli/main.js';
import { makeEvent, uuidv7 } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { syntheticEvent, syntheticHealth } from '../../../testkit/fleet-sim.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

describe('SeqTracker', () => {
  it('counts new seqs, duplicates and holes, splitting and closing them', () => {
    const t = new SeqTracker();
    for (const s of [1, 2, 3]) expect(t.observe(s, 0).kind).toBe('new');
    expect(t.observe(2, 0).kind).toBe('duplicate');
    t.observe(10, 5); // hole 4..9
    expect(t.gaps.map((g) => [g.lo, g.hi, g.opened_at])).toEqual([[4, 9, 5]]);
    expect(t.missing).toBe(6);
    const mid = t.observe(6, 7);
    expect(mid).toMatchObject({ kind: 'new', closed: false });
    expect(t.gaps.map((g) => [g.lo, g.hi, g.opened_at])).toEqual([
      [4, 5, 5],
      [7, 9, 5],
    ]);
    for (const s of [4, 5, 7, 8]) t.observe(s, 8);
    expect(t.observe(9, 9)).toMatchObject({ kind: 'new', closed: true });
    expect(t.gaps).toEqual([]);
    expect(t.observe(9, 9).kind).toBe('duplicate');
    expect({ first: t.first, last: t.last, received: t.received, duplicates: t.duplicates }).toEqual({ first: 1, last: 10, received: 10, duplicates: 2 });
  });

  it('extends below the first seq (backlog arriving after live messages)', () => {
    const t = new SeqTracker();
    t.observe(100, 0);
    t.observe(1, 0);
    expect(t.gaps.map((g) => [g.lo, g.hi])).toEqual([[2, 99]]);
    expect(t.first).toBe(1);
    expect(t.has(50)).toBe(false);
    expect(t.has(100)).toBe(true);
  });

  it('splits long holes into resend-sized pieces and flags counter jumps', () => {
    const t = new SeqTracker();
    t.observe(1, 0);
    t.observe(25_002, 0);
    expect(t.gaps.map((g) => g.hi - g.lo + 1)).toEqual([10_000, 10_000, 5_000]);
    t.observe(25_003 + MAX_REPAIRABLE_SEQS + 1, 0);
    const last = t.gaps[t.gaps.length - 1]!;
    expect(last.jump).toBe(true);
  });
});

describe('fleet views', () => {
  it('render a table (trouble first) and JSON summary lines', () => {
    const now = Date.parse('2026-11-26T12:00:10Z');
    const base = {
      site: 's',
      state_source: 'status' as const,
      session: 3,
      state_since: null,
      last_seen: '2026-11-26T12:00:05Z',
      agent_version: '1',
      contract_version: 1,
      commands: [],
      cameras: {},
      health: null,
      events: 1,
      health_messages: 0,
      seq: { first: 1, last: 9, received: 9, duplicates: 0, duplicate_ids: 0, seq_conflicts: 0, missing: 0, gaps_open: 0, filled_late: 0, repaired: 0, lost: 0, resend_requests: 0 },
      invalid: { count: 0, last_error: null, last_topic: null, at: null },
      stale_status: 0,
    };
    const devices = [
      { ...base, key: 's/a', device: 'a', state: 'online' as const },
      { ...base, key: 's/b', device: 'b', state: 'offline' as const },
    ];
    const totals = new FleetReceiver({ url: 'mqtt://127.0.0.1:1' }, silentLogger()).totals();
    const text = renderTable(devices, totals, { now });
    const lines = text.split('\n');
    expect(lines[3]).toMatch(/^DEVICE\s+STATE/);
    expect(lines[4]).toMatch(/^s\/b\s+offline/);
    expect(lines[5]).toMatch(/^s\/a\s+online\s+3\s+5s/);
    const json = JSON.parse(summaryLine(devices, totals, now)) as { type: string; attention: { device: string }[] };
    expect(json.type).toBe('fleet_summary');
    expect(json.attention.map((a) => a.device)).toEqual(['s/b']);
  });
});

describe('FleetReceiver.ingest (replay without a broker)', () => {
  it('validates and books recorded messages like live ones', () => {
    const r = new FleetReceiver({ url: 'mqtt://127.0.0.1:1' }, silentLogger());
    const events: number[] = [];
    r.on('event', (e) => events.push(e.seq));
    const wire = (seq: number) => Buffer.from(JSON.stringify({ ...syntheticEvent('s', 'b', seq * 20), seq, sent_at: new Date().toISOString(), replayed: true }));
    for (const seq of [1, 2, 2, 4]) r.ingest('roadside/s/b/events/cam1', wire(seq));
    r.ingest('roadside/s/b/status', Buffer.from(JSON.stringify({ state: 'online', session: 2, ts: new Date().toISOString() })), { retain: true });
    r.ingest('roadside/s/b/status', Buffer.alloc(0), { retain: true }); // a cleared retained status is not an error
    expect(events).toEqual([1, 2, 4]);
    expect(r.device('s/b')).toMatchObject({ state: 'online', session: 2, events: 3, seq: { received: 3, duplicates: 1, missing: 1, gaps_open: 1 }, invalid: { count: 0 } });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Against mosquitto

let broker: Mosquitto;
const clients: MqttClient[] = [];
const receivers: FleetReceiver[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
});
// Each test's receivers stop with it: a receiver left running would repair other tests' gaps (it watches the
// whole fleet and sends resend commands), so a test would see holes filled that it never asked for.
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.stop();
});
afterAll(async () => {
  for (const c of clients) await endMqtt(c);
  await broker?.stop();
});

async function startReceiver(opts: Partial<FleetReceiverOptions> = {}): Promise<FleetReceiver> {
  const r = new FleetReceiver({ url: broker.url, tick_ms: 50, ...opts }, silentLogger());
  receivers.push(r);
  await r.start();
  return r;
}

/** A scripted box: publishes whatever the test says on its topics. */
async function fakeBox(site: string, device: string) {
  const client = await connectMqtt(broker.url, { clientId: `fake-${site}-${device}-${Math.random().toString(16).slice(2)}` });
  clients.push(client);
  const base = `roadside/${site}/${device}`;
  const pub = (topic: string, payload: string | object, retain = false): Promise<unknown> =>
    client.publishAsync(`${base}/${topic}`, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1, retain });
  let n = 0;
  return {
    client,
    base,
    pub,
    status: (state: 'online' | 'offline' | 'stopped', session: number) => pub('status', { state, session, ts: new Date().toISOString() }, true),
    birth: (session: number) =>
      pub(
        'birth',
        {
          agent_version: '0.1.0',
          model: { name: 'm' },
          config_hash: 'h',
          cameras: [{ id: 'cam1', lines: [], zones: [] }],
          capabilities: [],
          last_reboot_reason: 'power_on',
          contract_version: 1,
          session,
          ts: new Date().toISOString(),
          commands: ['resend'],
        },
        true,
      ),
    event: (seq: number, o: { replayed?: boolean; id?: string } = {}) => {
      const ev = { ...syntheticEvent(site, device, n++ * 20), seq, sent_at: new Date().toISOString(), replayed: o.replayed ?? false };
      if (o.id) ev.id = o.id;
      return pub('events/cam1', ev).then(() => ev);
    },
    health: (seq: number) => pub('health', { ...syntheticHealth(Date.now(), 2, 1), seq, sent_at: new Date().toISOString(), replayed: false }),
  };
}

describe('availability', () => {
  it('tracks online/offline/stopped by session and ignores a late Will', async () => {
    const r = await startReceiver();
    const box = await fakeBox('av', 'box1');
    await box.birth(5);
    await box.status('online', 5);
    await waitFor(() => r.device('av/box1')?.state === 'online', { message: 'online' });
    expect(r.device('av/box1')).toMatchObject({ session: 5, state_source: 'status', agent_version: '0.1.0', commands: ['resend'] });

    await box.status('offline', 4); // the Will of an older connection, arriving late
    await waitFor(() => r.device('av/box1')?.stale_status === 1, { message: 'late will counted' });
    expect(r.device('av/box1')?.state).toBe('online');

    await box.status('offline', 5);
    await waitFor(() => r.device('av/box1')?.state === 'offline', { message: 'offline' });
    await box.birth(6);
    await waitFor(() => r.device('av/box1')?.session === 6, { message: 'birth 6' });
    expect(r.device('av/box1')).toMatchObject({ state: 'online', state_source: 'birth' });
    await box.status('online', 6);
    await waitFor(() => r.device('av/box1')?.state_source === 'status', { message: 'online 6' });
    await box.status('stopped', 6);
    await waitFor(() => r.device('av/box1')?.state === 'stopped', { message: 'stopped' });

    // A late Will overwrote the retained status of a newer session: a receiver starting now sees the retained
    // offline(6) and birth(7), and knows the box is online.
    await box.birth(7);
    await box.status('offline', 6);
    const late = await startReceiver();
    await waitFor(() => late.device('av/box1')?.session === 7, { message: 'retained birth' });
    expect(late.device('av/box1')).toMatchObject({ state: 'online', state_source: 'birth' });
    await box.pub('status', '', true);
    await box.pub('birth', '', true);
  });
});

describe('validation and duplicates', () => {
  it('reports invalid payloads per device with the last error', async () => {
    const r = await startReceiver({ gaps: 'track' });
    const invalid: InvalidReport[] = [];
    r.on('invalid', (i) => invalid.push(i));
    const box = await fakeBox('val', 'box1');
    await box.pub('events/cam1', 'not json {');
    await box.pub('events/cam1', { id: 'x', sent_at: new Date().toISOString(), replayed: false });
    const ev = { ...syntheticEvent('val', 'box1', 0), seq: 1, sent_at: new Date().toISOString(), replayed: false };
    await box.pub('events/cam1', { ...ev, object: { ...(ev as { object: object }).object, colour: 'red' } });
    await box.pub('events/cam1', { ...ev, id: uuidv7(), seq: 2, device: 'someone-else' });
    await box.pub('status', { state: 'sleeping', session: 1, ts: new Date().toISOString() });
    await waitFor(() => invalid.length === 5, { message: `5 invalid, got ${JSON.stringify(invalid)}` });
    const d = r.device('val/box1')!;
    expect(d.invalid.count).toBe(5);
    expect(d.invalid.last_topic).toBe('roadside/val/box1/status');
    expect(d.invalid.last_error).toMatch(/^state: /);
    expect(invalid[0]!.error).toMatch(/^not JSON/);
    expect(invalid[1]!.error).toMatch(/seq/);
    expect(invalid[2]!.error).toMatch(/unrecognized key|colour/i);
    expect(invalid[3]!.error).toMatch(/someone-else/);
    // A well-formed delivery with a bad body still counts as transported: no gap, no resend for it.
    expect(d.seq).toMatchObject({ first: 1, last: 2, received: 2, missing: 0 });
    expect(d.events).toBe(0);
  });

  it('drops duplicates by seq and by id, and spots two ids on one seq', async () => {
    const r = await startReceiver({ gaps: 'track' });
    const events: number[] = [];
    r.on('event', (e) => events.push(e.seq));
    const box = await fakeBox('dup', 'box1');
    const e1 = await box.event(1);
    await box.event(2);
    await box.pub('events/cam1', { ...e1, replayed: true }); // same seq, same id: at-least-once copy
    await box.event(3, { id: e1.id }); // new seq, known id
    await box.event(2, { id: uuidv7() }); // known seq, another id
    await box.health(4);
    await waitFor(() => r.device('dup/box1')?.health !== null, { message: 'health' });
    const d = r.device('dup/box1')!;
    expect(events).toEqual([1, 2]);
    expect(d.seq).toMatchObject({ received: 4, duplicates: 2, duplicate_ids: 1, seq_conflicts: 1, missing: 0 });
    expect(d.health).toMatchObject({ seq: 4, backlog: 2, process_fps: 10 });
    expect(d.health_messages).toBe(1);
  });
});

describe('gap repair', () => {
  it('asks a scripted box to resend (Response Topic + Correlation Data), confirms repairs, reports losses', async () => {
    const r = await startReceiver({ grace_ms: 300, confirm_ms: 800, request_timeout_ms: 800, max_tries: 2, coalesce: 0 });
    const gaps: GapReport[] = [];
    r.on('gap', (g) => gaps.push(g));
    const box = await fakeBox('gap', 'box1');
    await box.status('online', 1);
    const requests: { from: number; to: number; id: string; responseTopic?: string; correlation?: string }[] = [];
    await box.client.subscribeAsync(`${box.base}/cmd/resend`, { qos: 1 });
    box.client.on('message', (topic, payload, packet: IPublishPacket) => {
      if (topic !== `${box.base}/cmd/resend`) return;
      const req = JSON.parse(payload.toString()) as { id: string; from: number; to: number };
      const props = packet.properties ?? {};
      requests.push({ ...req, responseTopic: props.responseTopic, correlation: props.correlationData?.toString() });
      if (req.from > 12) return; // 13..14: never answered
      const kept = req.from <= 4 && req.to >= 4;
      const answer = { status: 'ok', data: { queued: kept ? 1 : 0, missing: req.to - req.from + 1 - (kept ? 1 : 0) }, id: req.id };
      void box.client
        .publishAsync(props.responseTopic!, JSON.stringify(answer), { qos: 1, properties: { correlationData: props.correlationData } })
        .then(() => (kept ? box.event(4, { replayed: true }) : undefined));
    });
    for (const s of [1, 2, 3, 5, 6]) await box.event(s);
    await box.health(7);
    for (const s of [8, 9, 12, 15]) await box.event(s);

    await waitFor(() => gaps.filter((g) => g.state === 'lost').length === 2 && gaps.some((g) => g.state === 'repaired'), { timeout_ms: 15_000, message: 'repaired and lost' });
    const d = r.device('gap/box1')!;
    expect(d.seq).toMatchObject({ first: 1, last: 15, missing: 0, lost: 4, repaired: 1 });
    expect(gaps.find((g) => g.state === 'repaired')).toMatchObject({ from: 4, to: 4, tries: 1 });
    const lost = gaps.filter((g) => g.state === 'lost');
    expect(lost.find((g) => g.from === 10)).toMatchObject({ to: 11, tries: 1, reason: expect.stringMatching(/no longer has seqs 10-11/) as unknown });
    expect(lost.find((g) => g.from === 13)).toMatchObject({ to: 14, tries: 2, reason: expect.stringMatching(/no answer/) as unknown });
    expect(requests.filter((q) => q.from === 13)).toHaveLength(2);
    for (const q of requests) {
      expect(q.responseTopic).toBe(r.replyTopic);
      expect(q.correlation).toBe(q.id);
    }
    // A seq reported lost that turns up after all is received, not a duplicate.
    await box.event(10, { replayed: true });
    await waitFor(() => r.device('gap/box1')?.seq.lost === 3, { message: 'late arrival of a lost seq' });
  });

  it('repairs a real box (Outbox + Uplink) whose acknowledged messages never reached the center; sinks hold each event once', async () => {
    const dir = makeTempDir('center');
    const jsonl = new JsonlSink(join(dir, 'events.jsonl'));
    const sqlite = new SqliteSink(join(dir, 'events.db'));
    const r = await startReceiver({ grace_ms: 300, confirm_ms: 2000, sinks: [jsonl, sqlite] });
    const gaps: GapReport[] = [];
    r.on('gap', (g) => gaps.push(g));
    const log = silentLogger();
    const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db') }), log);
    await outbox.start(new AbortController().signal);
    const env = { site: 'real', device: 'box1', camera: 'cam1', mono_ms: 1, clock_synced: true, object: { track_id: 1, class: 'car', score: 0.9, box: [1, 2, 3, 4] as [number, number, number, number] } };
    for (let i = 0; i < 10; i++) {
      const ev = makeEvent({ type: 'zone_enter', ...env, captured_at_ms: Date.now(), rule: { kind: 'zone', id: 'z' }, attributes: { occupancy: i } });
      outbox.append({ id: ev.id, topic: 'events/cam1', priority: 'event', payload: ev });
    }
    const h = syntheticHealth(Date.now(), 0, 1);
    outbox.append({ id: h.id, topic: 'health', priority: 'health', payload: h });
    outbox.flush();
    // The broker acknowledged seqs 4-6 but lost them before delivery (e.g. it crashed).
    const leased = outbox.lease(10, { liveFrom: 0 });
    for (const row of leased) if (row.seq >= 4 && row.seq <= 6) outbox.ack(row.seq);
    outbox.release(leased.filter((row) => row.seq < 4 || row.seq > 6).map((row) => row.seq));
    outbox.flush();
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: broker.url }),
      device: { site: 'real', id: 'box1' },
      outbox,
      log,
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [{ id: 'cam1' }], capabilities: [], last_reboot_reason: 'test' }),
    });
    try {
      await uplink.start(new AbortController().signal);
      // A hole is only "missing" once its grace period has passed: wait for the repair itself, not for missing === 0.
      await waitFor(() => r.device('real/box1')?.seq.last === 11 && gaps.some((g) => g.state === 'repaired'), { timeout_ms: 15_000, message: 'all seqs at the center' }).catch((err: Error) => {
        throw new Error(`${err.message}; device: ${JSON.stringify(r.device('real/box1'))}; gaps: ${JSON.stringify(gaps)}`);
      });
      const d = r.device('real/box1')!;
      expect(d).toMatchObject({ state: 'online', events: 10, health_messages: 1 });
      expect(d.seq).toMatchObject({ first: 1, last: 11, repaired: 3, lost: 0, resend_requests: 1 });
      expect(gaps.map((g) => [g.state, g.from, g.to])).toEqual([
        ['requested', 4, 6],
        ['repaired', 4, 6],
      ]);
    } finally {
      await uplink.stop();
      await outbox.stop();
    }
    jsonl.flush();
    sqlite.flush();
    await waitFor(() => readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').length === 10, { message: 'jsonl lines' });
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { topic: string; event: { seq: number } });
    expect(lines.map((l) => l.event.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(lines[0]!.topic).toBe('roadside/real/box1/events/cam1');
    const db = new Database(join(dir, 'events.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events').get()).toEqual({ n: 10, lo: 1, hi: 10 });
    } finally {
      db.close();
    }
  });
});

describe('shared subscriptions', () => {
  it('splits events between receivers of a group, but every receiver gets every status', async () => {
    const a = await startReceiver({ share: 'grp', prefix: 'shr' });
    const b = await startReceiver({ share: 'grp', prefix: 'shr' });
    expect(a.gapMode).toBe('off');
    const client = await connectMqtt(broker.url, { clientId: `fake-shr-${process.pid}` });
    clients.push(client);
    for (const dev of ['box1', 'box2']) {
      await client.publishAsync(`shr/s1/${dev}/status`, JSON.stringify({ state: 'online', session: 1, ts: new Date().toISOString() }), { qos: 1, retain: true });
    }
    for (let i = 1; i <= 40; i++) {
      const dev = i % 2 ? 'box1' : 'box2';
      const ev = { ...syntheticEvent('s1', dev, i * 20), seq: i, sent_at: new Date().toISOString(), replayed: false };
      await client.publishAsync(`shr/s1/${dev}/events/cam1`, JSON.stringify(ev), { qos: 1 });
    }
    await waitFor(() => a.totals().events + b.totals().events === 40, { message: '40 events across the group' });
    expect(a.totals().events).toBeGreaterThan(0);
    expect(b.totals().events).toBeGreaterThan(0);
    for (const r of [a, b]) {
      expect(r.devices().map((d) => [d.key, d.state])).toEqual([
        ['s1/box1', 'online'],
        ['s1/box2', 'online'],
      ]);
      expect(r.totals().missing).toBe(0);
    }
    for (const dev of ['box1', 'box2']) await client.publishAsync(`shr/s1/${dev}/status`, '', { qos: 1, retain: true });
  });

  it('--sites shards events by site while status stays fleet-wide', async () => {
    const r = await startReceiver({ prefix: 'shard', sites: ['north'] });
    expect(r.gapMode).toBe('repair');
    const client = await connectMqtt(broker.url, { clientId: `fake-shard-${process.pid}` });
    clients.push(client);
    for (const site of ['north', 'south']) {
      await client.publishAsync(`shard/${site}/b1/status`, JSON.stringify({ state: 'online', session: 1, ts: new Date().toISOString() }), { qos: 1 });
      const ev = { ...syntheticEvent(site, 'b1', 20), seq: 1, sent_at: new Date().toISOString(), replayed: false };
      await client.publishAsync(`shard/${site}/b1/events/cam1`, JSON.stringify(ev), { qos: 1 });
    }
    await waitFor(() => r.device('south/b1')?.state === 'online' && r.totals().events === 1, { message: 'status of both, events of north' });
    expect(r.device('north/b1')?.events).toBe(1);
    expect(r.device('south/b1')?.events).toBe(0);
  });
});

describe('roadside-agent center', () => {
  it('prints usage, refuses a missing --url', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: {}, interactive: false };
    expect(await cli(['center', '--help'], io)).toBe(0);
    expect(out.join('')).toContain('--share GROUP');
    expect(await cli(['center'], io)).toBe(64);
    expect(await cli(['center', '--url', broker.url, '--gaps', 'maybe'], io)).toBe(64);
  });

  it('runs for --duration-s, printing JSON summary lines and writing events to --out', async () => {
    const dir = makeTempDir('center');
    const file = join(dir, 'out.jsonl');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, interactive: false };
    const run = cli(['center', '--url', broker.url, '--prefix', 'clitest', '--duration-s', '2', '--interval-s', '0.4', '--out', file], io);
    const client = await connectMqtt(broker.url, { clientId: `fake-cli-${process.pid}` });
    clients.push(client);
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 1; i <= 3; i++) {
      const ev = { ...syntheticEvent('s', 'b', i * 20), seq: i, sent_at: new Date().toISOString(), replayed: false };
      await client.publishAsync('clitest/s/b/events/cam1', JSON.stringify(ev), { qos: 1 });
    }
    expect(await run).toBe(0);
    expect(err.join('')).toBe('');
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as { type: string; events: number; devices: number });
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.every((l) => l.type === 'fleet_summary')).toBe(true);
    expect(lines[lines.length - 1]).toMatchObject({ events: 3, devices: 1 });
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
  });
});
