// MQTT uplink: session with Will / birth / status, exponential backoff with jitter, drain of the outbox through
// an in-flight window (ack after PUBACK), retained states, and commands with request/response.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { z } from 'zod';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Outbox, OutboxRow } from '../../buffer/outbox.js';
import type { MqttConfig } from '../../config/schema/index.js';
import { BirthInfo, type BirthPayload } from '../../contract/birth.js';
import {
  PingArgs,
  RebirthArgs,
  RESEND_MAX_ROWS,
  ResendArgs,
  SetLogLevelArgs,
  type CommandResponse,
} from '../../contract/command.js';
import type { StatusPayload } from '../../contract/status.js';
import { CONTRACT_VERSION, baseTopic, isRelativeTopic, topicsFor, type Topics } from '../../contract/topics.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger, LogLevel } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { Backoff, withTimeout } from '../../core/time.js';
import { CommandRegistry } from './commands.js';
import { UplinkError, classifyError } from './errors.js';


export interface UplinkDeps {
  config: MqttConfig;
  device: { site: string; id: string };
  outbox: Outbox;
  /** What the birth message says about the box; called at every connect and on `rebirth`. */
  birth: () => BirthInfo | Promise<BirthInfo>;
  log: Logger;
  /** Applies `set-log-level` to the agent's loggers and returns the previous level. Default: this module's logger. */
  setLogLevel?: (level: LogLevel) => string;
  /** Randomness of the backoff jitter (tests). */
  random?: () => number;
}

export type UplinkState = 'stopped' | 'connecting' | 'online' | 'offline' | 'stopping';

export interface UplinkStats {
  state: UplinkState;
  protocol: 4 | 5;
  session: number;
  connected_since: string | null;
  /** Successful connections since start. */
  connects: number;
  connect_attempts: number;
  /** Connections lost (not counting failed attempts). */
  disconnects: number;
  /** Delay before the next connection attempt, ms, while offline. */
  reconnect_in_ms: number | null;
  /** Unacknowledged outbox messages on the wire / the window allowed (config, capped by the broker's Receive Maximum). */
  inflight: number;
  window: number;
  /** Outbox messages acknowledged by the broker: all, live, replayed (backlog and resend). */
  published: number;
  published_live: number;
  published_replayed: number;
  /** Outbox messages acknowledged per second, averaged since the previous stats() call (at least 1 s). */
  publish_rate_per_s: number;
  /** Negative PUBACKs (MQTT 5) and messages dropped because the broker refuses them for good. */
  publish_refused: number;
  publish_dropped: number;
  /** publishNow() calls dropped because the uplink was offline (retained states are kept and republished). */
  dropped_offline: number;
  retained_states: number;
  resend_queue: number;
  commands: { received: number; ok: number; error: number; ignored: number };
  last_error: { code: string; message: string; reason_code: number | null; at: string } | null;
}

export interface PublishNowOptions {
  retain?: boolean;
}

interface Sending {
  row: OutboxRow;
  replayed: boolean;
  resend: boolean;
}

interface Cork {
  stream: MqttClient['stream'];
  held: number;
}

interface UplinkEvents {
  /** Connected, birth and online published: draining starts. */
  online: [session: number];
  /** Connection lost or attempt failed. */
  offline: [error: UplinkError | undefined];
}

/** The birth schema without its ban on unknown keys (they are stripped instead). */
const BirthInfoLenient = z.object(BirthInfo.shape);

const CONNECT_TIMEOUT_MS = 20_000;
const STOP_DRAIN_MS = 2_000;
const STOP_PUBLISH_MS = 2_000;
const REFUSED_PAUSE_MS = 5_000;
const STABLE_CONNECTION_MS = 30_000;
/** MQTT 5 reason codes that will never succeed on retry: the message is dropped (logged and counted). */
const PERMANENT_REFUSALS = new Set([0x90, 0x95, 0x99]);

/**
 * The uplink module. Sends only from the outbox, acknowledges a row after its PUBACK, and keeps at most
 * `inflight_window` messages unacknowledged. Live rows (appended since the connection came up) go first;
 * the backlog follows oldest-first per priority with `replayed: true`, optionally rate limited.
 */
export class Uplink extends EventEmitter<UplinkEvents> implements Module {
  readonly name = 'uplink';
  readonly commands: CommandRegistry;
  readonly topics: Topics;

  private readonly config: MqttConfig;
  private readonly outbox: Outbox;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly clientId: string;

  private state: UplinkState = 'stopped';
  private client: MqttClient | undefined;
  private gen = 0;
  private session = 0;
  private tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  private ready = false;
  private liveFrom = 0;
  private window: number;
  private readonly readQueue: Sending[] = [];
  private readonly inflight = new Map<number, Sending>();
  private inflightKey = 0;
  private resendQueue: OutboxRow[] = [];
  private readonly retained = new Map<string, string>();
  private tokens = 0;
  private tokensAt = 0;
  private pausedUntil = 0;
  private pumpTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAt: number | null = null;
  private unsubscribeCommit: (() => void) | undefined;
  private startedAt = 0;
  private connectedSince: number | null = null;
  private genError: UplinkError | undefined;
  private lastError: UplinkStats['last_error'] = null;
  private sentAtMs = 0;
  /** Publishes held in the socket buffer (see send()). */
  private cork: Cork | undefined;
  private rate = { at: 0, published: 0, value: 0 };
  private sentAtIso = '';
  private readonly counters = {
    connects: 0,
    connect_attempts: 0,
    disconnects: 0,
    published: 0,
    published_live: 0,
    published_replayed: 0,
    publish_refused: 0,
    publish_dropped: 0,
    dropped_offline: 0,
    cmd_received: 0,
    cmd_ok: 0,
    cmd_error: 0,
    cmd_ignored: 0,
  };

  constructor(private readonly deps: UplinkDeps) {
    super();
    this.config = deps.config;
    this.outbox = deps.outbox;
    this.log = deps.log;
    this.topics = topicsFor(baseTopic(deps.config.topic_prefix, deps.device.site, deps.device.id));
    this.clientId = deps.config.client_id ?? `roadside-${deps.device.site}-${deps.device.id}`;
    this.backoff = new Backoff(deps.config.backoff, deps.random);
    this.window = deps.config.inflight_window;
    this.commands = new CommandRegistry(deps.log);
    this.registerBuiltins();
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  start(_signal?: AbortSignal): Promise<void> {
    if (this.state !== 'stopped') return Promise.resolve();
    try {
      this.tls = this.readTlsFiles();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (!this.outbox.isOpen) return Promise.reject(new AgentError('OUTBOX_NOT_OPEN', 'the uplink needs a started outbox'));
    this.startedAt = Date.now();
    this.state = 'connecting';
    this.unsubscribeCommit = this.outbox.onCommit(() => this.pump());
    this.connect();
    return Promise.resolve();
  }

  /** Clean shutdown: lets in-flight messages be acknowledged, publishes `stopped`, disconnects (no Will). */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasReady = this.ready;
    this.state = 'stopping';
    this.clearTimers();
    this.unsubscribeCommit?.();
    this.unsubscribeCommit = undefined;
    const client = this.client;
    if (client && wasReady) {
      this.ready = false; // no new messages; the in-flight ones may still be acknowledged
      await this.waitInflightEmpty(STOP_DRAIN_MS);
      try {
        await withTimeout(this.publishJson(client, this.topics.status, this.statusPayload('stopped'), { retain: true }), STOP_PUBLISH_MS, 'publishing the stopped status');
      } catch (err) {
        this.log.warn({ err }, 'could not publish the stopped status');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          client.end(true);
          resolve();
        }, STOP_PUBLISH_MS);
        client.end(false, {}, () => {
          clearTimeout(t);
          resolve();
        });
      });
    } else if (client) {
      client.end(true);
    }
    this.gen++;
    this.teardown();
    this.client = undefined;
    this.state = 'stopped';
    this.log.info({ session: this.session }, 'uplink stopped');
  }

  /** True when connected and birth published (messages flow). */
  get online(): boolean {
    return this.ready;
  }

  get currentSession(): number {
    return this.session;
  }

  // ---------------------------------------------------------------------------------------------
  // Non-outbox messages

  /**
   * Publishes a message that does not go through the outbox (camera status, command results), QoS 1.
   * `topic` is relative to the device base (e.g. `cameras/cam1/status`). Dropped when offline, except
   * retained ones: the latest per topic is kept and republished after each birth. Returns true if sent now.
   */
  publishNow(topic: string, payload: object, opts: PublishNowOptions = {}): boolean {
    if (!isRelativeTopic(topic)) throw new AgentError('INVALID_TOPIC', `invalid relative topic "${topic}"`);
    const text = JSON.stringify(payload);
    if (opts.retain) this.retained.set(topic, text);
    const client = this.client;
    if (!this.ready || !client) {
      if (!opts.retain) this.counters.dropped_offline++;
      return false;
    }
    client.publish(`${this.topics.base}/${topic}`, text, { qos: 1, retain: opts.retain ?? false }, (err) => {
      if (err) this.log.debug({ err, topic }, 'publishNow not acknowledged');
    });
    return true;
  }

  /** Publishes birth, online status and the retained states again (the `rebirth` command). */
  async rebirth(): Promise<number> {
    const client = this.client;
    if (!client || !this.ready) throw new UplinkError('CONNECTION_LOST', 'not connected');
    return (await this.announce(client)).size;
  }

  // ---------------------------------------------------------------------------------------------
  // Stats

  stats(): UplinkStats {
    const c = this.counters;
    const now = Date.now();
    if (this.rate.at === 0) this.rate = { at: now, published: c.published, value: 0 };
    else if (now - this.rate.at >= 1000) {
      this.rate = { at: now, published: c.published, value: Math.round(((c.published - this.rate.published) * 1000) / (now - this.rate.at)) };
    }
    return {
      state: this.state,
      protocol: this.config.protocol,
      session: this.session,
      connected_since: this.connectedSince === null ? null : new Date(this.connectedSince).toISOString(),
      connects: c.connects,
      connect_attempts: c.connect_attempts,
      disconnects: c.disconnects,
      reconnect_in_ms: this.reconnectAt === null ? null : Math.max(0, this.reconnectAt - Date.now()),
      inflight: this.inflight.size,
      window: this.window,
      published: c.published,
      published_live: c.published_live,
      published_replayed: c.published_replayed,
      publish_rate_per_s: this.rate.value,
      publish_refused: c.publish_refused,
      publish_dropped: c.publish_dropped,
      dropped_offline: c.dropped_offline,
      retained_states: this.retained.size,
      resend_queue: this.resendQueue.length,
      commands: { received: c.cmd_received, ok: c.cmd_ok, error: c.cmd_error, ignored: c.cmd_ignored },
      last_error: this.lastError,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Connection

  private readTlsFiles(): Pick<IClientOptions, 'ca' | 'cert' | 'key'> {
    const t = this.config.tls;
    if (!t) return {};
    const read = (what: string, f: string | undefined): Buffer | undefined => {
      if (!f) return undefined;
      try {
        return readFileSync(f);
      } catch (err) {
        throw new UplinkError('TLS_FILES', `cannot read mqtt.tls.${what} (${f}): ${errorMessage(err)}`, undefined, { cause: err });
      }
    };
    return { ca: read('ca', t.ca), cert: read('cert', t.cert), key: read('key', t.key) };
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    this.reconnectAt = null;
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const gen = ++this.gen;
    this.genError = undefined;
    this.session = this.outbox.nextSession();
    this.counters.connect_attempts++;
    const will: StatusPayload = { state: 'offline', session: this.session, ts: new Date().toISOString() };
    const v5 = this.config.protocol === 5;
    const opts: IClientOptions = {
      protocolVersion: this.config.protocol,
      clientId: this.clientId,
      username: this.config.username,
      password: this.config.password,
      clean: true,
      keepalive: this.config.keepalive_s,
      reconnectPeriod: 0, // our own backoff with jitter (mqtt.js only has a fixed period)
      connectTimeout: CONNECT_TIMEOUT_MS,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: this.topics.status, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
      ...this.tls,
      servername: this.config.tls?.servername,
      rejectUnauthorized: true, // always verify the broker certificate
      ...(v5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
    };
    this.log.debug({ url: this.config.url, session: this.session, protocol: this.config.protocol }, 'connecting');
    const client = mqtt.connect(this.config.url, opts);
    this.client = client;
    client.on('connect', (connack) => {
      // mqtt.js leaves Nagle on: small publishes would wait for TCP acks of the previous ones.
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      void this.onConnect(gen, client, connack.properties?.receiveMaximum);
    });
    client.on('message', (topic, payload, packet) => this.onMessage(gen, topic, payload, packet));
    client.on('error', (err) => this.onError(gen, err));
    client.on('close', () => this.onClose(gen));
  }

  private async onConnect(gen: number, client: MqttClient, receiveMaximum: number | undefined): Promise<void> {
    if (gen !== this.gen) return;
    this.counters.connects++;
    this.connectedSince = Date.now();
    this.liveFrom = this.outbox.nextSeq;
    this.window = Math.max(1, Math.min(this.config.inflight_window, receiveMaximum ?? Infinity));
    try {
      const v5 = this.config.protocol === 5;
      await new Promise<void>((resolve, reject) => {
        client.subscribe(this.topics.commandFilter, { qos: 1, ...(v5 ? { nl: true } : {}) }, (err, granted) => {
          if (err) reject(err);
          else if (granted?.some((g) => g.qos >= 128)) reject(new UplinkError('MQTT_NOT_AUTHORIZED', `subscription to ${this.topics.commandFilter} refused`, granted[0]?.qos));
          else resolve();
        });
      });
      if (gen !== this.gen) return;
      const announced = await this.announce(client);
      // Retained states set while the birth was on its way.
      for (const [topic, text] of this.retained) {
        if (announced.get(topic) !== text) await this.publishRaw(client, `${this.topics.base}/${topic}`, text, { qos: 1, retain: true });
      }
    } catch (err) {
      if (gen !== this.gen) return;
      this.onError(gen, err);
      client.end(true); // close → reconnect with backoff
      return;
    }
    if (gen !== this.gen) return;
    this.state = 'online';
    this.ready = true;
    this.tokens = this.bucketSize();
    this.tokensAt = Date.now();
    this.log.info(
      { url: this.config.url, session: this.session, window: this.window, live_from_seq: this.liveFrom, backlog: this.outbox.stats().depth_total },
      'uplink online',
    );
    this.emit('online', this.session);
    this.pump();
  }

  /** Birth, then online status, then the retained states (in that order, each acknowledged). Returns the states sent. */
  private async announce(client: MqttClient): Promise<Map<string, string>> {
    let info: z.output<typeof BirthInfo>;
    try {
      const raw = await this.deps.birth();
      const strict = BirthInfo.safeParse(raw);
      if (strict.success) info = strict.data;
      else {
        // Publish what the contract knows; unknown keys are left out (and logged), other problems fall through.
        info = BirthInfoLenient.parse(raw);
        this.log.warn({ issues: strict.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'birth() returned keys outside the contract: left out');
      }
    } catch (err) {
      this.log.error({ err }, 'birth() failed or returned an invalid description; publishing a minimal birth');
      info = BirthInfo.parse({ agent_version: 'unknown', model: { name: 'unknown' }, config_hash: 'unknown', cameras: [], capabilities: [], last_reboot_reason: 'unknown' });
    }
    const birth: BirthPayload = {
      ...info,
      contract_version: CONTRACT_VERSION,
      session: this.session,
      ts: new Date().toISOString(),
      commands: this.commands.names(),
    };
    await this.publishJson(client, this.topics.birth, birth, { retain: true });
    await this.publishJson(client, this.topics.status, this.statusPayload('online'), { retain: true });
    const states = new Map(this.retained);
    await Promise.all([...states].map(([topic, text]) => this.publishRaw(client, `${this.topics.base}/${topic}`, text, { qos: 1, retain: true })));
    return states;
  }

  private onError(gen: number, err: unknown): void {
    if (gen !== this.gen) return;
    const e = classifyError(err, { url: this.config.url, protocol: this.config.protocol });
    this.genError = e;
    this.recordError(e);
    this.log.error({ code: e.code, reason_code: e.reasonCode, err: e.cause ?? e, session: this.session }, e.message);
  }

  private onClose(gen: number): void {
    if (gen !== this.gen) return;
    const wasConnected = this.connectedSince !== null;
    // The backoff starts again from initial_ms only after a connection that held: a broker that accepts and
    // then drops us at once (duplicate client id, ACL) must not get a reconnect every initial_ms.
    if (this.connectedSince !== null && Date.now() - this.connectedSince >= STABLE_CONNECTION_MS) this.backoff.reset();
    this.teardown();
    this.client?.end(true);
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'offline';
    if (wasConnected) {
      this.counters.disconnects++;
      if (!this.genError) this.recordError(new UplinkError('CONNECTION_LOST', `connection to ${this.config.url} lost`));
    } else if (!this.genError) {
      this.recordError(new UplinkError('NETWORK', `connection to ${this.config.url} closed before CONNACK`));
    }
    const delay = this.backoff.next();
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.log.warn({ session: this.session, reconnect_in_ms: delay, attempt: this.backoff.attempts, last_error: this.lastError?.code }, wasConnected ? 'uplink offline' : 'connection attempt failed');
    this.emit('offline', this.genError);
  }

  /** Forgets the connection's in-flight state and returns every leased row to the outbox. */
  private teardown(): void {
    this.ready = false;
    this.cork = undefined;
    this.connectedSince = null;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    const resends: OutboxRow[] = [];
    const seqs: number[] = [];
    for (const s of [...this.inflight.values(), ...this.readQueue]) {
      if (s.resend) resends.push(s.row);
      else seqs.push(s.row.seq);
    }
    this.inflight.clear();
    this.readQueue.length = 0;
    this.resendQueue = [...resends, ...this.resendQueue];
    if (this.outbox.isOpen) this.outbox.release(seqs);
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.reconnectTimer = undefined;
    this.pumpTimer = undefined;
    this.reconnectAt = null;
  }

  private recordError(e: UplinkError): void {
    this.lastError = { code: e.code, message: e.message, reason_code: e.reasonCode ?? null, at: new Date().toISOString() };
  }

  // ---------------------------------------------------------------------------------------------
  // Drain

  private bucketSize(): number {
    const rate = this.config.drain_rate_per_s;
    return rate > 0 ? Math.max(1, rate / 10) : Infinity;
  }

  /** Backlog messages allowed now by drain_rate_per_s (token bucket, 100 ms burst). */
  private backlogBudget(): number {
    const rate = this.config.drain_rate_per_s;
    if (rate <= 0) return Infinity;
    const now = Date.now();
    this.tokens = Math.min(this.bucketSize(), this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    return Math.floor(this.tokens);
  }

  private pump(): void {
    const client = this.client;
    if (!this.ready || !client || !this.outbox.isOpen) return;
    if (Date.now() < this.pausedUntil) return;
    const gen = this.gen;
    let limited = false;
    while (this.inflight.size < this.window) {
      let next = this.readQueue.shift();
      if (!next) {
        limited = this.refill() || limited;
        next = this.readQueue.shift();
        if (!next) break;
      }
      this.send(client, gen, next);
    }
    if (limited && !this.pumpTimer && this.inflight.size < this.window) {
      this.pumpTimer = setTimeout(
        () => {
          this.pumpTimer = undefined;
          this.pump();
        },
        Math.max(5, Math.ceil(1000 / this.config.drain_rate_per_s)),
      );
    }
  }

  /** Leases the next rows into the read queue. Returns true when the drain rate held back the backlog. */
  private refill(): boolean {
    const want = Math.max(this.window, 128);
    for (const row of this.outbox.lease(want, { liveFrom: this.liveFrom, maxBacklog: 0 })) {
      this.readQueue.push({ row, replayed: false, resend: false });
    }
    let room = want - this.readQueue.length;
    if (room <= 0) return false;
    let budget = this.backlogBudget();
    // Resend requests are backlog too: they go before the stored backlog, under the same rate.
    while (room > 0 && budget > 0 && this.resendQueue.length > 0) {
      this.readQueue.push({ row: this.resendQueue.shift() as OutboxRow, replayed: true, resend: true });
      room--;
      budget--;
      this.tokens--;
    }
    const n = Math.min(room, budget);
    if (n > 0) {
      const rows = this.outbox.lease(n, { liveFrom: this.liveFrom, maxBacklog: n });
      for (const row of rows) this.readQueue.push({ row, replayed: row.seq < this.liveFrom, resend: false });
      this.tokens -= rows.length;
      budget -= rows.length;
    }
    return Number.isFinite(budget) && budget <= 0;
  }

  private send(client: MqttClient, gen: number, s: Sending): void {
    // Write coalescing: mqtt.js handles each PUBACK of a TCP read in its own tick, and each publish it triggers
    // would be one write syscall. Publishes are held (cork) until the end of this turn of the event loop or
    // until a quarter of the window is held, whichever comes first: far fewer syscalls, and the window keeps
    // flowing instead of moving in lock-step.
    const stream = client.stream;
    let cork = this.cork;
    if (cork?.stream !== stream) {
      if (typeof stream.cork !== 'function') return this.publishRow(client, gen, s);
      stream.cork();
      const c = { stream, held: 0 };
      cork = this.cork = c;
      setImmediate(() => this.uncork(c));
    }
    cork.held++;
    this.publishRow(client, gen, s);
    if (cork.held >= Math.max(1, this.window >> 2)) this.uncork(cork);
  }

  private publishRow(client: MqttClient, gen: number, s: Sending): void {
    const key = ++this.inflightKey;
    this.inflight.set(key, s);
    const payload = splice(s.row.payload, s.row.seq, this.sentAt(), s.replayed);
    client.publish(`${this.topics.base}/${s.row.topic}`, payload, { qos: 1 }, (err) => this.onPuback(gen, key, s, err));
  }

  private uncork(c: Cork): void {
    if (this.cork !== c) return;
    this.cork = undefined;
    c.stream.uncork();
  }

  private onPuback(gen: number, key: number, s: Sending, err: Error | undefined): void {
    if (gen !== this.gen || !this.outbox.isOpen) return; // connection gone: teardown() already returned the row
    this.inflight.delete(key);
    if (err) {
      const reason = (err as { code?: unknown }).code;
      if (typeof reason !== 'number') return; // connection closed: onClose() handles it
      this.counters.publish_refused++;
      const e = new UplinkError('PUBLISH_REFUSED', `broker refused message seq ${s.row.seq} on ${s.row.topic} (reason ${reason}: ${err.message})`, reason, { cause: err });
      this.recordError(e);
      if (PERMANENT_REFUSALS.has(reason)) {
        // Retrying would fail forever and block the queue: drop it, loudly.
        this.counters.publish_dropped++;
        this.log.error({ seq: s.row.seq, id: s.row.id, topic: s.row.topic, reason_code: reason, bytes: s.row.bytes }, `${e.message}; message dropped`);
        if (!s.resend) this.outbox.ack(s.row.seq);
      } else {
        this.log.warn({ seq: s.row.seq, reason_code: reason, pause_ms: REFUSED_PAUSE_MS }, `${e.message}; retrying later`);
        if (s.resend) this.resendQueue.unshift(s.row);
        else this.outbox.release([s.row.seq]);
        this.pauseDrain(REFUSED_PAUSE_MS);
        return;
      }
    } else {
      this.outbox.ack(s.row.seq);
      this.counters.published++;
      if (s.replayed) this.counters.published_replayed++;
      else this.counters.published_live++;
    }
    this.pump();
  }

  private pauseDrain(ms: number): void {
    this.pausedUntil = Date.now() + ms;
    // Rows already read ahead go back to the outbox so that order is kept after the pause.
    const seqs = this.readQueue.filter((s) => !s.resend).map((s) => s.row.seq);
    this.resendQueue = [...this.readQueue.filter((s) => s.resend).map((s) => s.row), ...this.resendQueue];
    this.readQueue.length = 0;
    this.outbox.release(seqs);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, ms);
  }

  private async waitInflightEmpty(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  private sentAt(): string {
    const now = Date.now();
    if (now !== this.sentAtMs) {
      this.sentAtMs = now;
      this.sentAtIso = new Date(now).toISOString();
    }
    return this.sentAtIso;
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  private onMessage(gen: number, topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (gen !== this.gen) return;
    const prefix = `${this.topics.base}/cmd/`;
    const name = topic.startsWith(prefix) ? topic.slice(prefix.length) : '';
    if (name === '' || name.includes('/')) {
      this.counters.cmd_ignored++;
      this.log.debug({ topic }, 'message on an unexpected topic ignored');
      return;
    }
    if (packet.retain) {
      // A retained command would run again at every connect: refuse to act on it.
      this.counters.cmd_ignored++;
      this.log.warn({ topic }, 'retained command ignored (commands must not be published with retain)');
      return;
    }
    this.counters.cmd_received++;
    void this.handleCommand(name, payload, packet);
  }

  private async handleCommand(name: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const t0 = performance.now();
    const props = this.config.protocol === 5 ? packet.properties : undefined;
    const responseTopic = props?.responseTopic && isPublishTopic(props.responseTopic) ? props.responseTopic : undefined;
    const correlationData = props?.correlationData;
    let response: CommandResponse;
    try {
      response = await this.commands.execute(name, payload);
    } catch (err) {
      response = { status: 'error', error: { code: 'HANDLER_FAILED', message: errorMessage(err) } };
    }
    if (response.status === 'ok') this.counters.cmd_ok++;
    else this.counters.cmd_error++;
    const level = response.status === 'ok' ? 'info' : 'warn';
    this.log[level](
      {
        command: name.slice(0, 64),
        id: response.id,
        status: response.status,
        code: response.status === 'error' ? response.error.code : undefined,
        ms: Math.round(performance.now() - t0),
      },
      'command',
    );
    const client = this.client;
    if (!client?.connected) return; // results are not kept while offline
    const dest = responseTopic ?? this.topics.commandResult(name);
    const opts: IClientPublishOptions = { qos: 1, retain: false };
    if (this.config.protocol === 5 && correlationData) opts.properties = { correlationData };
    this.publishRaw(client, dest, JSON.stringify(response), opts).catch((err: unknown) => this.log.debug({ err, dest }, 'command response not acknowledged'));
  }

  private registerBuiltins(): void {
    this.commands.register('ping', PingArgs, () => ({
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      session: this.session,
      seq: this.outbox.nextSeq - 1,
      ts: new Date().toISOString(),
    }));
    this.commands.register('rebirth', RebirthArgs, async () => ({ session: this.session, retained: await this.rebirth() }));
    this.commands.register('resend', ResendArgs, ({ from, to }) => {
      if (this.resendQueue.length >= RESEND_MAX_ROWS) throw new AgentError('BUSY', `a resend of ${this.resendQueue.length} rows is still queued; retry later`);
      const rows = this.outbox.rangeForResend(from, to, RESEND_MAX_ROWS);
      this.resendQueue.push(...rows);
      setImmediate(() => this.pump());
      return { queued: rows.length, missing: to - from + 1 - rows.length };
    });
    this.commands.register('set-log-level', SetLogLevelArgs, ({ level }) => {
      let previous: string;
      if (this.deps.setLogLevel) previous = this.deps.setLogLevel(level);
      else {
        previous = this.log.level;
        this.log.level = level;
      }
      return { level, previous };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Publishing helpers

  private statusPayload(state: StatusPayload['state']): StatusPayload {
    return { state, session: this.session, ts: new Date().toISOString() };
  }

  private publishJson(client: MqttClient, topic: string, payload: object, opts: { retain: boolean }): Promise<void> {
    return this.publishRaw(client, topic, JSON.stringify(payload), { qos: 1, retain: opts.retain });
  }

  private publishRaw(client: MqttClient, topic: string, payload: string, opts: IClientPublishOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }
}

/** Adds seq, sent_at and replayed to a stored JSON object text (ours come last, so they win over any same key). */
export function splice(payload: string, seq: number, sentAt: string, replayed: boolean): string {
  const tail = `"seq":${seq},"sent_at":"${sentAt}","replayed":${replayed}}`;
  return payload.length <= 2 ? `{${tail}` : `${payload.slice(0, -1)},${tail}`;
}

function isPublishTopic(t: string): boolean {
  return t.length > 0 && t.length < 65_536 && !t.includes('+') && !t.includes('#') && !t.includes('\u0000');
}

