// The receiver on a cluster's nodes (--url A,B): two real mosquittos that know nothing of each other. Connected
// to A it receives A's events; A is killed, the receiver moves to B by itself and receives what boxes publish
// there; B is killed and A back, and it returns to A.
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { FleetReceiver } from '../../../center/receiver.js';
import { silentLogger } from '../../../core/log.js';
import { syntheticEvent } from '../../../testkit/fleet-sim.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { waitFor } from '../../../testkit/processes.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
});

/** A box publishing events of `site/device` on one broker node. */
async function boxOn(broker: Mosquitto): Promise<{ publish: (seq: number) => Promise<unknown>; client: MqttClient }> {
  const client = await connectMqtt(`mqtt://127.0.0.1:${broker.port}`, { clientId: `box-${broker.port}-${Math.random().toString(16).slice(2)}` });
  cleanups.push(() => endMqtt(client));
  return {
    client,
    publish: (seq) =>
      client.publishAsync('roadside/fo/box1/events/cam1', JSON.stringify({ ...syntheticEvent('fo', 'box1', seq), seq, sent_at: new Date().toISOString(), replayed: false }), { qos: 1 }),
  };
}

describe('center receiver on several broker nodes', () => {
  it('fails over to the next node when its broker dies, and back', { timeout: 60_000 }, async () => {
    const [a, b] = [await Mosquitto.start(), await Mosquitto.start()];
    cleanups.push(() => a.stop(), () => b.stop());
    const receiver = new FleetReceiver({ url: [`mqtt://127.0.0.1:${a.port}`, `mqtt://127.0.0.1:${b.port}`], gaps: 'track', tick_ms: 50 }, silentLogger());
    cleanups.push(() => receiver.stop());
    const seqs: number[] = [];
    receiver.on('event', (e) => seqs.push(e.seq));
    await receiver.start();

    await (await boxOn(a)).publish(1);
    await waitFor(() => seqs.includes(1), { message: 'event 1 through node A' });

    await a.kill();
    const onB = await boxOn(b);
    // Published while the receiver is still finding B: a clean session there holds nothing for it, so keep
    // publishing until the receiver is subscribed on B.
    let seq = 2;
    await waitFor(
      async () => {
        await onB.publish(seq++);
        return seqs.some((s) => s >= 2);
      },
      { timeout_ms: 20_000, interval_ms: 250, message: 'an event through node B' },
    );
    expect(seqs[0]).toBe(1);

    await a.start();
    await endMqtt(onB.client);
    await b.kill();
    const onA = await boxOn(a);
    const from = seq;
    await waitFor(
      async () => {
        await onA.publish(seq++);
        return seqs.some((s) => s >= from);
      },
      { timeout_ms: 20_000, interval_ms: 250, message: 'an event through node A again' },
    );
    // Every event it took was booked once, in order of arrival.
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('refuses nodes of different paths or an unknown scheme before connecting', async () => {
    for (const url of [['ws://127.0.0.1:1/mqtt', 'ws://127.0.0.1:2/other'], ['http://127.0.0.1:1']]) {
      const r = new FleetReceiver({ url }, silentLogger());
      await expect(r.start()).rejects.toMatchObject({ code: 'CENTER_BAD_OPTION' });
      await r.stop();
    }
  });
});
