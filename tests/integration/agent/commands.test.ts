// Commands: the registry on its own, then request/response through a real mosquitto (MQTT 5 and 3.1.1),
// with a corpus of malformed requests after which the uplink still answers a ping, the confinement of
// Response Topics to the reply namespace, and retained requests that must never run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BirthPayload } from '../../../contract/birth.js';
import { COMMAND_MAX_BYTES, CommandResponse } from '../../../contract/command.js';
import { COMMANDS, type CommandCatalogue, type CommandResult } from '../../../contract/commands.js';
import { centerReplyTopic, topicsFor } from '../../../contract/topics.js';
import { AgentError } from '../../../core/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../core/log.js';
import { CommandRegistry } from '../../../agent/commands/registry.js';
import { Uplink } from '../../../agent/uplink/uplink.js';
import { Outbox } from '../../../buffer/outbox.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';
import { OutboxSchema } from '../../../config/schema/outbox.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { waitFor } from '../../../testkit/processes.js';

const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

/** A logger whose JSON lines are kept (level and msg of each). */
function recordingLogger(): { log: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) } });
  return { log, lines };
}
const ERROR = 50;
const WARN = 40;

const TEST_COMMANDS = {
  echo: { args: z.strictObject({ text: z.string().max(10), times: z.number().int().min(1).default(1) }), result: z.string(), summary: 'repeats text' },
  boom: { args: z.strictObject({}), result: z.null(), summary: 'throws' },
  refuse: { args: z.strictObject({}), result: z.null(), summary: 'refuses with a code' },
  slow: { args: z.strictObject({}), result: z.null(), summary: 'hangs' },
  liar: { args: z.strictObject({}), result: z.strictObject({ n: z.number() }), summary: 'returns something off its schema' },
  'cmd/x': { args: z.strictObject({}), result: z.null(), summary: 'an invalid name' },
} satisfies CommandCatalogue;

describe('CommandRegistry', () => {
  const { log, lines } = recordingLogger();
  const registry = new CommandRegistry(TEST_COMMANDS, log, 100);
  registry.register('echo', ({ text, times }) => text.repeat(times));
  registry.register('boom', () => {
    throw new Error('kaput');
  });
  registry.register('refuse', () => {
    throw new AgentError('CAMERA_OFFLINE', 'camera cam9 is offline');
  });
  registry.register('slow', () => sleep(1000).then(() => null));
  // @ts-expect-error: a handler must return its command's result type (the compiler refuses this one)
  registry.register('liar', () => ({ n: 'one', secret: 'x' }));

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
    ['a handler whose result is off its schema', 'liar', buf({ id: 'l' }), { status: 'error', id: 'l', error: { code: 'RESULT_INVALID', message: expect.stringMatching(/^the result of "liar" does not match its schema \(n: expected number.*unknown key\(s\) "secret"/) as string } }],
  ];
  for (const [what, name, payload, expected] of cases) {
    it(`answers ${what}`, async () => {
      const res = await registry.execute(name, payload);
      expect(CommandResponse.parse(res)).toEqual(expect.objectContaining(expected));
      if (!('id' in expected)) expect(res).not.toHaveProperty('id');
    });
  }

  it('never sends an off-schema result: the response carries no part of it, and an error is logged', async () => {
    const res = await registry.execute('liar', buf({}));
    expect(res).toMatchObject({ status: 'error', error: { code: 'RESULT_INVALID' } });
    expect(res).not.toHaveProperty('data');
    expect(JSON.stringify(res)).not.toContain('one');
    expect(lines.some((l) => l.level === ERROR && l.msg === 'command result does not match its schema: not sent')).toBe(true);
  });

  it('refuses duplicate and invalid names, and commands outside the catalogue', () => {
    expect(() => registry.register('echo', () => 'again')).toThrow(expect.objectContaining({ code: 'COMMAND_EXISTS' }) as Error);
    expect(() => registry.register('cmd/x', () => null)).toThrow(expect.objectContaining({ code: 'COMMAND_NAME_INVALID' }) as Error);
    // @ts-expect-error: only catalogue commands can be registered
    expect(() => registry.register('format-disk', () => null)).toThrow(expect.objectContaining({ code: 'COMMAND_NOT_IN_CATALOGUE' }) as Error);
  });
});

/** The reply topic of a center, as `roadside-agent center` builds it: a permitted Response Topic. */
const CENTER_REPLY = centerReplyTopic('roadside', 'test-center');

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
    // `x/#` matches `x` too: one subscription per reply tree, so no answer arrives twice.
    await client.subscribeAsync([`${base}/cmd/+/result`, `${CENTER_REPLY}/#`, `${base}/reply/#`], { qos: 1 });
    return { client, got };
  }

  it('MQTT 5: honours the response topic and correlation data; falls back to {base}/cmd/{name}/result', async () => {
    const { uplink } = await agent(5);
    const c = await center(5);
    await c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: 'p1' }), {
      qos: 1,
      properties: { responseTopic: CENTER_REPLY, correlationData: Buffer.from('corr-42') },
    });
    await c.client.publishAsync(`${base}/cmd/ping`, '', { qos: 1 });
    await waitFor(() => c.got.length >= 2, { message: 'two responses' });
    const direct = c.got.find((m) => m.topic === CENTER_REPLY);
    expect(direct).toMatchObject({ correlation: 'corr-42', body: { status: 'ok', id: 'p1' } });
    const data = COMMANDS.ping.result.parse(direct?.body.data);
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

  for (const protocol of [5, 4] as const) {
    it(`MQTT ${protocol === 5 ? '5' : '3.1.1'}: ignores a retained command replayed at subscribe time (it would run again at every connect)`, async () => {
      const c = await center(5);
      await c.client.publishAsync(`${base}/cmd/rebirth`, '{"id": "stale"}', { qos: 1, retain: true });
      cleanups.push(() => c.client.publishAsync(`${base}/cmd/rebirth`, '', { qos: 1, retain: true }));
      const { uplink } = await agent(protocol);
      await sleep(300);
      expect(c.got).toHaveLength(0);
      expect(uplink.stats().commands.ignored).toBe(1);
      expect(uplink.stats().commands).toMatchObject({ retained_refused: 1, received: 0 });
    });
  }

  it('MQTT 5: never runs a retained command published while the agent is connected', async () => {
    const { log, lines } = recordingLogger();
    const { uplink } = await agent(5, log);
    const c = await center(5);
    await c.client.publishAsync(`${base}/cmd/set-log-level`, '{"id": "live-retained", "level": "trace"}', { qos: 1, retain: true });
    cleanups.push(() => c.client.publishAsync(`${base}/cmd/set-log-level`, '', { qos: 1, retain: true }));
    // The broker delivers to the agent in order: once this ping is answered, the retained request was seen.
    await c.client.publishAsync(`${base}/cmd/ping`, '{"id": "after"}', { qos: 1 });
    await waitFor(() => c.got.some((m) => m.body.id === 'after'), { message: 'ping after the retained request' });
    await sleep(100);
    expect(log.level).toBe('info');
    expect(c.got.some((m) => m.body.id === 'live-retained')).toBe(false);
    expect(uplink.stats().commands).toMatchObject({ received: 1, ok: 1, error: 0, ignored: 1, retained_refused: 1 });
    expect(lines.some((l) => l.level === WARN && l.msg.startsWith('retained command not executed'))).toBe(true);
  });

  it('MQTT 3.1.1: the broker clears the retain flag on live delivery (documented): the request runs once, its retained copy never again', async () => {
    const first = await agent(4, recordingLogger().log);
    const c = await center(5);
    await c.client.publishAsync(`${base}/cmd/set-log-level`, '{"id": "v311-retained", "level": "debug"}', { qos: 1, retain: true });
    cleanups.push(() => c.client.publishAsync(`${base}/cmd/set-log-level`, '', { qos: 1, retain: true }));
    await waitFor(() => c.got.some((m) => m.body.id === 'v311-retained'), { message: 'response to the live request' });
    expect(first.uplink.stats().commands).toMatchObject({ ok: 1, retained_refused: 0 });
    await first.uplink.stop();
    await first.outbox.stop();
    const { log } = recordingLogger();
    const second = await agent(4, log);
    await sleep(300);
    expect(second.uplink.stats().commands).toMatchObject({ received: 0, retained_refused: 1 });
    expect(log.level).toBe('info');
    expect(c.got.filter((m) => m.body.id === 'v311-retained')).toHaveLength(1);
  });

  it('MQTT 5: answers only inside the reply namespace; any other Response Topic is refused, the command not run, and nothing published there', async () => {
    const { log, lines } = recordingLogger();
    const { uplink } = await agent(5, log);
    const t = topicsFor(base);
    const other = topicsFor('roadside/site1/someone-else');
    const forbidden = [
      t.status,
      t.birth,
      t.events('cam1'),
      t.health,
      t.cameraStatus('cam1'),
      t.command('reload-config'),
      t.commandResult('ping'),
      other.status,
      other.command('reload-config'),
      other.reply,
      'center/replies/dev1',
      'roadside/_center/c1',
      'roadside/_center/c1/replies',
      'elsewhere/_center/c1/reply',
      'roadside/_center//reply',
    ];
    const watch = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => watch.endAsync(true));
    const seen: { topic: string; retain: boolean; text: string }[] = [];
    watch.on('message', (topic, payload, packet) => seen.push({ topic, retain: packet.retain, text: payload.toString() }));
    await watch.subscribeAsync(['#'], { qos: 1 });
    const c = await center(5);
    for (const [i, responseTopic] of forbidden.entries()) {
      await c.client.publishAsync(`${base}/cmd/set-log-level`, JSON.stringify({ id: `bad-${i}`, level: 'trace' }), {
        qos: 1,
        properties: { responseTopic, correlationData: Buffer.from(`corr-${i}`) },
      });
    }
    await waitFor(() => c.got.filter((m) => String(m.body.id).startsWith('bad-')).length === forbidden.length, { message: 'refusals' });
    for (const [i, responseTopic] of forbidden.entries()) {
      const refusal = c.got.find((m) => m.body.id === `bad-${i}`);
      expect(refusal?.topic, responseTopic).toBe(t.commandResult('set-log-level'));
      expect(refusal?.correlation).toBe(`corr-${i}`);
      expect(CommandResponse.parse(refusal?.body)).toMatchObject({ status: 'error', error: { code: 'RESPONSE_TOPIC_REFUSED' } });
    }
    expect(log.level).toBe('info'); // set-log-level trace never ran
    expect(uplink.stats().commands).toMatchObject({ received: forbidden.length, ok: 0, error: forbidden.length, response_topic_refused: forbidden.length });
    expect(lines.filter((l) => l.level === WARN && l.msg === 'command refused: response topic outside the reply namespace')).toHaveLength(forbidden.length);

    // Permitted: a center's reply topic and the device's own reply tree, with levels below.
    const permitted = [CENTER_REPLY, `${CENTER_REPLY}/ops/7`, t.reply, `${t.reply}/ops/7`];
    for (const [i, responseTopic] of permitted.entries()) {
      await c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: `good-${i}` }), { qos: 1, properties: { responseTopic, correlationData: Buffer.from(`ok-${i}`) } });
    }
    await waitFor(() => c.got.filter((m) => String(m.body.id).startsWith('good-')).length === permitted.length, { message: 'answers' });
    for (const [i, responseTopic] of permitted.entries()) {
      expect(c.got.find((m) => m.body.id === `good-${i}`)).toMatchObject({ topic: responseTopic, correlation: `ok-${i}`, body: { status: 'ok' } });
    }
    await sleep(100);
    // Nothing went out on a forbidden topic except the retained status and birth the watcher got when it subscribed.
    const leaked = seen.filter((m) => forbidden.includes(m.topic) && !(m.retain && (m.topic === t.status || m.topic === t.birth)));
    expect(leaked).toEqual([]);
    expect(seen.filter((m) => m.topic === t.status || m.topic === t.birth).every((m) => m.retain && !m.text.includes('"error"'))).toBe(true);
  });

  it('rebirth, set-log-level, resend and a command registered by another module', async () => {
    const log = createLogger({ level: 'info', destination: { write: () => undefined } });
    const { uplink, outbox } = await agent(5, log);
    uplink.commands.register('snapshot', ({ camera }) => ({ camera, width: 4, height: 3, captured_at: new Date().toISOString(), sha256: 'ab', jpeg_base64: '' }));
    // A handler that breaks its contract at run time (the compiler would refuse it without the cast).
    uplink.commands.register('signal', ({ signal }) => ({ signal, state: 'purple', at: 'yesterday' }) as unknown as CommandResult<'signal'>);
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

    expect(await ask('snapshot', { camera: 'cam1' })).toMatchObject({ status: 'ok', data: { camera: 'cam1', width: 4, height: 3 } });
    expect(await ask('snapshot', { camera: 1 })).toMatchObject({ status: 'error', error: { code: 'INVALID_ARGS' } });
    const invalid = await ask('signal', { signal: 's1', state: 'red' });
    expect(invalid).toMatchObject({ status: 'error', error: { code: 'RESULT_INVALID' } });
    expect(invalid).not.toHaveProperty('data');
    expect(JSON.stringify(invalid)).not.toContain('purple');
    expect(uplink.stats().commands.error).toBe(2);
  });
});
