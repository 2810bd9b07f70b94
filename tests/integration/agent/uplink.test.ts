// Uplink against a real mosquitto (testkit): listeners, TLS, backoff, drain order, broker restart,
// crash recovery, Will and retained states.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BirthPayload } from '../../../contract/birth.js';
import { StatusPayload } from '../../../contract/status.js';
import { DeliveryFields } from '../../../contract/topics.js';
import { silentLogger } from '../../../core/log.js';
import { Backoff } from '../../../core/time.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { Outbox, type OutboxMessage } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { waitFor } from '../../../testkit/processes.js';

let deviceNo = 0;
let device = 'dev0';
/** Base topic of this test's device (a new device per test: retained messages of other tests do not interfere). */
let BASE = '';
const BIRTH = {
  agent_version: '0.1.0-test',
  model: { name: 'nanodet-m-416', sha256: 'abc' },
  config_hash: '0123456789abcdef',
  cameras: [{ id: 'cam1', lines: ['stop-nb'] }, { id: 'cam2' }],
  capabilities: ['speed', 'wrong_way'],
  last_reboot_reason: 'power_on',
};

// ---------------------------------------------------------------------------------------------
// Helpers

let dir: string;
const cleanups: (() => unknown)[] = [];
const later = (fn: () => unknown): void => void cleanups.push(fn);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'roadside-uplink-test-'));
  device = `dev${++deviceNo}`;
  BASE = `roadside/site1/${device}`;
});

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // best effort
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Agent {
  outbox: Outbox;
  uplink: Uplink;
}

async function openOutbox(over: Record<string, unknown> = {}, file = 'outbox.db'): Promise<Outbox> {
  const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, file), commit_interval_ms: 20, ...over }), silentLogger());
  await outbox.start(new AbortController().signal);
  later(() => outbox.stop());
  return outbox;
}

function makeUplink(outbox: Outbox, mqttOver: Record<string, unknown>, birth: () => typeof BIRTH = () => BIRTH): Uplink {
  const uplink = new Uplink({
    config: MqttSchema.parse({ backoff: { initial_ms: 100, max_ms: 1000, jitter: 0.5 }, ...mqttOver }),
    device: { site: 'site1', id: device },
    outbox,
    log: silentLogger(),
    birth,
  });
  later(() => uplink.stop());
  return uplink;
}

async function startAgent(mqttOver: Record<string, unknown>, outboxOver: Record<string, unknown> = {}): Promise<Agent> {
  const outbox = await openOutbox(outboxOver);
  const uplink = makeUplink(outbox, mqttOver);
  await uplink.start(new AbortController().signal);
  return { outbox, uplink };
}

/** Resolves with 'online' or the code of the first error. */
function firstOutcome(uplink: Uplink): Promise<string> {
  return new Promise((resolve) => {
    uplink.once('online', () => resolve('online'));
    uplink.once('offline', (e) => resolve(e?.code ?? 'offline'));
  });
}

interface Received {
  topic: string;
  body: Record<string, unknown>;
  retain: boolean;
}

async function subscriber(url: string, filters: string[], opts: IClientOptions = {}): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, ...opts });
  later(() => client.endAsync(true));
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString()) as Record<string, unknown>;
    } catch {
      body = { raw: payload.toString() };
    }
    got.push({ topic, body, retain: packet.retain });
  });
  await client.subscribeAsync(filters, { qos: 1 });
  return { client, got };
}

const event = (i: number, camera = 'cam1', over: Partial<OutboxMessage> = {}): OutboxMessage => ({
  id: `ev-${i}`,
  topic: `events/${camera}`,
  priority: 'event',
  payload: { type: 'line_crossing', camera, n: i },
  ...over,
});

/** A loopback TCP proxy whose connections can be cut (the broker sees a dead socket, as after a crash). */
class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private accepting = true;
  /** When true, nothing from the broker reaches the client (PUBACKs are lost). */
  blackholed = false;
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const ref: { proxy?: TcpProxy } = {};
    const server = net.createServer((client) => {
      const proxy = ref.proxy;
      if (!proxy?.accepting) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy?.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!proxy?.blackholed) client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    ref.proxy = proxy;
    later(() => proxy.stop());
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Cuts every connection without a DISCONNECT (RST). */
  cut(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  pause(): void {
    this.accepting = false;
  }

  resume(): void {
    this.accepting = true;
  }

  async stop(): Promise<void> {
    this.pause();
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// ---------------------------------------------------------------------------------------------

describe('uplink: session, birth, status, events', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start({ extraConfig: ['max_inflight_messages 8'] });
  });
  afterAll(() => broker.stop());

  it('publishes birth and online (retained), events with seq/sent_at/replayed, and stopped on a clean shutdown', async () => {
    const agent = await startAgent({ url: broker.url, inflight_window: 64 });
    await firstOutcome(agent.uplink);
    const sub = await subscriber(broker.url, [`${BASE}/#`]);
    await waitFor(() => sub.got.filter((m) => m.retain).length >= 2, { message: 'retained birth and status' });
    const birth = BirthPayload.parse(sub.got.find((m) => m.topic === `${BASE}/birth`)?.body);
    expect(birth).toMatchObject({ ...BIRTH, session: 1, contract_version: 1, commands: ['ping', 'rebirth', 'resend', 'set-log-level'] });
    const status = StatusPayload.parse(sub.got.find((m) => m.topic === `${BASE}/status`)?.body);
    expect(status).toMatchObject({ state: 'online', session: 1 });
    expect(agent.uplink.stats().window).toBe(8); // capped by the broker's Receive Maximum

    for (let i = 0; i < 20; i++) agent.outbox.append(event(i, i % 2 ? 'cam2' : 'cam1'));
    await waitFor(() => sub.got.filter((m) => m.topic.includes('/events/')).length >= 20, { message: '20 events' });
    const events = sub.got.filter((m) => m.topic.includes('/events/'));
    for (const e of events) {
      const f = DeliveryFields.parse(e.body);
      expect(f.replayed).toBe(false);
      expect(Date.now() - Date.parse(f.sent_at)).toBeLessThan(10_000);
    }
    expect(events[0]).toMatchObject({ topic: `${BASE}/events/cam1`, body: { id: 'ev-0', type: 'line_crossing', camera: 'cam1', n: 0, seq: 1 } });
    await waitFor(() => agent.outbox.stats().acked === 20, { message: 'acks' });
    expect(agent.uplink.stats()).toMatchObject({ published: 20, published_live: 20, state: 'online', connects: 1 });

    await agent.uplink.stop();
    await waitFor(() => sub.got.some((m) => m.topic === `${BASE}/status` && m.body.state === 'stopped'), { message: 'stopped' });
    const late = await subscriber(broker.url, [`${BASE}/status`]);
    await waitFor(() => late.got.length > 0, { message: 'retained stopped' });
    expect(late.got[0]).toMatchObject({ retain: true, body: { state: 'stopped', session: 1 } });
  });

  it('publishes a birth without keys outside the contract, and a minimal one when birth() fails', async () => {
    const outbox = await openOutbox();
    let calls = 0;
    const uplink = makeUplink(outbox, { url: broker.url }, () => {
      if (++calls === 2) throw new Error('no model file');
      return { ...BIRTH, secret_sauce: 42 } as typeof BIRTH;
    });
    const sub = await subscriber(broker.url, [`${BASE}/birth`]);
    await uplink.start(new AbortController().signal);
    await firstOutcome(uplink);
    await waitFor(() => sub.got.length === 1, { message: 'birth' });
    expect(BirthPayload.parse(sub.got[0]?.body)).toMatchObject({ agent_version: BIRTH.agent_version, config_hash: BIRTH.config_hash });
    expect(sub.got[0]?.body).not.toHaveProperty('secret_sauce');
    await uplink.rebirth();
    await waitFor(() => sub.got.length === 2, { message: 'second birth' });
    expect(BirthPayload.parse(sub.got[1]?.body)).toMatchObject({ agent_version: 'unknown', session: uplink.currentSession });
  });

  it('sends live rows first, then the backlog oldest-first per priority with replayed: true, at drain_rate_per_s', async () => {
    const outbox = await openOutbox();
    for (let i = 0; i < 30; i++) outbox.append(event(i, 'cam1', i % 6 === 5 ? { priority: 'violation', id: `vi-${i}` } : {}));
    outbox.flush();
    const sub = await subscriber(broker.url, [`${BASE}/events/+`]);
    const uplink = makeUplink(outbox, { url: broker.url, drain_rate_per_s: 20 });
    await uplink.start(new AbortController().signal);
    await firstOutcome(uplink);
    const t0 = Date.now();
    for (let i = 100; i < 105; i++) outbox.append(event(i, 'cam2'));
    await waitFor(() => sub.got.length >= 35, { timeout_ms: 10_000, message: 'all events' });
    const elapsed = Date.now() - t0;
    const ids = sub.got.map((m) => m.body.n as number);
    const backlog = sub.got.filter((m) => m.body.replayed === true);
    const live = sub.got.filter((m) => m.body.replayed === false);
    expect(live.map((m) => m.body.n)).toEqual([100, 101, 102, 103, 104]);
    expect(backlog).toHaveLength(30);
    // violations first, then events, each oldest first
    const expectedBacklog = [5, 11, 17, 23, 29, ...Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 6 !== 5)];
    expect(backlog.map((m) => m.body.n)).toEqual(expectedBacklog);
    expect(ids.indexOf(104)).toBeLessThan(ids.indexOf(expectedBacklog.at(-1) as number));
    expect(elapsed).toBeGreaterThan(1000); // 30 backlog rows at 20/s
  });

  it('keeps retained states while offline and republishes them after the birth; drops other messages while offline', async () => {
    const outbox = await openOutbox();
    const uplink = makeUplink(outbox, { url: broker.url });
    expect(uplink.publishNow('cameras/cam1/status', { camera: 'cam1', state: 'stalled', reason: 'no frames', ts: new Date().toISOString() }, { retain: true })).toBe(false);
    expect(uplink.publishNow('cmd/snapshot/result', { status: 'ok', data: null })).toBe(false);
    expect(() => uplink.publishNow('cameras/+/status', {})).toThrow(/invalid relative topic/);
    const sub = await subscriber(broker.url, [`${BASE}/birth`, `${BASE}/status`, `${BASE}/cameras/+/status`]);
    await uplink.start(new AbortController().signal);
    await firstOutcome(uplink);
    await waitFor(() => sub.got.length >= 3, { message: 'birth, status, camera status' });
    expect(sub.got.map((m) => m.topic)).toEqual([`${BASE}/birth`, `${BASE}/status`, `${BASE}/cameras/cam1/status`]);
    expect(uplink.stats()).toMatchObject({ dropped_offline: 1, retained_states: 1 });
    expect(uplink.publishNow('cameras/cam1/status', { camera: 'cam1', state: 'online', ts: new Date().toISOString() }, { retain: true })).toBe(true);
    const late = await subscriber(broker.url, [`${BASE}/cameras/+/status`]);
    await waitFor(() => late.got.some((m) => m.body.state === 'online'), { message: 'latest retained' });
  });
});

describe('uplink: clean stop and status conditions', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(() => broker.stop());

  it('a clean stop commits the rows appended just before it, delivers them, then publishes stopped', async () => {
    // A long commit interval: without the stop's own commit these rows would wait in memory for the next start.
    const agent = await startAgent({ url: broker.url, inflight_window: 4 }, { commit_interval_ms: 1000 });
    await firstOutcome(agent.uplink);
    const sub = await subscriber(broker.url, [`${BASE}/events/+`, `${BASE}/status`]);
    await waitFor(() => sub.got.some((m) => m.topic === `${BASE}/status`), { message: 'retained online' });
    for (let i = 0; i < 50; i++) agent.outbox.append(event(i));
    expect(agent.outbox.stats()).toMatchObject({ pending_rows: 50 });
    await agent.uplink.stop();
    expect(agent.outbox.stats()).toMatchObject({ depth_total: 0, acked: 50 });
    await waitFor(() => sub.got.some((m) => m.body.state === 'stopped'), { message: 'stopped' });
    const topics = sub.got.map((m) => (m.topic === `${BASE}/status` ? String(m.body.state) : `ev-${String(m.body.n)}`));
    expect(topics).toEqual(['online', ...Array.from({ length: 50 }, (_, i) => `ev-${i}`), 'stopped']);
  });

  it('status conditions: published again at once while online, carried by the next online status, cleared with []', async () => {
    const agent = await startAgent({ url: broker.url });
    agent.uplink.setStatusConditions(['disk_full']); // before the connection: the first online status carries it
    await firstOutcome(agent.uplink);
    const sub = await subscriber(broker.url, [`${BASE}/status`]);
    await waitFor(() => sub.got.length >= 1, { message: 'retained status' });
    expect(StatusPayload.parse(sub.got[0]?.body)).toMatchObject({ state: 'online', session: 1, conditions: ['disk_full'] });
    agent.uplink.setStatusConditions(['disk_full']); // unchanged: nothing published
    agent.uplink.setStatusConditions([]);
    await waitFor(() => sub.got.length >= 2, { message: 'cleared status' });
    expect(sub.got[1]).toMatchObject({ retain: false, body: { state: 'online', session: 1 } });
    expect(sub.got[1]?.body).not.toHaveProperty('conditions');
    agent.uplink.setStatusConditions(['disk_full']);
    await waitFor(() => sub.got.length >= 3, { message: 'condition again' });
    expect(StatusPayload.parse(sub.got[2]?.body).conditions).toEqual(['disk_full']);
    await sleep(100);
    expect(sub.got).toHaveLength(3);
    await agent.uplink.stop();
    await waitFor(() => sub.got.length >= 4, { message: 'stopped' });
    expect(sub.got[3]?.body).toMatchObject({ state: 'stopped' });
    expect(sub.got[3]?.body).not.toHaveProperty('conditions');
  });
});

describe('uplink: authentication and TLS', () => {
  let certs: TestCerts;
  let broker: Mosquitto;
  let mtls: Mosquitto;
  beforeAll(async () => {
    certs = await makeCerts();
    broker = await Mosquitto.start({ password: { username: 'box-1', password: 's3cret' }, tls: { certs } });
    mtls = await Mosquitto.start({ tls: { certs, requireClientCert: true } });
  });
  afterAll(async () => {
    await broker.stop();
    await mtls.stop();
  });

  it('connects with the right password and reports a refused one with its reason code', async () => {
    const ok = await startAgent({ url: broker.url, username: 'box-1', password: 's3cret' });
    expect(await firstOutcome(ok.uplink)).toBe('online');
    await ok.uplink.stop();
    for (const protocol of [5, 4] as const) {
      const bad = await startAgent({ url: broker.url, protocol, username: 'box-1', password: 'wrong' }, {});
      expect(await firstOutcome(bad.uplink)).toBe('MQTT_NOT_AUTHORIZED');
      const err = bad.uplink.stats().last_error;
      expect(err).toMatchObject({ code: 'MQTT_NOT_AUTHORIZED', reason_code: protocol === 5 ? 135 : 5 });
      expect(err?.message).toMatch(/not authorized.*password/);
      expect(err?.message).not.toContain('wrong');
      await bad.uplink.stop();
      await bad.outbox.stop();
    }
  });

  it('verifies the broker certificate against the configured CA, and refuses an untrusted one', async () => {
    const good = await startAgent({ url: broker.tlsUrl, username: 'box-1', password: 's3cret', tls: { ca: certs.caFile } });
    expect(await firstOutcome(good.uplink)).toBe('online');
    for (let i = 0; i < 200; i++) good.outbox.append(event(i));
    await waitFor(() => good.uplink.stats().published === 200, { message: 'events over TLS' });
    await good.uplink.stop();
    await good.outbox.stop();
    const wrong = await startAgent({ url: broker.tlsUrl, username: 'box-1', password: 's3cret', tls: { ca: certs.otherCaFile } });
    expect(await firstOutcome(wrong.uplink)).toBe('TLS_UNTRUSTED_CERT');
    expect(wrong.uplink.stats().last_error?.message).toMatch(/not trusted \(SELF_SIGNED_CERT_IN_CHAIN\).*mqtt\.tls\.ca/);
    expect(wrong.uplink.stats().state).toBe('offline');
    await wrong.uplink.stop();
    await wrong.outbox.stop();
    const name = await startAgent({ url: broker.tlsUrl, username: 'box-1', password: 's3cret', tls: { ca: certs.caFile, servername: 'elsewhere.example' } });
    expect(await firstOutcome(name.uplink)).toBe('TLS_HOSTNAME_MISMATCH');
  });

  it('authenticates with a client certificate (mutual TLS) and reports a missing one', async () => {
    const good = await startAgent({ url: mtls.tlsUrl, tls: { ca: certs.caFile, cert: certs.clientCert, key: certs.clientKey } });
    expect(await firstOutcome(good.uplink)).toBe('online');
    await good.uplink.stop();
    await good.outbox.stop();
    const none = await startAgent({ url: mtls.tlsUrl, tls: { ca: certs.caFile } });
    expect(await firstOutcome(none.uplink)).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(none.uplink.stats().last_error?.message).toMatch(/mqtt\.tls\.cert/);
  });
});

describe('uplink: outages and crashes', () => {
  it('loses nothing while the broker is stopped and restarted: order per camera kept, duplicates only with the same id', async () => {
    const broker = await Mosquitto.start({ persistence: true, extraConfig: ['max_queued_messages 0'] });
    later(() => broker.stop());
    // The center: a persistent session, so the broker keeps what it acknowledged for it across the restart.
    const sub = await subscriber(broker.url, [`${BASE}/events/+`], { protocolVersion: 4, clean: false, clientId: 'center-1', reconnectPeriod: 100 });
    const { outbox, uplink } = await startAgent({ url: broker.url, inflight_window: 16 });
    await firstOutcome(uplink);
    let i = 0;
    const produce = setInterval(() => {
      for (let k = 0; k < 2; k++, i++) outbox.append(event(i, `cam${i % 3}`));
    }, 5);
    later(() => clearInterval(produce));
    await sleep(500);
    await broker.stop();
    await sleep(800);
    await broker.start();
    await sleep(600);
    clearInterval(produce);
    const total = i;
    expect(total).toBeGreaterThan(300);
    await waitFor(() => new Set(sub.got.map((m) => m.body.id)).size >= total, { timeout_ms: 20_000, message: `all ${total} events` });

    const bySeq = new Map<number, unknown>();
    for (const m of sub.got) {
      const seq = m.body.seq as number;
      if (bySeq.has(seq)) expect(bySeq.get(seq)).toBe(m.body.id); // a duplicate is the same message
      bySeq.set(seq, m.body.id);
    }
    expect(new Set(sub.got.map((m) => m.body.id))).toEqual(new Set(Array.from({ length: total }, (_, k) => `ev-${k}`)));
    // Per camera, first deliveries are in seq order within live and within replayed messages.
    const seen = new Set<unknown>();
    const last = new Map<string, number>();
    for (const m of sub.got) {
      if (seen.has(m.body.id)) continue;
      seen.add(m.body.id);
      const key = `${String(m.body.camera)}/${String(m.body.replayed)}`;
      expect(m.body.seq as number).toBeGreaterThan(last.get(key) ?? 0);
      last.set(key, m.body.seq as number);
    }
    expect(sub.got.some((m) => m.body.replayed === true)).toBe(true);
    expect(uplink.stats().connects).toBeGreaterThanOrEqual(2);
    await waitFor(() => outbox.stats().depth_total === 0, { message: 'outbox drained' });
  });

  it('after an abrupt close of outbox and uplink, everything unacknowledged is delivered on reopen', async () => {
    const broker = await Mosquitto.start();
    later(() => broker.stop());
    const proxy = await TcpProxy.start(broker.port);
    const sub = await subscriber(broker.url, [`${BASE}/events/+`]);
    // Acknowledgements stay in memory until the crash (no commit in between): every row sent must come again.
    const outbox1 = await openOutbox({ commit_interval_ms: 1000, commit_rows: 100_000 });
    const uplink1 = makeUplink(outbox1, { url: proxy.url, inflight_window: 16 });
    await uplink1.start(new AbortController().signal);
    await firstOutcome(uplink1);
    const N = 2000;
    for (let k = 0; k < N; k++) outbox1.append(event(k, `cam${k % 2}`));
    outbox1.flush();
    await waitFor(() => uplink1.stats().published >= 50, { interval_ms: 1, message: 'some delivered' });
    proxy.blackholed = true; // PUBACKs are lost from now on: the window fills with unacknowledged messages
    await waitFor(() => uplink1.stats().inflight === 16, { message: 'window full' });
    const acked = uplink1.stats().published;
    // crash: the process loses its memory, the connection dies without DISCONNECT
    outbox1.closeAbruptly();
    proxy.pause();
    proxy.cut();
    await uplink1.stop();
    expect(acked).toBeLessThan(N);

    const { outbox } = await startAgent({ url: broker.url });
    await waitFor(() => new Set(sub.got.map((m) => m.body.id)).size === N && outbox.stats().depth_total === 0, { timeout_ms: 15_000, message: 'redelivery' });
    const copies = new Map<unknown, boolean[]>();
    for (const m of sub.got) copies.set(m.body.id, [...(copies.get(m.body.id) ?? []), m.body.replayed as boolean]);
    let twice = 0;
    for (let k = 0; k < N; k++) {
      const c = copies.get(`ev-${k}`);
      expect([[false, true], [true]]).toContainEqual(c);
      if (c?.length === 2) twice++;
    }
    expect(twice).toBeGreaterThanOrEqual(acked); // acknowledged before the crash, yet sent again: the acks were never stored
  });

  it('the delivery at a clean stop is bounded: PUBACKs that never come leave the rows for the next start', async () => {
    const broker = await Mosquitto.start();
    later(() => broker.stop());
    const proxy = await TcpProxy.start(broker.port);
    const outbox = await openOutbox();
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: proxy.url, inflight_window: 8, backoff: { initial_ms: 100, max_ms: 1000 } }),
      device: { site: 'site1', id: device },
      outbox,
      log: silentLogger(),
      birth: () => BIRTH,
      stopDrainMs: 300,
    });
    later(() => uplink.stop());
    await uplink.start(new AbortController().signal);
    await firstOutcome(uplink);
    proxy.blackholed = true;
    for (let i = 0; i < 40; i++) outbox.append(event(i));
    const t0 = Date.now();
    await uplink.stop();
    // 300 ms of delivery, then at most 2 s for `stopped` and 2 s for the disconnect, both unanswered here.
    expect(Date.now() - t0).toBeLessThan(300 + 4000 + 500);
    expect(outbox.stats()).toMatchObject({ depth_total: 40, leased: 0, acked: 0 });
  });

  it('the Will says offline with the session number when the socket dies; reconnecting says online with a greater session', async () => {
    const broker = await Mosquitto.start();
    later(() => broker.stop());
    const proxy = await TcpProxy.start(broker.port);
    const { uplink } = await startAgent({ url: proxy.url });
    await firstOutcome(uplink);
    const session = uplink.currentSession;
    const watch = await subscriber(broker.url, [`${BASE}/status`]);
    await waitFor(() => watch.got.some((m) => m.body.state === 'online'), { message: 'online' });

    proxy.pause();
    proxy.cut();
    const late = await waitFor(
      async () => {
        const s = await subscriber(broker.url, [`${BASE}/status`]);
        await sleep(100);
        return s.got.find((m) => m.body.state === 'offline');
      },
      { timeout_ms: 5000, message: 'retained offline' },
    );
    expect(late.retain).toBe(true);
    expect(StatusPayload.parse(late.body)).toMatchObject({ state: 'offline', session });
    await waitFor(() => uplink.stats().connect_attempts >= 2 && uplink.stats().last_error?.code === 'NETWORK', { message: 'reconnect attempts' });

    proxy.resume();
    await waitFor(() => uplink.online, { timeout_ms: 5000, message: 'back online' });
    const after = await subscriber(broker.url, [`${BASE}/status`]);
    await waitFor(() => after.got.length > 0, { message: 'retained online' });
    const online = StatusPayload.parse(after.got[0]?.body);
    expect(online.state).toBe('online');
    expect(online.session).toBeGreaterThan(session);
    expect(watch.got.map((m) => m.body.state)).toEqual(['online', 'offline', 'online']);
  });
});

describe('Backoff', () => {
  it('doubles up to the maximum and takes a random fraction up to jitter off', () => {
    const b = new Backoff({ initial_ms: 100, max_ms: 1000, jitter: 0.5 }, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => b.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
    const j = new Backoff({ initial_ms: 1000, max_ms: 60_000, jitter: 0.5 }, () => 1);
    expect(j.next()).toBe(500);
  });
});
