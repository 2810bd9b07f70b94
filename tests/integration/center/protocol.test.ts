// The center on MQTT 3.1.1 (issue 13: it could not watch the README's demo, whose embedded aedes broker speaks
// 3.1.1 only) and closing twice: receiver.stop(), every sink's close() and the CLI's failure path.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetReceiver, type FleetReceiverOptions, type GapReport } from '../../../center/receiver.js';
import { JsonlSink, SqliteSink, type ReceivedEvent } from '../../../center/sinks.js';
import { cli } from '../../../cli/main.js';
import { EmbeddedBroker } from '../../../agent/uplink/embedded-broker.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { syntheticEvent } from '../../../testkit/fleet-sim.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { makeEvent, type WireEvent } from '../../../contract/event.js';
import { baseFilter, baseTopic, parseTopic, TOPICS, topicsFor, type TopicName } from '../../../contract/topics.js';
import { silentLogger } from '../../../core/log.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { freePort } from '../../../testkit/ports.js';
import { waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

let broker: Mosquitto;
const clients: MqttClient[] = [];
const receivers: FleetReceiver[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.stop();
});
afterAll(async () => {
  for (const c of clients) await endMqtt(c);
  await broker?.stop();
});

async function startReceiver(opts: Partial<FleetReceiverOptions> & { url?: string } = {}): Promise<FleetReceiver> {
  const r = new FleetReceiver({ url: broker.url, tick_ms: 50, ...opts }, silentLogger());
  receivers.push(r);
  await r.start();
  return r;
}

async function client311(url: string, name: string): Promise<MqttClient> {
  const c = await connectMqtt(url, { protocolVersion: 4, clientId: `${name}-${process.pid}-${Math.random().toString(16).slice(2, 8)}` });
  clients.push(c);
  return c;
}

const wireEvent = (site: string, device: string, seq: number): WireEvent =>
  ({ ...syntheticEvent(site, device, seq * 20), seq, sent_at: new Date().toISOString(), replayed: false });

describe('topic map', () => {
  it('parseTopic is the inverse of topicsFor for every topic of TOPICS; baseFilter builds wildcard bases', () => {
    const t = topicsFor(baseTopic('roadside', 's1', 'box1'));
    const built: Record<TopicName, [topic: string, param: string | undefined]> = {
      status: [t.status, undefined],
      birth: [t.birth, undefined],
      events: [t.events('cam1'), 'cam1'],
      health: [t.health, undefined],
      camera_status: [t.cameraStatus('cam1'), 'cam1'],
      command: [t.command('resend'), 'resend'],
      command_result: [t.commandResult('resend'), 'resend'],
    };
    expect(Object.keys(built).sort()).toEqual(Object.keys(TOPICS).sort());
    for (const [name, [topic, param]] of Object.entries(built)) {
      expect(parseTopic('roadside', topic), topic).toEqual({ site: 's1', device: 'box1', name, ...(param ? { param } : {}) });
    }
    expect(parseTopic('roadside', 'other/s1/box1/status')).toBeNull();
    expect(parseTopic('roadside', 'roadside/s1/box1/events')).toBeNull();
    expect(parseTopic('roadside', 'roadside/s1/box1/cmd/resend/reply')).toBeNull();
    expect(parseTopic('roadside', 'roadside/s1//status')).toBeNull();
    expect(topicsFor(baseFilter('roadside')).cameraStatus('+')).toBe('roadside/+/+/cameras/+/status');
    expect(topicsFor(baseFilter('roadside', 'north')).events('+')).toBe('roadside/north/+/events/+');
    expect(() => baseFilter('roadside', 'a/b')).toThrow(/invalid topic level "a\/b"/);
    expect(() => new FleetReceiver({ url: broker.url, sites: ['#'] }, silentLogger())).toThrow(/invalid prefix or site/);
  });
});

describe('MQTT 3.1.1 (protocol 4)', () => {
  it('connects to mosquitto with protocol 4 and receives availability and events', async () => {
    const r = await startReceiver({ protocol: 4, prefix: 'v311' });
    expect(r.replyTopic).toBeNull();
    const events: number[] = [];
    r.on('event', (e) => events.push(e.seq));
    const box = await client311(broker.url, 'box311');
    const t = topicsFor(baseTopic('v311', 's', 'b'));
    await box.publishAsync(t.status, JSON.stringify({ state: 'online', session: 3, ts: new Date().toISOString() }), { qos: 1, retain: true });
    for (const seq of [1, 2, 3]) await box.publishAsync(t.events('cam1'), JSON.stringify(wireEvent('s', 'b', seq)), { qos: 1 });
    await waitFor(() => events.length === 3 && r.device('s/b')?.state === 'online', { message: '3 events and online' });
    expect(events).toEqual([1, 2, 3]);
    expect(r.device('s/b')).toMatchObject({ session: 3, events: 3, seq: { received: 3, missing: 0 } });
    expect(r.totals()).toMatchObject({ connected: true, events: 3, invalid: 0 });
    await box.publishAsync(t.status, '', { qos: 1, retain: true });
  });

  it('repairs gaps of a real 3.1.1 box: resend responses come back on {base}/cmd/resend/result', async () => {
    const dir = makeTempDir('center311');
    const r = await startReceiver({ protocol: 4, prefix: 'rep311', grace_ms: 300, confirm_ms: 2000 });
    const gaps: GapReport[] = [];
    r.on('gap', (g) => gaps.push(g));
    const results: string[] = [];
    const watcher = await client311(broker.url, 'watch311');
    await watcher.subscribeAsync(topicsFor(baseTopic('rep311', 'real', 'box1')).commandResult('resend'), { qos: 1 });
    watcher.on('message', (_topic, payload) => results.push(payload.toString()));
    const log = silentLogger();
    const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db') }), log);
    await outbox.start(new AbortController().signal);
    const env = { site: 'real', device: 'box1', camera: 'cam1', mono_ms: 1, clock_synced: true, object: { track_id: 1, class: 'car', score: 0.9, box: [1, 2, 3, 4] as [number, number, number, number] } };
    for (let i = 0; i < 6; i++) {
      const ev = makeEvent({ type: 'zone_enter', ...env, captured_at_ms: Date.now(), rule: { kind: 'zone', id: 'z' }, attributes: { occupancy: i } });
      outbox.append({ id: ev.id, topic: 'events/cam1', priority: 'event', payload: ev });
    }
    outbox.flush();
    // The broker acknowledged seqs 2-3 but lost them before delivery.
    const leased = outbox.lease(10, { liveFrom: 0 });
    for (const row of leased) if (row.seq === 2 || row.seq === 3) outbox.ack(row.seq);
    outbox.release(leased.filter((row) => row.seq !== 2 && row.seq !== 3).map((row) => row.seq));
    outbox.flush();
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: broker.url, protocol: 4, topic_prefix: 'rep311' }),
      device: { site: 'real', id: 'box1' },
      outbox,
      log,
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [{ id: 'cam1' }], capabilities: [], last_reboot_reason: 'test' }),
    });
    try {
      await uplink.start(new AbortController().signal);
      await waitFor(() => gaps.some((g) => g.state === 'repaired'), { timeout_ms: 15_000, message: 'repaired over 3.1.1' }).catch((err: Error) => {
        throw new Error(`${err.message}; device: ${JSON.stringify(r.device('real/box1'))}; gaps: ${JSON.stringify(gaps)}`);
      });
      expect(r.device('real/box1')).toMatchObject({ state: 'online', events: 6, seq: { first: 1, last: 6, missing: 0, repaired: 2, lost: 0, resend_requests: 1 } });
      expect(gaps.map((g) => [g.state, g.from, g.to])).toEqual([
        ['requested', 2, 3],
        ['repaired', 2, 3],
      ]);
      await waitFor(() => results.length === 1, { message: 'the response on the result topic' });
      expect(JSON.parse(results[0]!)).toMatchObject({ status: 'ok', data: { queued: 2 } });
    } finally {
      await uplink.stop();
      await outbox.stop();
    }
  });
});

describe("the demo's embedded broker (aedes, 3.1.1 only)", () => {
  let demo: EmbeddedBroker;
  let url: string;
  beforeAll(async () => {
    url = `mqtt://127.0.0.1:${await freePort()}`;
    demo = new EmbeddedBroker(MqttSchema.parse({ url, protocol: 4, embedded_broker: true }), silentLogger());
    await demo.start();
  });
  afterAll(async () => {
    await demo?.stop();
  });

  it('protocol 5 is refused with a hint to use protocol 4; the failed receiver stops cleanly, twice', async () => {
    const r = new FleetReceiver({ url }, silentLogger());
    receivers.push(r);
    await expect(r.start()).rejects.toMatchObject({ code: 'CENTER_CONNECT_REFUSED', message: expect.stringMatching(/Unacceptable protocol version.*--protocol 4/) as unknown });
    await expect(r.stop()).resolves.toBeUndefined();
    await expect(r.start()).rejects.toMatchObject({ code: 'CENTER_STOPPED' });
  });

  it('roadside-agent center: without --protocol 4 exits 1 with a hint; refuses --protocol 3', async () => {
    const dir = makeTempDir('center-demo');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, interactive: false };
    expect(await cli(['center', '--url', url, '--out', join(dir, 'e.jsonl'), '--db', join(dir, 'e.db')], io)).toBe(1);
    // One message (the sinks of --out and --db are closed once although start() failed and the CLI stops too).
    expect(err.join('')).toMatch(/^roadside-agent center: .*Unacceptable protocol version.*\(--protocol 4\)\n$/);
    expect(await cli(['center', '--url', url, '--protocol', '3'], io)).toBe(64);
    expect(err.join('')).toContain('--protocol must be 4 (MQTT 3.1.1) or 5, got "3"');
  });

  it('roadside-agent center --protocol 4 watches the demo and writes its events', async () => {
    const dir = makeTempDir('center-demo');
    const file = join(dir, 'out.jsonl');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, interactive: false };
    const run = cli(['center', '--url', url, '--protocol', '4', '--prefix', 'demo', '--duration-s', '2', '--interval-s', '0.5', '--out', file], io);
    const box = await client311(url, 'demo-box');
    await new Promise((res) => setTimeout(res, 600));
    const t = topicsFor(baseTopic('demo', 's', 'b'));
    for (const seq of [1, 2]) await box.publishAsync(t.events('cam1'), JSON.stringify(wireEvent('s', 'b', seq)), { qos: 1 });
    expect(await run).toBe(0);
    expect(err.join('')).toBe('');
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as { type: string; events: number; connected: boolean });
    expect(lines[lines.length - 1]).toMatchObject({ type: 'fleet_summary', events: 2, devices: 1 });
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: { seq: number } }).event.seq)).toEqual([1, 2]);
  });
});

describe('closing twice', () => {
  const received = (seq: number): ReceivedEvent => ({ topic: 'roadside/s/b/events/cam1', site: 's', device: 'b', received_at: Date.now(), event: wireEvent('s', 'b', seq) });

  it('JsonlSink.close twice (and concurrently) does not throw; a write after close is an error, not a silent drop', async () => {
    const file = join(makeTempDir('sink'), 'e.jsonl');
    const sink = new JsonlSink(file);
    sink.write(received(1));
    await Promise.all([sink.close(), sink.close()]);
    await expect(sink.close()).resolves.toBeUndefined();
    expect(() => sink.write(received(2))).toThrow(expect.objectContaining({ code: 'SINK_CLOSED' }) as Error);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('SqliteSink.close twice does not throw', async () => {
    const file = join(makeTempDir('sink'), 'e.db');
    const sink = new SqliteSink(file);
    sink.write(received(1));
    await sink.close();
    await expect(sink.close()).resolves.toBeUndefined();
    expect(() => sink.write(received(2))).toThrow(/closed/);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  });

  it('FleetReceiver.stop twice is fine and closes each sink once', async () => {
    let closes = 0;
    const sink = { name: 'count', write: () => undefined, flush: () => undefined, close: () => Promise.resolve(void closes++) };
    const r = await startReceiver({ protocol: 4, sinks: [sink] });
    expect(r.totals().connected).toBe(true);
    await Promise.all([r.stop(), r.stop()]);
    await r.stop();
    expect(closes).toBe(1);
    expect(r.totals().connected).toBe(false);
  });
});
