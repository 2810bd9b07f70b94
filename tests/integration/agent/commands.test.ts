// Commands: the registry on its own, then request/response through a real mosquitto (MQTT 5 and 3.1.1),
// with a corpus of malformed requests after which the uplink still answers a ping.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BirthPayload } from '../../../contract/birth.js';
import { COMMAND_MAX_BYTES, CommandResponse, PingResult } from '../../../contract/command.js';
import { AgentError } from '../../../core/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../core/log.js';
import { CommandRegistry } from '../../../agent/uplink/commands.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { waitFor } from '../../../testkit/processes.js';

const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('CommandRegistry', () => {
  const registry = new CommandRegistry(silentLogger(), 100);
  registry.register('echo', z.strictObject({ text: z.string().max(10), times: z.number().int().min(1).default(1) }), ({ text, times }) => text.repeat(times));
  registry.register('boom', z.strictObject({}), () => {
    throw new Error('kaput');
  });
  registry.register('refuse', z.strictObject({}), () => {
    throw new AgentError('CAMERA_OFFLINE', 'camera cam9 is offline');
  });
  registry.register('slow', z.strictObject({}), () => sleep(1000));

  const cases: [string, string, Buffer, Partial<CommandResponse>][] = [
    ['ok with a string id', 'echo', buf({ id: 'req-1', text: 'ab', times: 2 }), { status: 'ok', data: 'abab', id: 'req-1' }],
    ['ok with a numeric id', 'echo', buf({ id: 7, text: 'x' }), { status: 'ok', data: 'x', id: 7 }],
    ['bad JSON', 'echo', buf('{"text": "x"'), { status: 'error', error: { code: 'BAD_JSON', message: expect.stringMatching(/not valid JSON/) as string } }],
    ['binary garbage', 'echo', Buffer.from([0xff, 0xfe, 0x00, 0x01]), { status: 'error', error: expect.objectContaining({ code: 'BAD_JSON' }) as never }],
    ['an array', 'echo', buf([1, 2]), { status: 'error', error: expect.objectContaining({ code: 'BAD_REQUEST' }) as never }],
    ['a number', 'echo', buf('42'), { status: 'error', error: expect.objectContaining({ code: 'BAD_REQUEST' }) as never }],
    ['null', 'echo', buf('null'), { status: 'error', error: expect.objectContaining({ code: 'BAD_REQUEST' }) as never }],
    ['an id of the wrong type', 'echo', buf({ id: { a: 1 }, text: 'x' }), { status: 'error', error: expect.objectContaining({ code: 'BAD_REQUEST' }) as never }],
    ['wrong argument type', 'echo', buf({ id: 3, text: 5 }), { status: 'error', id: 3, error: { code: 'INVALID_ARGS', message: expect.stringMatching(/^text: expected string/) as string } }],
    ['argument out of range', 'echo', buf({ text: 'x', times: 0 }), { status: 'error', error: expect.objectContaining({ code: 'INVALID_ARGS' }) as never }],
    ['unknown argument', 'echo', buf({ text: 'x', extra: true }), { status: 'error', error: { code: 'INVALID_ARGS', message: expect.stringMatching(/unknown key\(s\) "extra"/) as string } }],
    ['missing argument', 'echo', buf(''), { status: 'error', error: { code: 'INVALID_ARGS', message: expect.stringMatching(/^text:/) as string } }],
    ['unknown command', 'reboot', buf({ id: 'r' }), { status: 'error', id: 'r', error: { code: 'UNKNOWN_COMMAND', message: expect.stringMatching(/unknown command "reboot"; known: boom, echo/) as string } }],
    ['oversized payload', 'echo', Buffer.alloc(COMMAND_MAX_BYTES + 1, 0x20), { status: 'error', error: expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }) as never }],
    ['a handler that throws', 'boom', buf({ id: 1 }), { status: 'error', id: 1, error: { code: 'HANDLER_FAILED', message: 'kaput' } }],
    ['a handler that refuses with a code', 'refuse', buf({}), { status: 'error', error: { code: 'CAMERA_OFFLINE', message: 'camera cam9 is offline' } }],
    ['a handler that hangs', 'slow', buf({}), { status: 'error', error: expect.objectContaining({ code: 'TIMEOUT' }) as never }],
  ];
  for (const [what, name, payload, expected] of cases) {
    it(`answers ${what}`, async () => {
      const res = await registry.execute(name, payload);
      expect(CommandResponse.parse(res)).toEqual(expect.objectContaining(expected));
      if (!('id' in expected)) expect(res).not.toHaveProperty('id');
    });
  }

  it('refuses duplicate and invalid names', () => {
    expect(() => registry.register('echo', z.strictObject({}), () => null)).toThrow(expect.objectContaining({ code: 'COMMAND_EXISTS' }) as Error);
    expect(() => registry.register('cmd/x', z.strictObject({}), () => null)).toThrow(expect.objectContaining({ code: 'COMMAND_NAME_INVALID' }) as Error);
  });
});

describe('commands over MQTT', () => {
  let broker: Mosquitto;
  let dir: string;
  let deviceNo = 0;
  let base = '';
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(() => broker.stop());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'roadside-commands-test-'));
    base = `roadside/site1/cmd-dev${++deviceNo}`;
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  async function agent(protocol: 4 | 5, log: Logger = silentLogger()): Promise<{ outbox: Outbox; uplink: Uplink }> {
    const outbox = new Outbox(OutboxSchema.parse({ path: join(dir, 'outbox.db'), commit_interval_ms: 10 }), silentLogger());
    await outbox.start(new AbortController().signal);
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: broker.url, protocol, backoff: { initial_ms: 100 } }),
      device: { site: 'site1', id: `cmd-dev${deviceNo}` },
      outbox,
      log,
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [], capabilities: [], last_reboot_reason: 'test' }),
    });
    cleanups.push(() => outbox.stop(), () => uplink.stop());
    const online = new Promise<void>((resolve) => uplink.once('online', () => resolve()));
    await uplink.start(new AbortController().signal);
    await online;
    return { outbox, uplink };
  }

  async function center(protocol: 4 | 5): Promise<{ client: MqttClient; got: { topic: string; body: Record<string, unknown>; correlation?: string }[] }> {
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: protocol, reconnectPeriod: 0 });
    cleanups.push(() => client.endAsync(true));
    const got: { topic: string; body: Record<string, unknown>; correlation?: string }[] = [];
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown>, correlation: packet.properties?.correlationData?.toString() });
    });
    await client.subscribeAsync([`${base}/cmd/+/result`, 'center/replies/#'], { qos: 1 });
    return { client, got };
  }

  it('MQTT 5: honours the response topic and correlation data; falls back to {base}/cmd/{name}/result', async () => {
    const { uplink } = await agent(5);
    const c = await center(5);
    await c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: 'p1' }), {
      qos: 1,
      properties: { responseTopic: 'center/replies/dev1', correlationData: Buffer.from('corr-42') },
    });
    await c.client.publishAsync(`${base}/cmd/ping`, '', { qos: 1 });
    await waitFor(() => c.got.length >= 2, { message: 'two responses' });
    const direct = c.got.find((m) => m.topic === 'center/replies/dev1');
    expect(direct).toMatchObject({ correlation: 'corr-42', body: { status: 'ok', id: 'p1' } });
    const data = PingResult.parse(direct?.body.data);
    expect(data.session).toBe(uplink.currentSession);
    const fallback = c.got.find((m) => m.topic === `${base}/cmd/ping/result`);
    expect(fallback?.body).toMatchObject({ status: 'ok' });
    expect(fallback?.body).not.toHaveProperty('id');
  });

  for (const protocol of [5, 4] as const) {
    it(`MQTT ${protocol === 5 ? '5' : '3.1.1'}: malformed commands get error responses, wrong topics are ignored, and ping still works`, async () => {
      const { uplink, outbox } = await agent(protocol);
      const c = await center(protocol);
      const corpus: [string, string | Buffer, string][] = [
        ['ping', '{"id": 1,', 'BAD_JSON'],
        ['ping', Buffer.from([0xc3, 0x28, 0xff]), 'BAD_JSON'],
        ['ping', '[1,2,3]', 'BAD_REQUEST'],
        ['ping', '"ping"', 'BAD_REQUEST'],
        ['ping', '{"id": {"nested": true}}', 'BAD_REQUEST'],
        ['ping', '{"id": 2, "verbose": true}', 'INVALID_ARGS'],
        ['resend', '{"id": 3, "from": "one", "to": 2}', 'INVALID_ARGS'],
        ['resend', '{"id": 4, "from": 10, "to": 2}', 'INVALID_ARGS'],
        ['resend', '{"id": 5, "from": 1, "to": 1000000}', 'INVALID_ARGS'],
        ['set-log-level', '{"id": 6, "level": "loud"}', 'INVALID_ARGS'],
        ['set-log-level', '{"id": 7}', 'INVALID_ARGS'],
        ['format-disk', '{"id": 8}', 'UNKNOWN_COMMAND'],
        ['ping', `{"id": 9, "pad": "${'x'.repeat(COMMAND_MAX_BYTES)}"}`, 'PAYLOAD_TOO_LARGE'],
      ];
      for (const [name, payload] of corpus) await c.client.publishAsync(`${base}/cmd/${name}`, payload, { qos: 1 });
      // Not commands: other levels, another device, retained state topics.
      for (const topic of [`${base}/cmd/ping/extra`, `${base}/cmd`, `${base}/cmdping`, 'roadside/site1/other/cmd/ping', `${base}/status/cmd`]) {
        await c.client.publishAsync(topic, '{"id": "wrong-topic"}', { qos: 1 });
      }
      await waitFor(() => c.got.length >= corpus.length, { message: `${corpus.length} responses` });
      await sleep(200); // nothing more may come
      expect(c.got).toHaveLength(corpus.length);
      for (const [name, , code] of corpus) {
        const res = c.got.filter((m) => m.topic === `${base}/cmd/${name}/result` && (m.body.error as { code?: string } | undefined)?.code === code);
        expect(res.length, `${name} → ${code}`).toBeGreaterThan(0);
        for (const r of res) CommandResponse.parse(r.body);
      }
      expect(c.got.every((m) => m.body.status === 'error')).toBe(true);
      expect(c.got.some((m) => m.body.id === 'wrong-topic')).toBe(false);
      expect(uplink.online).toBe(true);
      expect(uplink.stats().commands).toMatchObject({ received: corpus.length, error: corpus.length, ok: 0 });

      await c.client.publishAsync(`${base}/cmd/ping`, '{"id": "after"}', { qos: 1 });
      await waitFor(() => c.got.some((m) => m.body.id === 'after'), { message: 'ping after the corpus' });
      expect(c.got.find((m) => m.body.id === 'after')?.body).toMatchObject({ status: 'ok', data: { seq: outbox.nextSeq - 1 } });
    });
  }

  it('ignores a retained command (it would run again at every connect)', async () => {
    const c = await center(5);
    await c.client.publishAsync(`${base}/cmd/rebirth`, '{"id": "stale"}', { qos: 1, retain: true });
    cleanups.push(() => c.client.publishAsync(`${base}/cmd/rebirth`, '', { qos: 1, retain: true }));
    const { uplink } = await agent(5);
    await sleep(300);
    expect(c.got).toHaveLength(0);
    expect(uplink.stats().commands.ignored).toBe(1);
  });

  it('rebirth, set-log-level, resend and a command registered by another module', async () => {
    const log = createLogger({ level: 'info', destination: { write: () => undefined } });
    const { uplink, outbox } = await agent(5, log);
    uplink.commands.register('snapshot', z.strictObject({ camera: z.string() }), ({ camera }) => ({ camera, file: `${camera}.jpg` }));
    const c = await center(5);
    await c.client.subscribeAsync([`${base}/birth`, `${base}/events/+`], { qos: 1 });
    await waitFor(() => c.got.some((m) => m.topic === `${base}/birth`), { message: 'retained birth' });

    for (let i = 0; i < 10; i++) outbox.append({ id: `ev-${i}`, topic: 'events/cam1', priority: 'event', payload: { n: i } });
    await waitFor(() => c.got.filter((m) => m.topic.includes('/events/')).length === 10 && outbox.stats().acked === 10, { message: 'events delivered' });

    const ask = async (name: string, body: object) => {
      const id = `${name}-${Math.random()}`;
      await c.client.publishAsync(`${base}/cmd/${name}`, JSON.stringify({ id, ...body }), { qos: 1 });
      return (await waitFor(() => c.got.find((m) => m.body.id === id), { message: name })).body;
    };
    expect(await ask('set-log-level', { level: 'debug' })).toMatchObject({ status: 'ok', data: { level: 'debug', previous: 'info' } });
    expect(log.level).toBe('debug');

    const births = () => c.got.filter((m) => m.topic === `${base}/birth`).length;
    const before = births();
    expect(await ask('rebirth', {})).toMatchObject({ status: 'ok', data: { session: uplink.currentSession, retained: 0 } });
    await waitFor(() => births() > before, { message: 'birth again' });
    BirthPayload.parse(c.got.filter((m) => m.topic === `${base}/birth`).at(-1)?.body);

    expect(await ask('resend', { from: 3, to: 5 })).toMatchObject({ status: 'ok', data: { queued: 3, missing: 0 } });
    expect(await ask('resend', { from: 9, to: 12 })).toMatchObject({ status: 'ok', data: { queued: 2, missing: 2 } });
    await waitFor(() => c.got.filter((m) => m.topic.includes('/events/') && m.body.replayed === true).length === 5, { message: 'resent events' });
    const resent = c.got.filter((m) => m.topic.includes('/events/') && m.body.replayed === true).map((m) => m.body.seq);
    expect(resent).toEqual([3, 4, 5, 9, 10]);

    expect(await ask('snapshot', { camera: 'cam1' })).toMatchObject({ status: 'ok', data: { camera: 'cam1', file: 'cam1.jpg' } });
    expect(await ask('snapshot', { camera: 1 })).toMatchObject({ status: 'error', error: { code: 'INVALID_ARGS' } });
  });
});
