// A full disk must not silence the box: health reports bypass the outbox (published directly, QoS 1) and the
// retained status carries `conditions: ['disk_full']` until space returns. The disk is simulated as in the outbox
// tests (SQLite max_page_count); the center is a real mosquitto subscriber.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HealthMessage } from '../../../contract/health.js';
import { StatusPayload } from '../../../contract/status.js';
import { createLogger, silentLogger } from '../../../core/log.js';
import { HealthPublisher } from '../../../agent/health/publisher.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import type { HealthSources } from '../../../agent/health/sources.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { Outbox } from '../../../buffer/outbox.js';
import { HealthSchema } from '../../../config/schema/health.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { waitFor } from '../../../testkit/processes.js';
import { StaticFigures } from '../../../testkit/static-figures.js';

const BASE = 'roadside/site1/full-box';

const sources = (): HealthSources => ({
  cpuLoad: () => Promise.resolve({ total_pct: 10, per_core_pct: [10, 10] }),
  temperature: () => Promise.resolve(null),
  memory: () => Promise.resolve({ total_mb: 4000, used_mb: 1000, available_mb: 3000, swap_used_mb: 0 }),
  uptime: () => Promise.resolve(100),
  // The partition itself looks fine: only the outbox knows its writes fail.
  disk: (path) => Promise.resolve({ path, total_mb: 29_000, free_mb: 18_000 }),
  network: () => Promise.resolve(null),
  clock: () => Promise.resolve({ synced: true, offset_ms: 0, source: 'chronyc' }),
  soc: () => Promise.resolve(null),
});

interface Received {
  topic: string;
  body: Record<string, unknown>;
  retain: boolean;
  at: number;
}

let broker: Mosquitto;
let dir: string;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
  dir = mkdtempSync(join(tmpdir(), 'roadside-disk-full-'));
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
});
afterAll(async () => {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function center(): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  cleanups.push(() => client.endAsync(true));
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown>, retain: packet.retain, at: Date.now() }));
  await client.subscribeAsync([`${BASE}/status`, `${BASE}/health`], { qos: 1 });
  return { client, got };
}

const reasons = (m: Received) => (m.body.reasons as { code: string; message: string }[]).map((r) => r.code);

describe('disk full', () => {
  it('health reaches the center directly and the retained status says disk_full; both clear when space returns', { timeout: 60_000 }, async () => {
    let now = Date.now();
    // The outbox's clock: moved forward to let the rows that fill the disk expire (their TTL), which frees it.
    const clock = () => now;
    const outbox = new Outbox(
      OutboxSchema.parse({ path: join(dir, 'outbox.db'), commit_interval_ms: 10, pending_max_rows: 100, ttl_s: { statistics: 60 } }),
      silentLogger(),
      { pragmas: ['max_page_count = 40'], now: () => clock() },
    );
    await outbox.start(new AbortController().signal);
    cleanups.push(() => outbox.stop());
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
    // The backlog barely drains (one row, then one per 1000 s): the rows filling the disk stay unsent.
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: broker.url, protocol: 5, drain_rate_per_s: 0.001, backoff: { initial_ms: 100, max_ms: 1000 } }),
      device: { site: 'site1', id: 'full-box' },
      outbox,
      log: silentLogger(),
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [], capabilities: [], last_reboot_reason: 'test' }),
    });
    const health = new HealthSampler({ config: HealthSchema.parse({ interval_s: 1 }), dataDir: dir, figures: new StaticFigures(), log: silentLogger(), sources: sources() });
    const publisher = new HealthPublisher({ health, outbox, uplink, log, checkMs: 100 });
    cleanups.push(() => uplink.stop(), () => publisher.stop(), () => health.stop());
    const signal = new AbortController().signal;
    await uplink.start(signal);
    await publisher.start(signal);
    await health.start(signal);

    // Healthy: health goes through the outbox (it has a seq) and the status carries no condition.
    let c = await center();
    await waitFor(() => c.got.some((m) => m.topic === `${BASE}/health` && typeof m.body.seq === 'number'), { message: 'health through the outbox' });
    const online = StatusPayload.parse(c.got.find((m) => m.topic === `${BASE}/status`)?.body);
    expect(online).toMatchObject({ state: 'online' });
    expect(online.conditions).toBeUndefined();
    expect(publisher.stats()).toMatchObject({ disk_full: false, published_direct: 0 });

    // The link goes down and the outbox fills the disk meanwhile (unsent rows only: acknowledged ones are given up first).
    await c.client.endAsync(true);
    await broker.stop();
    await waitFor(() => !uplink.online, { message: 'uplink offline' });
    for (let i = 0; ; i++) {
      outbox.append({ id: `fill-${i}`, topic: 'events/cam1', priority: 'statistics', payload: { pad: 'x'.repeat(200) } });
      if (!outbox.flush() && outbox.stats().acked_kept === 0) break;
      expect(i).toBeLessThan(10_000);
    }
    expect(outbox.stats()).toMatchObject({ disk_full: true });
    await waitFor(() => publisher.stats().disk_full, { message: 'publisher sees the full disk' });

    // Back online with the disk still full: the center gets the status with disk_full, and health directly.
    await broker.start();
    c = await center();
    await waitFor(() => uplink.online, { timeout_ms: 10_000, message: 'uplink back online' });
    const full = await waitFor(() => c.got.find((m) => m.topic === `${BASE}/status` && m.body.state === 'online'), { message: 'online status after reconnect' });
    expect(StatusPayload.parse(full.body)).toMatchObject({ state: 'online', session: uplink.currentSession, conditions: ['disk_full'] });
    await waitFor(() => c.got.filter((m) => m.topic === `${BASE}/health`).length >= 2, { timeout_ms: 10_000, message: 'health while the disk is full' });
    for (const h of c.got.filter((m) => m.topic === `${BASE}/health`)) {
      const msg = HealthMessage.parse(h.body);
      expect(msg.status).toBe('error');
      expect(reasons(h)).toContain('disk_low');
      expect(msg.replayed).toBe(false);
    }
    expect(outbox.stats().disk_full).toBe(true); // they did not come through the outbox
    expect(publisher.stats().published_direct).toBeGreaterThanOrEqual(2);
    // Whoever connects now sees the condition in the retained status.
    const late = await center();
    await waitFor(() => late.got.some((m) => m.topic === `${BASE}/status`), { message: 'retained status' });
    expect(late.got.find((m) => m.topic === `${BASE}/status`)).toMatchObject({ retain: true, body: { state: 'online', conditions: ['disk_full'] } });
    const directIds = new Set(c.got.filter((m) => m.topic === `${BASE}/health`).map((m) => m.body.id));

    // Space returns (the rows filling the disk expire): the status is published again without the condition.
    const clearedFrom = c.got.length;
    now += 120_000;
    await waitFor(() => !outbox.stats().disk_full, { timeout_ms: 15_000, message: 'outbox writes again' });
    const cleared = await waitFor(() => c.got.slice(clearedFrom).find((m) => m.topic === `${BASE}/status`), { timeout_ms: 5000, message: 'status without disk_full' });
    const clearedStatus = StatusPayload.parse(cleared.body);
    expect(clearedStatus).toMatchObject({ state: 'online', session: uplink.currentSession });
    expect(clearedStatus.conditions).toBeUndefined();
    expect(publisher.stats().disk_full).toBe(false);
    // Health goes through the outbox again, with the disk_low reason gone; a report already sent directly may come
    // again from the outbox, with the same id and seq.
    const after = await waitFor(
      () => c.got.slice(clearedFrom).find((m) => m.topic === `${BASE}/health` && !directIds.has(m.body.id) && !reasons(m).includes('disk_low')),
      { timeout_ms: 10_000, message: 'health through the outbox after the clear' },
    );
    expect(HealthMessage.parse(after.body).seq).toBeGreaterThan(0);
    const direct = c.got.filter((m) => m.topic === `${BASE}/health`);
    for (const m of direct) {
      const twin = direct.find((o) => o !== m && o.body.id === m.body.id);
      if (twin) expect(twin.body.seq).toBe(m.body.seq);
    }
    const late2 = await center();
    await waitFor(() => late2.got.some((m) => m.topic === `${BASE}/status`), { message: 'retained status after the clear' });
    expect(late2.got.find((m) => m.topic === `${BASE}/status`)?.body).not.toHaveProperty('conditions');
    expect(lines.some((l) => l.msg === 'disk full: health reports bypass the outbox; status carries disk_full')).toBe(true);
    expect(lines.some((l) => l.msg === 'disk space is back: health goes through the outbox again; disk_full cleared')).toBe(true);
  });
});
