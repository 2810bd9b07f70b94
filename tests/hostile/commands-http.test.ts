// Hostile input, commands and HTTP: a table of malformed and malicious requests against the command path (the
// uplink's registry behind a real mosquitto) and the status server (127.0.0.1). Every case asserts the exact error
// code or HTTP status, that a normal request is answered right after it (nothing crashed or hung), and that it
// finished in bounded time; at the end nothing was written outside the temp data dir and no prototype was polluted.
// Longer than 450 lines because most of it is the two case tables (one line per case), kept together on purpose.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSignal } from '../../agent/commands/signal.js';
import { registerSnapshot } from '../../agent/commands/snapshot.js';
import { HealthSampler } from '../../agent/health/sampler.js';
import type { HealthSources } from '../../agent/health/sources.js';
import { StatusServer } from '../../agent/status/server.js';
import { Uplink } from '../../agent/uplink/uplink.js';
import { Outbox } from '../../buffer/outbox.js';
import { AnalyticsSchema } from '../../config/schema/analytics.js';
import { CameraSchema, HealthSchema, StatusSchema } from '../../config/schema/index.js';
import { MqttSchema } from '../../config/schema/mqtt.js';
import { OutboxSchema } from '../../config/schema/outbox.js';
import { COMMAND_MAX_BYTES, CommandResponse } from '../../contract/command.js';
import { centerReplyTopic } from '../../contract/topics.js';
import { silentLogger } from '../../core/log.js';
import { DEMO_CLIP, REPO_ROOT } from '../../testkit/clips.js';
import { Mosquitto } from '../../testkit/mosquitto.js';
import { freePort } from '../../testkit/ports.js';
import { waitFor } from '../../testkit/processes.js';
import { StaticFigures } from '../../testkit/static-figures.js';

/** Put in every path-like hostile value: a file with this in its name must never appear anywhere we look. */
const MARKER = 'hostile-marker';
const CASE_BOUND_MS = 2000;
const DEVICE = 'hostile-box';
const BASE = `roadside/site1/${DEVICE}`;
const CENTER_REPLY = centerReplyTopic('roadside', 'hostile-center');
const TOKEN = 'hostile-test-token-0123456789';
const HEADERS_TIMEOUT_MS = 500;

const dataDir = mkdtempSync(join(tmpdir(), 'roadside-hostile-'));
const passwdBefore = statSync('/etc/passwd');
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function markedFiles(dir: string, recursive = false): string[] {
  try {
    return readdirSync(dir, { recursive }).map(String).filter((n) => n.includes(MARKER));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

interface CommandCase {
  what: string;
  name: string;
  payload: string | Buffer;
  /** The error code, or 'ok'. */
  code: string;
  /** MQTT 5 Response Topic (default: the center's reply topic). */
  responseTopic?: string;
  check?: (res: CommandResponse) => void;
}

const obj = (v: unknown) => JSON.stringify(v);
const deepArrays = (depth: number) => `{"id":"deep","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
const deepObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const COMMAND_CASES: CommandCase[] = [
  // Not JSON
  { what: 'truncated JSON', name: 'ping', payload: '{"id": 1,', code: 'BAD_JSON' },
  { what: 'invalid UTF-8 bytes', name: 'ping', payload: Buffer.from([0xc3, 0x28, 0xff, 0xfe]), code: 'BAD_JSON' },
  { what: 'a NaN literal', name: 'resend', payload: '{"from": NaN, "to": 2}', code: 'BAD_JSON' },
  { what: 'an Infinity literal', name: 'resend', payload: '{"from": 1, "to": Infinity}', code: 'BAD_JSON' },
  { what: 'a trailing comma', name: 'ping', payload: '{"id": 1,}', code: 'BAD_JSON' },
  { what: 'single quotes', name: 'ping', payload: "{'id': 1}", code: 'BAD_JSON' },
  { what: 'two JSON documents', name: 'ping', payload: '{"id": 1} {"id": 2}', code: 'BAD_JSON' },
  { what: 'a JavaScript expression', name: 'ping', payload: '{"id": (function(){return 1})()}', code: 'BAD_JSON' },
  // JSON, but not a request
  { what: 'an array', name: 'ping', payload: '[1, 2, 3]', code: 'BAD_REQUEST' },
  { what: 'a string', name: 'ping', payload: '"ping"', code: 'BAD_REQUEST' },
  { what: 'null', name: 'ping', payload: 'null', code: 'BAD_REQUEST' },
  { what: 'true', name: 'ping', payload: 'true', code: 'BAD_REQUEST' },
  { what: 'an id that is an object', name: 'ping', payload: '{"id": {"$gt": ""}}', code: 'BAD_REQUEST' },
  { what: 'a fractional id', name: 'ping', payload: '{"id": 1.5}', code: 'BAD_REQUEST' },
  { what: 'an id of 129 characters', name: 'ping', payload: obj({ id: 'i'.repeat(129) }), code: 'BAD_REQUEST' },
  { what: 'an id of 1e400 (Infinity once parsed)', name: 'ping', payload: '{"id": 1e400}', code: 'BAD_REQUEST' },
  // Prototype pollution and deep nesting
  { what: '__proto__ as an argument', name: 'ping', payload: '{"id": "p1", "__proto__": {"polluted": true}}', code: 'INVALID_ARGS' },
  { what: 'constructor.prototype as an argument', name: 'ping', payload: '{"constructor": {"prototype": {"polluted": true}}}', code: 'INVALID_ARGS' },
  { what: '__proto__ smuggling a log level', name: 'set-log-level', payload: '{"level": "info", "__proto__": {"level": "trace"}}', code: 'INVALID_ARGS' },
  { what: 'arrays nested 30 000 deep', name: 'ping', payload: deepArrays(30_000), code: 'INVALID_ARGS' },
  { what: 'objects nested 10 000 deep', name: 'ping', payload: deepObjects(10_000), code: 'INVALID_ARGS' },
  // Numbers
  { what: 'resend from 1e308', name: 'resend', payload: '{"from": 1e308, "to": 1e308}', code: 'INVALID_ARGS' },
  { what: 'resend beyond 2^53', name: 'resend', payload: '{"from": 9007199254740993, "to": 9007199254740993}', code: 'INVALID_ARGS' },
  { what: 'resend from a negative seq', name: 'resend', payload: '{"from": -5, "to": 2}', code: 'INVALID_ARGS' },
  { what: 'resend from 0', name: 'resend', payload: '{"from": 0, "to": 2}', code: 'INVALID_ARGS' },
  { what: 'resend with to < from', name: 'resend', payload: '{"from": 10, "to": 2}', code: 'INVALID_ARGS' },
  { what: 'resend of more than 10 000 seqs', name: 'resend', payload: '{"from": 1, "to": 10001}', code: 'INVALID_ARGS' },
  { what: 'resend with numeric strings', name: 'resend', payload: '{"from": "1", "to": "2"}', code: 'INVALID_ARGS' },
  { what: 'resend with "NaN" strings', name: 'resend', payload: '{"from": "NaN", "to": "Infinity"}', code: 'INVALID_ARGS' },
  { what: 'resend with fractional seqs', name: 'resend', payload: '{"from": 1.5, "to": 2.5}', code: 'INVALID_ARGS' },
  {
    what: 'resend of seqs never assigned',
    name: 'resend',
    payload: '{"from": 1000000000, "to": 1000000010}',
    code: 'ok',
    check: (r) => expect(r).toMatchObject({ data: { queued: 0, missing: 11 } }),
  },
  { what: 'resend without arguments', name: 'resend', payload: '', code: 'INVALID_ARGS' },
  // Arguments of the other commands
  { what: 'an upper-case log level', name: 'set-log-level', payload: '{"level": "TRACE"}', code: 'INVALID_ARGS' },
  { what: 'a look-alike log level (dotless i)', name: 'set-log-level', payload: '{"level": "\u0131nfo"}', code: 'INVALID_ARGS' },
  { what: 'snapshot of an unknown camera', name: 'snapshot', payload: '{"camera": "cam9"}', code: 'UNKNOWN_CAMERA' },
  { what: 'snapshot of a path as camera id', name: 'snapshot', payload: obj({ camera: `../../${MARKER}` }), code: 'INVALID_ARGS' },
  { what: 'snapshot with quality 1000', name: 'snapshot', payload: '{"camera": "cam1", "quality": 1000}', code: 'INVALID_ARGS' },
  { what: 'signal of an unknown id', name: 'signal', payload: '{"signal": "nope", "state": "red"}', code: 'UNKNOWN_SIGNAL' },
  { what: 'signal id with a path', name: 'signal', payload: obj({ signal: `../${MARKER}`, state: 'red' }), code: 'UNKNOWN_SIGNAL' },
  { what: 'signal id of 10 000 characters', name: 'signal', payload: obj({ signal: 's'.repeat(10_000), state: 'red' }), code: 'INVALID_ARGS' },
  { what: 'signal state "purple"', name: 'signal', payload: '{"signal": "sig-main", "state": "purple"}', code: 'INVALID_ARGS' },
  { what: 'signal at "yesterday"', name: 'signal', payload: '{"signal": "sig-main", "state": "red", "at": "yesterday"}', code: 'INVALID_ARGS' },
  // Command names
  { what: 'an unknown command', name: 'format-disk', payload: '{}', code: 'UNKNOWN_COMMAND' },
  { what: 'an upper-case command name', name: 'PING', payload: '{}', code: 'UNKNOWN_COMMAND' },
  { what: 'a unicode command name', name: 'p\u00efng', payload: '{}', code: 'UNKNOWN_COMMAND' },
  { what: 'an emoji command name', name: '\u{1F525}', payload: '{}', code: 'UNKNOWN_COMMAND' },
  {
    what: 'a command name of 5000 characters',
    name: 'x'.repeat(5000),
    payload: '{}',
    code: 'UNKNOWN_COMMAND',
    check: (r) => expect(r.status === 'error' && r.error.message.length).toBeLessThan(300),
  },
  { what: 'the command name __proto__', name: '__proto__', payload: '{}', code: 'UNKNOWN_COMMAND' },
  { what: 'the command name constructor', name: 'constructor', payload: '{}', code: 'UNKNOWN_COMMAND' },
  { what: 'the command name hasOwnProperty', name: 'hasOwnProperty', payload: '{}', code: 'UNKNOWN_COMMAND' },
  // Size and response topics
  { what: 'a payload one byte over the limit', name: 'ping', payload: Buffer.alloc(COMMAND_MAX_BYTES + 1, 0x20), code: 'PAYLOAD_TOO_LARGE' },
  { what: 'a 1 MB payload', name: 'ping', payload: `{"pad": "${'x'.repeat(1024 * 1024)}"}`, code: 'PAYLOAD_TOO_LARGE' },
  { what: 'a response topic on the status topic', name: 'set-log-level', payload: '{"level": "trace"}', responseTopic: `${BASE}/status`, code: 'RESPONSE_TOPIC_REFUSED' },
  { what: "a response topic in another device's tree", name: 'ping', payload: '{}', responseTopic: 'roadside/site1/other-box/reply', code: 'RESPONSE_TOPIC_REFUSED' },
  { what: 'a response topic of 2000 characters', name: 'ping', payload: '{}', responseTopic: `roadside/_center/c/reply/${'r'.repeat(2000)}`, code: 'RESPONSE_TOPIC_REFUSED' },
  { what: 'a response topic with an empty level', name: 'ping', payload: '{}', responseTopic: 'roadside/_center//reply', code: 'RESPONSE_TOPIC_REFUSED' },
];

/** Names no MQTT topic level can carry (wildcards, separators, NUL, empty): straight to the uplink's registry. */
const REGISTRY_NAME_CASES: [string, string][] = [
  ['the single-level wildcard', '+'],
  ['the multi-level wildcard', '#'],
  ['a name with a topic separator', 'ping/extra'],
  ['the empty name', ''],
  ['a name with a NUL byte', 'ping\u0000'],
  ['a name of 100 000 characters', 'n'.repeat(100_000)],
];

describe('hostile commands (uplink registry behind a real mosquitto)', () => {
  let broker: Mosquitto;
  let outbox: Outbox;
  let uplink: Uplink;
  let center: MqttClient;
  const log = silentLogger();
  const responses = new Map<string, { topic: string; body: CommandResponse }>();
  const signals: unknown[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
    outbox = new Outbox(OutboxSchema.parse({ path: join(dataDir, 'outbox.db'), commit_interval_ms: 10 }), silentLogger());
    await outbox.start(new AbortController().signal);
    uplink = new Uplink({
      config: MqttSchema.parse({ url: broker.url, protocol: 5, backoff: { initial_ms: 100 } }),
      device: { site: 'site1', id: DEVICE },
      outbox,
      log,
      birth: () => ({ agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [], capabilities: [], last_reboot_reason: 'test' }),
    });
    const cam1 = CameraSchema.parse({ id: 'cam1', url: DEMO_CLIP, frame: { width: 768, height: 576 } });
    registerSnapshot(uplink.commands, [cam1]);
    registerSignal(uplink.commands, { analytics: AnalyticsSchema.parse({ signals: [{ id: 'sig-main' }] }), cameras: [cam1] }, [{ setSignal: (...a: unknown[]) => void signals.push(a) }]);
    const online = new Promise<void>((resolve) => uplink.once('online', () => resolve()));
    await uplink.start(new AbortController().signal);
    await online;
    center = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    center.on('message', (topic, payload, packet) => {
      const corr = packet.properties?.correlationData?.toString();
      if (corr) responses.set(corr, { topic, body: JSON.parse(payload.toString()) as CommandResponse });
    });
    await center.subscribeAsync([`${CENTER_REPLY}/#`, `${BASE}/cmd/+/result`], { qos: 1 });
  });

  afterAll(async () => {
    await center?.endAsync(true);
    await uplink?.stop();
    await outbox?.stop();
    await broker?.stop();
  });

  let n = 0;
  async function ask(name: string, payload: string | Buffer, responseTopic = CENTER_REPLY, opts: IClientPublishOptions = {}): Promise<{ topic: string; body: CommandResponse }> {
    const corr = `c-${++n}`;
    await center.publishAsync(`${BASE}/cmd/${name}`, payload, { qos: 1, ...opts, properties: { responseTopic, correlationData: Buffer.from(corr) } });
    return waitFor(() => responses.get(corr), { timeout_ms: CASE_BOUND_MS, interval_ms: 2, message: `response to ${name.slice(0, 40)}` });
  }

  /** A normal request right after: the command path is still up. */
  async function pingStillAnswers(): Promise<void> {
    const res = await ask('ping', '{"id": "after"}');
    expect(res.body).toMatchObject({ status: 'ok', id: 'after' });
  }

  for (const c of COMMAND_CASES) {
    it(`${c.what} → ${c.code}`, async () => {
      const t0 = performance.now();
      const res = await ask(c.name, c.payload, c.responseTopic ?? CENTER_REPLY);
      const body = CommandResponse.parse(res.body);
      if (c.code === 'ok') expect(body.status).toBe('ok');
      else expect(body.status === 'error' ? body.error.code : 'ok').toBe(c.code);
      // A refused Response Topic is never used: the refusal goes to the command's own result topic.
      if (c.code === 'RESPONSE_TOPIC_REFUSED') expect(res.topic).toBe(`${BASE}/cmd/${c.name}/result`);
      else expect(res.topic).toBe(CENTER_REPLY);
      c.check?.(body);
      await pingStillAnswers();
      expect(performance.now() - t0).toBeLessThan(CASE_BOUND_MS);
      expect(uplink.online).toBe(true);
    });
  }

  for (const [what, name] of REGISTRY_NAME_CASES) {
    it(`registry: ${what} → UNKNOWN_COMMAND`, async () => {
      const t0 = performance.now();
      const res = await uplink.commands.execute(name, Buffer.from('{"id": "r"}'));
      expect(res).toMatchObject({ status: 'error', id: 'r', error: { code: 'UNKNOWN_COMMAND' } });
      expect(res.status === 'error' && res.error.message.length).toBeLessThan(300);
      await pingStillAnswers();
      expect(performance.now() - t0).toBeLessThan(CASE_BOUND_MS);
    });
  }

  it('a retained request is never executed nor answered', async () => {
    const t0 = performance.now();
    const before = uplink.stats().commands;
    await center.publishAsync(`${BASE}/cmd/set-log-level`, '{"id": "retained", "level": "trace"}', {
      qos: 1,
      retain: true,
      properties: { responseTopic: CENTER_REPLY, correlationData: Buffer.from('retained') },
    });
    // Clear it from the broker: the empty retained copy reaches the agent too, and is refused as well.
    await center.publishAsync(`${BASE}/cmd/set-log-level`, '', { qos: 1, retain: true });
    await pingStillAnswers(); // delivered in order: the retained request was seen before this ping
    await sleep(50);
    expect(responses.has('retained')).toBe(false);
    expect(log.level).not.toBe('trace');
    expect(uplink.stats().commands.retained_refused - before.retained_refused).toBe(2);
    expect(performance.now() - t0).toBeLessThan(CASE_BOUND_MS);
  });

  it('afterwards: no signal was recorded, no prototype polluted, nothing written outside the data dir', () => {
    expect(signals).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(readdirSync(dataDir).filter((f) => !/^outbox\.db(-wal|-shm)?$/.test(f))).toEqual([]);
    for (const dir of [dataDir, tmpdir(), REPO_ROOT, process.cwd(), '/', '/etc']) expect(markedFiles(dir, dir === dataDir), dir).toEqual([]);
    expect(statSync('/etc/passwd').mtimeMs).toBe(passwdBefore.mtimeMs);
  });
});

// ---------------------------------------------------------------------------------------------
// Status server

interface RawAnswer {
  status: number | null;
  text: string;
  ms: number;
}

/** Writes `data` on a fresh connection; resolves with the status line's code once the response is complete (or null). */
function raw(port: number, data: string | Buffer, waitMs = CASE_BOUND_MS): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = buf.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text, ms: performance.now() - t0 });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (!len || buf.length - (end + 4) >= Number(len[1])) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(data);
  });
}

type Target = 'token' | 'open';
interface HttpCase {
  what: string;
  target: Target;
  /** The raw request; `host` is the server's own `127.0.0.1:port`. */
  request: (host: string) => string | Buffer;
  status: number;
}

const get = (path: string, headers: string[] = []) => (host: string) => [`GET ${path} HTTP/1.1`, `Host: ${host}`, ...headers, 'Connection: close', '', ''].join('\r\n');
const bare = (lines: string[]) => () => [...lines, '', ''].join('\r\n');
const method = (m: string, path: string, extra: string[] = []) => (host: string) => [`${m} ${path} HTTP/1.1`, `Host: ${host}`, ...extra, 'Connection: close', '', ''].join('\r\n');
const ws = (path: string, headers: (host: string) => string[]) => (host: string) =>
  [`GET ${path} HTTP/1.1`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...headers(host), '', ''].join('\r\n');
const b64 = (s: string) => Buffer.from(s).toString('base64');

const HTTP_CASES: HttpCase[] = [
  // Token
  { what: 'no token', target: 'token', request: get('/api/status'), status: 401 },
  { what: 'a wrong token', target: 'token', request: get('/api/status', ['Authorization: Bearer not-the-token-at-all-000']), status: 401 },
  { what: 'the token with one character more', target: 'token', request: get('/metrics', [`Authorization: Bearer ${TOKEN}x`]), status: 401 },
  { what: 'the token with trailing words', target: 'token', request: get('/api/status', [`Authorization: Bearer ${TOKEN} extra`]), status: 401 },
  { what: 'basic auth carrying the token', target: 'token', request: get('/api/status', [`Authorization: Basic ${b64(`admin:${TOKEN}`)}`]), status: 401 },
  { what: 'the token in the query of a data endpoint', target: 'token', request: get(`/api/status?token=${TOKEN}`), status: 401 },
  { what: 'the token in the query of /healthz', target: 'token', request: get(`/healthz?token=${TOKEN}`), status: 401 },
  { what: 'a non-ASCII token', target: 'token', request: get('/api/status', ['Authorization: Bearer t\u00f6ken-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9']), status: 401 },
  { what: 'HEAD without the token', target: 'token', request: method('HEAD', '/api/status'), status: 401 },
  { what: 'a camera frame without the token', target: 'token', request: get('/api/cameras/cam1/frame.jpg'), status: 401 },
  { what: 'a token of 100 KB', target: 'token', request: get('/api/status', [`Authorization: Bearer ${'t'.repeat(100_000)}`]), status: 431 },
  { what: 'websocket without the token', target: 'token', request: ws('/api/cameras/cam1/live', (h) => [`Host: ${h}`, `Origin: http://${h}`]), status: 401 },
  { what: 'websocket with a wrong query token', target: 'token', request: ws('/api/cameras/cam1/live?token=wrong', (h) => [`Host: ${h}`, `Origin: http://${h}`]), status: 401 },
  // DNS rebinding and cross-site websockets (no token: loopback names only)
  { what: 'a foreign Host (DNS rebinding)', target: 'open', request: () => get('/api/status')('evil.example'), status: 403 },
  { what: 'a foreign Host with our port', target: 'open', request: (h) => get('/api/status')(`evil.example:${h.split(':')[1]}`), status: 403 },
  { what: 'a Host that starts with localhost', target: 'open', request: () => get('/api/status')('localhost.evil.example'), status: 403 },
  { what: 'a Host that starts with 127.0.0.1', target: 'open', request: () => get('/healthz')('127.0.0.1.nip.io'), status: 403 },
  { what: 'two Host headers, the foreign one first', target: 'open', request: (h) => bare(['GET /api/status HTTP/1.1', 'Host: evil.example', `Host: ${h}`, 'Connection: close'])(), status: 403 },
  { what: 'HTTP/1.0 without Host', target: 'open', request: bare(['GET /api/status HTTP/1.0']), status: 403 },
  { what: 'HTTP/1.1 without Host', target: 'open', request: bare(['GET /api/status HTTP/1.1', 'Connection: close']), status: 400 },
  { what: 'websocket from a cross-site Origin', target: 'open', request: ws('/api/cameras/cam1/live', (h) => [`Host: ${h}`, 'Origin: http://evil.example']), status: 403 },
  { what: 'websocket with Origin null', target: 'open', request: ws('/api/cameras/cam1/live', (h) => [`Host: ${h}`, 'Origin: null']), status: 403 },
  { what: 'websocket from another port of loopback', target: 'open', request: ws('/api/cameras/cam1/live', (h) => [`Host: ${h}`, 'Origin: http://127.0.0.1:1']), status: 403 },
  { what: 'websocket with a foreign Host', target: 'open', request: ws('/api/cameras/cam1/live', () => ['Host: evil.example', 'Origin: http://evil.example']), status: 403 },
  { what: 'websocket to an unknown camera', target: 'open', request: ws('/api/cameras/cam9/live', (h) => [`Host: ${h}`, `Origin: http://${h}`]), status: 404 },
  // Path traversal
  { what: '/static/../../etc/passwd', target: 'open', request: get('/static/../../etc/passwd'), status: 404 },
  { what: 'encoded slashes ..%2f', target: 'open', request: get('/static/..%2f..%2f..%2fetc%2fpasswd'), status: 404 },
  { what: 'encoded dots %2e%2e', target: 'open', request: get('/static/%2e%2e/%2e%2e/etc/passwd'), status: 404 },
  { what: 'backslashes', target: 'open', request: get('/static/..\\..\\..\\etc\\passwd'), status: 404 },
  { what: 'double encoding %252e', target: 'open', request: get('/static/%252e%252e%252f%252e%252e%252fetc%252fpasswd'), status: 404 },
  { what: 'an encoded NUL before an extension', target: 'open', request: get('/static/index.html%00.png'), status: 404 },
  { what: 'overlong UTF-8 dots', target: 'open', request: get('/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd'), status: 404 },
  { what: 'a protocol-relative path //etc/passwd', target: 'open', request: get('//etc/passwd'), status: 404 },
  { what: 'traversal in a camera id', target: 'open', request: get('/api/cameras/..%2f..%2fetc/frame.jpg'), status: 404 },
  { what: 'a dot file', target: 'open', request: get('/static/.env'), status: 404 },
  { what: `a marked file above the page (${MARKER})`, target: 'open', request: get(`/static/../../${MARKER}.html`), status: 404 },
  { what: 'a raw NUL byte in the path', target: 'open', request: (h) => Buffer.concat([Buffer.from('GET /static/a'), Buffer.from([0]), Buffer.from(`.js HTTP/1.1\r\nHost: ${h}\r\n\r\n`)]), status: 400 },
  // Size
  { what: 'a URL of 20 KB', target: 'open', request: get(`/${'a'.repeat(20_000)}`), status: 431 },
  { what: 'a header of 20 KB', target: 'open', request: get('/healthz', [`X-Pad: ${'a'.repeat(20_000)}`]), status: 431 },
  { what: '3000 small headers', target: 'open', request: get('/healthz', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`)), status: 431 },
  // Methods and framing
  { what: 'an unknown method', target: 'open', request: method('FOO', '/'), status: 400 },
  { what: 'PROPFIND', target: 'open', request: method('PROPFIND', '/'), status: 405 },
  { what: 'DELETE on data', target: 'open', request: method('DELETE', '/api/status'), status: 405 },
  { what: 'POST with a body', target: 'open', request: method('POST', '/api/status', ['Content-Type: application/json', 'Content-Length: 2']), status: 405 },
  { what: 'TRACE', target: 'open', request: method('TRACE', '/'), status: 405 },
  { what: 'OPTIONS *', target: 'open', request: method('OPTIONS', '*'), status: 405 },
  { what: 'CONNECT (a proxy request)', target: 'open', request: method('CONNECT', '127.0.0.1:22'), status: 405 },
  { what: 'Transfer-Encoding with Content-Length (smuggling)', target: 'open', request: method('GET', '/', ['Transfer-Encoding: chunked', 'Content-Length: 5']), status: 400 },
  { what: 'a garbage request line', target: 'open', request: bare(['HELLO']), status: 400 },
];

describe('hostile HTTP (status server on 127.0.0.1)', () => {
  const servers = new Map<Target, { server: StatusServer; port: number; auth: string[] }>();
  const sources = (): HealthSources => ({
    cpuLoad: () => Promise.resolve({ total_pct: 10, per_core_pct: [10] }),
    temperature: () => Promise.resolve(null),
    memory: () => Promise.resolve({ total_mb: 4000, used_mb: 1000, available_mb: 3000, swap_used_mb: 0 }),
    uptime: () => Promise.resolve(100),
    disk: (path) => Promise.resolve({ path, total_mb: 29_000, free_mb: 18_000 }),
    network: () => Promise.resolve(null),
    clock: () => Promise.resolve({ synced: true, offset_ms: 0, source: 'chronyc' }),
    soc: () => Promise.resolve(null),
  });

  beforeAll(async () => {
    const figures = new StaticFigures();
    const health = new HealthSampler({ config: HealthSchema.parse({}), dataDir, figures, log: silentLogger(), sources: sources() });
    await health.refresh({ slow: true });
    const cameras = [CameraSchema.parse({ id: 'cam1', url: DEMO_CLIP, frame: { width: 768, height: 576 } })];
    for (const [target, token] of [['token', TOKEN], ['open', undefined]] as const) {
      const port = await freePort();
      const server = new StatusServer({
        config: StatusSchema.parse({ port, ...(token ? { token } : {}) }),
        cameras,
        device: { id: DEVICE, site: 'site1' },
        health,
        figures,
        log: silentLogger(),
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
      });
      await server.start(new AbortController().signal);
      servers.set(target, { server, port, auth: token ? [`Authorization: Bearer ${token}`] : [] });
    }
  });

  afterAll(async () => {
    await Promise.all([...servers.values()].map((s) => s.server.stop()));
  });

  /** A normal request right after: the server still answers. */
  async function stillServes(target: Target): Promise<void> {
    const { port, auth } = servers.get(target)!;
    const res = await raw(port, get('/healthz', auth)(`127.0.0.1:${port}`));
    expect(res.status).toBe(200);
  }

  for (const c of HTTP_CASES) {
    it(`${c.what} → ${c.status}`, async () => {
      const { port } = servers.get(c.target)!;
      const res = await raw(port, c.request(`127.0.0.1:${port}`));
      expect(res.status).toBe(c.status);
      expect(res.text).not.toMatch(/root:x?:0:0/);
      expect(res.ms).toBeLessThan(CASE_BOUND_MS);
      await stillServes(c.target);
    });
  }

  it(`a slowloris request (headers never finished) gets 408 after ${HEADERS_TIMEOUT_MS} ms, and others are served meanwhile`, async () => {
    const { port } = servers.get('open')!;
    const slow = raw(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: 1\r\n`, HEADERS_TIMEOUT_MS * 2 + 2000);
    await stillServes('open');
    const res = await slow;
    expect(res.status).toBe(408);
    expect(res.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(HEADERS_TIMEOUT_MS * 2 + 1500);
    await stillServes('open');
  });

  it('the right token and a loopback Host are served (the cases above fail for their stated reason only)', async () => {
    const t = servers.get('token')!;
    expect((await raw(t.port, get('/api/status', [`Authorization: bearer ${TOKEN}`])(`evil.example`))).status).toBe(200);
    const o = servers.get('open')!;
    for (const host of [`localhost:${o.port}`, `LOCALHOST:${o.port}`, `[::1]:${o.port}`, `127.0.0.2:${o.port}`]) {
      expect((await raw(o.port, get('/api/status')(host))).status, host).toBe(200);
    }
  });

  it('afterwards: nothing written outside the data dir', () => {
    for (const dir of [dataDir, tmpdir(), REPO_ROOT, process.cwd(), '/', '/etc']) expect(markedFiles(dir, dir === dataDir), dir).toEqual([]);
    expect(statSync('/etc/passwd').mtimeMs).toBe(passwdBefore.mtimeMs);
  });
});
