// The demo's embedded broker (aedes, MQTT 3.1.1) with the uplink in front of it.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { EmbeddedBroker } from '../../../agent/uplink/embedded-broker.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { freePort } from '../../../testkit/ports.js';
import { waitFor } from '../../../testkit/processes.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
});

describe('embedded broker', () => {
  it('does nothing unless mqtt.embedded_broker is true', async () => {
    const port = await freePort();
    const broker = new EmbeddedBroker(MqttSchema.parse({ url: `mqtt://127.0.0.1:${port}`, protocol: 4 }), silentLogger());
    await broker.start(new AbortController().signal);
    expect(broker.port).toBeUndefined();
    await broker.stop();
  });

  it('serves MQTT 3.1.1 on loopback: the uplink publishes birth, status and events through it', async () => {
    const port = await freePort();
    const config = MqttSchema.parse({ url: `mqtt://127.0.0.1:${port}`, protocol: 4, embedded_broker: true });
    const broker = new EmbeddedBroker(config, silentLogger());
    await broker.start(new AbortController().signal);
    cleanups.push(() => broker.stop());
    expect(broker.port).toBe(port);
    // loopback only: the port is not reachable through another local address of this host
    await expect(
      new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.2', port }, () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);

    const dir = mkdtempSync(join(tmpdir(), 'roadside-embedded-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db'), commit_interval_ms: 10 }), silentLogger());
    await outbox.start(new AbortController().signal);
    cleanups.push(() => outbox.stop());
    const uplink = new Uplink({
      config,
      device: { site: 'demo', id: 'box1' },
      outbox,
      log: silentLogger(),
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [{ id: 'cam1' }], capabilities: [], last_reboot_reason: 'demo' }),
    });
    cleanups.push(() => uplink.stop());
    const sub = await mqtt.connectAsync(config.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    const got: { topic: string; body: Record<string, unknown> }[] = [];
    sub.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
    await sub.subscribeAsync('roadside/demo/box1/#', { qos: 1 });
    await uplink.start(new AbortController().signal);
    await waitFor(() => uplink.online, { message: 'online' });
    for (let i = 0; i < 5; i++) outbox.append({ id: `ev-${i}`, topic: 'events/cam1', priority: 'event', payload: { n: i } });
    await waitFor(() => got.filter((m) => m.topic.endsWith('/events/cam1')).length === 5, { message: 'events' });
    expect(got.map((m) => m.topic).slice(0, 2)).toEqual(['roadside/demo/box1/birth', 'roadside/demo/box1/status']);
    expect(got.filter((m) => m.topic.endsWith('/events/cam1')).map((m) => m.body.seq)).toEqual([1, 2, 3, 4, 5]);
    await uplink.stop();
    await waitFor(() => got.some((m) => m.body.state === 'stopped'), { message: 'stopped' });
  });
});
