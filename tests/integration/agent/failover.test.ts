// Broker failover of the uplink (mqtt.urls) against two real mosquittos that know nothing of each other: the box
// publishes steadily, node A is killed, the uplink moves to node B within a bounded time, and the union of what
// subscribers on both brokers received holds every seq (duplicates allowed, none missing). Birth and health name
// the node in use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveFigures } from '../../../agent/figures.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { syntheticEvent } from '../../../testkit/fleet-sim.js';
import { Outbox } from '../../../buffer/outbox.js';
import type { Config } from '../../../config/schema/index.js';
import { HealthSchema } from '../../../config/schema/health.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { BirthPayload } from '../../../contract/birth.js';
import { PRIORITY } from '../../../contract/event.js';
import { HealthPayload } from '../../../contract/health.js';
import { StatusPayload } from '../../../contract/status.js';
import { silentLogger } from '../../../core/log.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { freePort } from '../../../testkit/ports.js';
import { waitFor } from '../../../testkit/processes.js';

const SITE = 'site1';
let deviceNo = 0;
const cleanups: (() => unknown)[] = [];
const later = (fn: () => unknown): void => void cleanups.push(fn);

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // best effort
    }
  }
});

interface Watcher {
  client: MqttClient;
  /** seq → copies received, events only. */
  seqs: Map<number, number>;
  births: BirthPayload[];
  statuses: StatusPayload[];
}

async function watch(url: string, base: string): Promise<Watcher> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, clientId: `watch-${Math.random().toString(16).slice(2)}` });
  later(() => client.endAsync(true));
  const w: Watcher = { client, seqs: new Map(), births: [], statuses: [] };
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    if (topic === `${base}/birth`) w.births.push(BirthPayload.parse(body));
    else if (topic === `${base}/status`) w.statuses.push(StatusPayload.parse(body));
    else if (typeof body.seq === 'number') w.seqs.set(body.seq, (w.seqs.get(body.seq) ?? 0) + 1);
  });
  await client.subscribeAsync([`${base}/events/+`, `${base}/birth`, `${base}/status`], { qos: 1 });
  return w;
}

interface Box {
  device: string;
  base: string;
  outbox: Outbox;
  uplink: Uplink;
  /** Appends `per_s` events per second until stopped. */
  produce(per_s: number): () => void;
  /** Resolves at the next `online` with the time it came. */
  nextOnline(): Promise<number>;
}

async function startBox(urls: string[]): Promise<Box> {
  const device = `dev${++deviceNo}`;
  const dir = mkdtempSync(join(tmpdir(), 'roadside-failover-'));
  later(() => rmSync(dir, { recursive: true, force: true }));
  const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db'), commit_interval_ms: 20 }), silentLogger());
  await outbox.start(new AbortController().signal);
  later(() => outbox.stop());
  const uplink = new Uplink({
    config: MqttSchema.parse({ urls, protocol: 5, keepalive_s: 5, backoff: { initial_ms: 200, max_ms: 2000, jitter: 0.5 } }),
    device: { site: SITE, id: device },
    outbox,
    log: silentLogger(),
    birth: () => ({ agent_version: 'test', model: { name: 'none' }, config_hash: 'test', cameras: [{ id: 'cam1' }], capabilities: [], last_reboot_reason: 'power_on' }),
  });
  later(() => uplink.stop());
  let n = 0;
  return {
    device,
    base: `roadside/${SITE}/${device}`,
    outbox,
    uplink,
    produce(per_s) {
      const timer = setInterval(() => {
        const ev = syntheticEvent(SITE, device, n++);
        outbox.append({ id: ev.id, topic: `events/${ev.camera}`, priority: PRIORITY[ev.type], payload: ev });
      }, 1000 / per_s);
      return () => clearInterval(timer);
    },
    nextOnline: () => new Promise((resolve) => uplink.once('online', () => resolve(Date.now()))),
  };
}

/** Seqs 1..last missing from the union of what the watchers received. */
function missing(last: number, watchers: Watcher[]): number[] {
  const out: number[] = [];
  for (let s = 1; s <= last; s++) if (!watchers.some((w) => w.seqs.has(s))) out.push(s);
  return out;
}

/** The health payload the agent would publish now, composed by the real sampler from the real uplink. */
async function healthOf(box: Box, dir: string): Promise<HealthPayload> {
  const figures = new LiveFigures({ cameras: [] } as unknown as Config);
  figures.attach({ cameras: [], pipelines: [], detector: undefined as never, outbox: box.outbox, uplink: box.uplink });
  const sampler = new HealthSampler({ config: HealthSchema.parse({}), dataDir: dir, figures, log: silentLogger() });
  return HealthPayload.parse(await sampler.refresh());
}

describe('uplink broker failover (mqtt.urls)', () => {
  it('moves to node B within a bounded time when node A dies, back to A when B dies; every seq arrives; birth and health name the node', { timeout: 60_000 }, async () => {
    const a = await Mosquitto.start();
    later(() => a.stop());
    const b = await Mosquitto.start();
    later(() => b.stop());
    const box = await startBox([a.url, b.url]);
    const onA = await watch(a.url, box.base);
    const onB = await watch(b.url, box.base);

    const first = box.nextOnline();
    await box.uplink.start();
    await first;
    expect(box.uplink.broker).toEqual({ url: a.url, index: 0, nodes: 2 });
    const stop = box.produce(100);

    // Node A crashes while the box publishes: the uplink moves to B (backoff 200 ms × jitter, then CONNECT and birth).
    await sleep(1500);
    const seqBeforeKill = box.outbox.nextSeq - 1;
    expect(seqBeforeKill).toBeGreaterThan(50);
    const movedToB = box.nextOnline();
    const killedA = Date.now();
    await a.kill();
    const failoverAB = (await movedToB) - killedA;
    expect(box.uplink.broker).toEqual({ url: b.url, index: 1, nodes: 2 });
    expect(failoverAB).toBeLessThan(3000);

    await sleep(1500);
    // Birth and health on B name node B; the session number grew; the retained status says online.
    const birthB = await waitFor(() => onB.births.at(-1), { message: 'birth on B' });
    expect(birthB.broker).toEqual({ url: b.url, index: 1, nodes: 2 });
    const birthA = onA.births.at(-1)!;
    expect(birthA.broker).toEqual({ url: a.url, index: 0, nodes: 2 });
    expect(birthB.session).toBeGreaterThan(birthA.session);
    expect(onB.statuses.at(-1)).toMatchObject({ state: 'online', session: birthB.session });
    const dir = mkdtempSync(join(tmpdir(), 'roadside-failover-health-'));
    later(() => rmSync(dir, { recursive: true, force: true }));
    const health = await healthOf(box, dir);
    expect(health.uplink).toMatchObject({ connected: true, session: birthB.session, broker: { url: b.url, index: 1, nodes: 2 }, failovers: 1 });

    // A comes back, B crashes: round robin wraps around to A.
    await a.start();
    const onA2 = await watch(a.url, box.base);
    const movedToA = box.nextOnline();
    const killedB = Date.now();
    await b.kill();
    const failoverBA = (await movedToA) - killedB;
    expect(box.uplink.broker.index).toBe(0);
    expect(failoverBA).toBeLessThan(3000);
    await sleep(1000);
    stop();

    // Everything appended is acknowledged, and every seq reached one of the brokers' subscribers.
    await waitFor(() => box.outbox.stats().depth_total === 0 && box.uplink.stats().inflight === 0, { timeout_ms: 10_000, message: 'outbox drained' });
    const last = box.outbox.nextSeq - 1;
    const watchers = [onA, onB, onA2];
    expect(missing(last, watchers)).toEqual([]);
    const copies = watchers.reduce((n, w) => n + [...w.seqs.values()].reduce((x, y) => x + y, 0), 0);
    const stats = box.uplink.stats();
    expect(stats).toMatchObject({ failovers: 2, connects: 3, disconnects: 2 });
    // Rows in flight when a node died were sent again after the failover (replayed); a copy reached the dead
    // node's subscriber before the crash or not, hence duplicates ≥ 0.
    expect(stats.published_replayed).toBeGreaterThan(0);
    console.log(JSON.stringify({ failover_a_to_b_ms: failoverAB, failover_b_to_a_ms: failoverBA, seqs: last, copies, duplicates: copies - last, replayed: stats.published_replayed }));
  });

  it('starts on the next node when the first does not answer, and says which one it is trying', { timeout: 30_000 }, async () => {
    const deadUrl = `mqtt://127.0.0.1:${await freePort()}`;
    const b = await Mosquitto.start();
    later(() => b.stop());
    const box = await startBox([deadUrl, b.url]);
    const onB = await watch(b.url, box.base);
    expect(box.uplink.broker).toEqual({ url: deadUrl, index: 0, nodes: 2 });
    const online = box.nextOnline();
    const t0 = Date.now();
    await box.uplink.start();
    await online;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(box.uplink.stats()).toMatchObject({ connect_attempts: 2, connects: 1, failovers: 0, broker: { url: b.url, index: 1 } });
    expect(box.uplink.stats().last_error?.message).toContain(deadUrl);
    const birth = await waitFor(() => onB.births.at(-1), { message: 'birth on B' });
    expect(birth.broker?.index).toBe(1);
  });
});
