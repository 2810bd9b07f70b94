// Fleet receiver: the control-center side of the MQTT contract. Subscribes to a whole fleet, validates every
// payload against the contract's zod schemas, tracks each box (availability with session numbers, last health,
// seq gaps and duplicates) and repairs gaps with the agent's `resend` command (MQTT 5 request/response).
//
// Shared subscriptions: events and health may be split across receivers (`$share/{group}/…`); status, birth and
// camera states are retained availability data every receiver needs, so they are never shared. A receiver in a
// share group sees only part of each box's seqs when the broker distributes round-robin (mosquitto does), so gap
// tracking is off by default there; turn it on only when the broker pins each publisher to one member (EMQX
// `hash_clientid`, HiveMQ/VerneMQ equivalents): see docs/scaling.md.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IClientSubscribeOptions, type MqttClient } from 'mqtt';
import type { z } from 'zod';
import { BirthPayload } from '../contract/birth.js';
import { CommandResponse, ResendResult } from '../contract/command.js';
import { WireEventSchema, type WireEvent } from '../contract/event.js';
import { HealthMessage } from '../contract/health.js';
import { CameraStatusPayload, StatusPayload, type AgentState } from '../contract/status.js';
import { DeliveryFields } from '../contract/topics.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import { SeqTracker, type Gap } from './seq-tracker.js';
import type { EventSink } from './sinks.js';

export type GapMode = 'repair' | 'track' | 'off';

export interface FleetReceiverOptions {
  /** Broker URL (mqtt://, mqtts://, ws://, wss://). */
  url: string;
  /** First topic level of the fleet. Default "roadside". */
  prefix?: string;
  /** Join this MQTT 5 shared-subscription group for events and health. */
  share?: string;
  /**
   * Receive events and health of these sites only (static sharding between receivers, which keeps per-device
   * gap repair working with any broker). Status and birth are still received for the whole fleet. Default: all.
   */
  sites?: string[];
  /** MQTT client id. Default: roadside-center-<random>. A fixed id plus session_expiry_s > 0 keeps a persistent session. */
  clientId?: string;
  username?: string;
  password?: string;
  /** PEM files: CA bundle for the broker certificate, client certificate and key (mutual TLS). */
  ca?: string;
  cert?: string;
  key?: string;
  /** MQTT 5 Session Expiry Interval, s: the broker queues QoS 1 messages this long while the receiver is away. Default 0 without clientId, 3600 with. */
  session_expiry_s?: number;
  /** repair: detect and repair seq gaps; track: detect only; off: neither. Default repair, or off with `share`. */
  gaps?: GapMode;
  /** A hole must be this old before it is a gap (out-of-order arrival within the in-flight window is normal), ms. Default 3000. */
  grace_ms?: number;
  /** While a box is draining its backlog (replayed messages keep arriving) holes are left to fill; at most this long, ms. Default 300000. */
  max_defer_ms?: number;
  /** Time to wait for a resend response, ms. Default 10000. */
  request_timeout_ms?: number;
  /** After a resend was accepted, time for the resent messages to arrive before asking again, ms (+1 ms per queued row). Default 10000. */
  confirm_ms?: number;
  /** resend requests per hole before it is reported lost. Default 3. */
  max_tries?: number;
  /** resend requests waiting for a response, fleet-wide (no resend storm after a broker restart). Default 64. */
  max_outstanding?: number;
  /** Holes this close (in seqs) are asked for in one request (the seqs between are sent again too). Default 64. */
  coalesce?: number;
  /** Recent message ids remembered per device for duplicate detection by id (~250 bytes each). Default 256. */
  id_window?: number;
  /** Bookkeeping period (gap repair, rates), ms. Default 250. */
  tick_ms?: number;
  /** MQTT 5 Receive Maximum announced to the broker (QoS 1 messages in flight towards this receiver). Default 1000. */
  receive_maximum?: number;
  /** Where accepted events go. */
  sinks?: EventSink[];
  /** Clock (tests). */
  now?: () => number;
}

export interface DeviceHealthSummary {
  ts: string;
  seq: number;
  status: HealthMessage['status'];
  reasons: string[];
  soc_temp_c: number | null;
  /** Frames per second through the detector, all cameras. */
  process_fps: number;
  /** Outbox depth (messages waiting on the box). */
  backlog: number | null;
  uplink_session: number | null;
}

export interface DeviceState {
  key: string;
  site: string;
  device: string;
  /** unknown: seen only through events/health so far. */
  state: AgentState | 'unknown';
  /** What the state comes from: the status topic, or a birth newer than the retained status (a late Will overwrote it). */
  state_source: 'status' | 'birth' | null;
  session: number | null;
  state_since: string | null;
  last_seen: string | null;
  agent_version: string | null;
  contract_version: number | null;
  commands: string[];
  cameras: Record<string, { state: CameraStatusPayload['state']; reason?: string; ts: string }>;
  health: DeviceHealthSummary | null;
  events: number;
  health_messages: number;
  seq: {
    first: number | null;
    last: number | null;
    received: number;
    /** Copies of a seq already received (at-least-once delivery, resends). */
    duplicates: number;
    /** New seqs carrying an id already received under another seq. */
    duplicate_ids: number;
    /** A seq received twice with different ids (seq reuse on the box, e.g. after a power cut with synchronous=NORMAL). */
    seq_conflicts: number;
    missing: number;
    gaps_open: number;
    /** Holes filled without asking (out-of-order arrival). */
    filled_late: number;
    /** Seqs that arrived after a resend request. */
    repaired: number;
    /** Seqs given up on. */
    lost: number;
    resend_requests: number;
  };
  invalid: { count: number; last_error: string | null; last_topic: string | null; at: string | null };
  /** status/birth messages ignored because their session was older than the one known (late Wills). */
  stale_status: number;
}

export interface FleetTotals {
  connected: boolean;
  devices: number;
  online: number;
  offline: number;
  stopped: number;
  unknown: number;
  messages: number;
  events: number;
  health_messages: number;
  duplicates: number;
  invalid: number;
  missing: number;
  gaps_open: number;
  filled_late: number;
  repaired: number;
  lost: number;
  resend_requests: number;
  resend_outstanding: number;
  stale_status: number;
  /** Messages per second over the last 5 s. */
  msgs_per_s: number;
  /** Highest 1-second message count seen. */
  peak_msgs_per_s: number;
}

export interface GapReport {
  key: string;
  site: string;
  device: string;
  from: number;
  to: number;
  seqs: number;
  state: 'requested' | 'repaired' | 'lost';
  tries: number;
  reason?: string;
}

export interface InvalidReport {
  key: string | null;
  topic: string;
  error: string;
}

export interface ReceivedEventMeta {
  key: string;
  site: string;
  device: string;
  topic: string;
  received_at: number;
}

interface FleetReceiverEvents {
  event: [event: WireEvent, meta: ReceivedEventMeta];
  gap: [report: GapReport];
  invalid: [report: InvalidReport];
  state: [device: DeviceState];
}

interface Device {
  key: string;
  site: string;
  device: string;
  state: AgentState | 'unknown';
  state_source: 'status' | 'birth' | null;
  session: number | null;
  /** Session of the last status accepted and of the last birth (0: none). */
  status_session: number;
  status_state: AgentState | null;
  birth_session: number;
  state_since: number | null;
  last_seen: number | null;
  last_replayed_at: number;
  birth: BirthPayload | null;
  cameras: Map<string, CameraStatusPayload>;
  health: DeviceHealthSummary | null;
  tracker: SeqTracker;
  /** id → seq and seq → id of recent messages (bounded by id_window). */
  idSeq: Map<string, number>;
  seqId: Map<number, string>;
  events: number;
  health_messages: number;
  duplicate_ids: number;
  duplicates_no_tracker: number;
  seq_conflicts: number;
  filled_late: number;
  repaired: number;
  resend_requests: number;
  invalid: DeviceState['invalid'];
  stale_status: number;
}

interface ResendRequest {
  id: string;
  key: string;
  from: number;
  to: number;
  sent_at: number;
  deadline: number;
}

const SHARE_NAME = /^[^/+#]+$/;

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Reads a JSON payload; undefined plus an error text when it is not JSON. */
function parseJson(payload: Buffer): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(payload.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, error: `not JSON: ${errorMessage(err)}` };
  }
}

export class FleetReceiver extends EventEmitter<FleetReceiverEvents> implements Module {
  readonly name = 'center';
  readonly prefix: string;
  readonly clientId: string;
  readonly replyTopic: string;
  readonly gapMode: GapMode;

  private readonly o: Required<Omit<FleetReceiverOptions, 'share' | 'sites' | 'clientId' | 'username' | 'password' | 'ca' | 'cert' | 'key' | 'gaps' | 'sinks'>>;
  private readonly sinks: EventSink[];
  private readonly now: () => number;
  private client: MqttClient | undefined;
  private readonly devicesByKey = new Map<string, Device>();
  private readonly requests = new Map<string, ResendRequest>();
  private timer: NodeJS.Timeout | undefined;
  private requestCounter = 0;
  private readonly requestPrefix = randomBytes(4).toString('hex');
  private connected = false;
  private stopped = true;
  private lastErrorLog = 0;
  // Rates: messages per whole second, last 6 seconds.
  private readonly perSecond: number[] = [];
  private currentSecond = 0;
  private currentCount = 0;
  private peakPerSecond = 0;
  private readonly counters = { messages: 0, invalid_unrouted: 0 };

  constructor(
    private readonly opts: FleetReceiverOptions,
    private readonly log: Logger,
  ) {
    super();
    this.prefix = opts.prefix ?? 'roadside';
    if (!SHARE_NAME.test(this.prefix)) throw new AgentError('CENTER_BAD_OPTION', `invalid topic prefix "${this.prefix}"`);
    if (opts.share !== undefined && !SHARE_NAME.test(opts.share)) throw new AgentError('CENTER_BAD_OPTION', `invalid share group "${opts.share}"`);
    for (const site of opts.sites ?? []) if (!SHARE_NAME.test(site)) throw new AgentError('CENTER_BAD_OPTION', `invalid site "${site}"`);
    this.clientId = opts.clientId ?? `roadside-center-${randomBytes(4).toString('hex')}`;
    this.replyTopic = `${this.prefix}/_center/${this.clientId.replace(/[/+#\s]/g, '_')}/reply`;
    this.gapMode = opts.gaps ?? (opts.share ? 'off' : 'repair');
    this.sinks = opts.sinks ?? [];
    this.now = opts.now ?? Date.now;
    this.o = {
      url: opts.url,
      prefix: this.prefix,
      session_expiry_s: opts.session_expiry_s ?? (opts.clientId ? 3600 : 0),
      grace_ms: opts.grace_ms ?? 3000,
      max_defer_ms: opts.max_defer_ms ?? 300_000,
      request_timeout_ms: opts.request_timeout_ms ?? 10_000,
      confirm_ms: opts.confirm_ms ?? 10_000,
      max_tries: opts.max_tries ?? 3,
      max_outstanding: opts.max_outstanding ?? 64,
      coalesce: opts.coalesce ?? 64,
      id_window: opts.id_window ?? 256,
      tick_ms: opts.tick_ms ?? 250,
      receive_maximum: opts.receive_maximum ?? 1000,
      now: this.now,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /** Connects and subscribes; resolves once subscribed. Rejects on a refused connection (credentials, TLS) or abort. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.client) return Promise.resolve();
    const read = (what: string, f: string | undefined): Buffer | undefined => {
      if (!f) return undefined;
      try {
        return readFileSync(f);
      } catch (err) {
        throw new AgentError('CENTER_TLS_FILES', `cannot read the ${what} file ${f}: ${errorMessage(err)}`, { cause: err });
      }
    };
    let tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'>;
    try {
      tls = { ca: read('CA', this.opts.ca), cert: read('certificate', this.opts.cert), key: read('key', this.opts.key) };
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.stopped = false;
    const opts: IClientOptions = {
      protocolVersion: 5,
      clientId: this.clientId,
      username: this.opts.username,
      password: this.opts.password,
      clean: this.o.session_expiry_s === 0,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false, // subscribe() below runs at every connect without a session
      ...tls,
      rejectUnauthorized: true,
      properties: { sessionExpiryInterval: this.o.session_expiry_s, receiveMaximum: this.o.receive_maximum },
    };
    const client = mqtt.connect(this.o.url, opts);
    this.client = client;
    client.on('message', (topic, payload, packet) => this.ingest(topic, payload, { retain: packet.retain, correlationData: packet.properties?.correlationData }));
    client.on('close', () => {
      if (this.connected && !this.stopped) this.log.warn({ url: this.o.url }, 'center: connection to the broker lost; reconnecting');
      this.connected = false;
    });
    this.timer = setInterval(() => this.tick(), this.o.tick_ms);
    this.timer.unref();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          void this.stop().finally(() => reject(err));
        } else resolve();
      };
      const onAbort = (): void => settle(new AgentError('ABORTED', 'center start aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      client.on('connect', (connack) => {
        this.connected = true;
        this.log.info({ url: this.o.url, client_id: this.clientId, session_present: connack.sessionPresent, share: this.opts.share ?? null }, 'center: connected');
        if (connack.sessionPresent) {
          settle();
          return;
        }
        this.subscribe(client).then(
          () => settle(),
          (err: unknown) => {
            this.log.error({ err }, 'center: subscription failed');
            settle(err instanceof Error ? err : new Error(String(err)));
          },
        );
      });
      client.on('error', (err: Error & { code?: unknown }) => {
        const fatal = typeof err.code === 'number' || (typeof err.code === 'string' && /CERT|TLS|SSL/.test(err.code));
        // Reconnection attempts fail every second while the broker is away: log the first, then every 30 s.
        const now = Date.now();
        if (fatal || now - this.lastErrorLog >= 30_000) {
          this.lastErrorLog = now;
          this.log.error({ err: err.message, code: err.code }, 'center: MQTT error');
        }
        if (fatal && !settled) settle(new AgentError('CENTER_CONNECT_REFUSED', `${this.o.url}: ${err.message}`));
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) {
      await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2000).unref())]);
      if (!client.disconnected) client.end(true);
    }
    this.connected = false;
    for (const s of this.sinks) {
      try {
        await s.close();
      } catch (err) {
        this.log.error({ err, sink: s.name }, 'center: closing a sink failed');
      }
    }
  }

  private async subscribe(client: MqttClient): Promise<void> {
    const p = this.prefix;
    const shared = (f: string): string => (this.opts.share ? `$share/${this.opts.share}/${f}` : f);
    const qos1: IClientSubscribeOptions = { qos: 1 };
    // Retained availability first, so the table knows every box before the first event.
    const filters: Record<string, IClientSubscribeOptions> = {
      [`${p}/+/+/status`]: qos1,
      [`${p}/+/+/birth`]: qos1,
      [`${p}/+/+/cameras/+/status`]: qos1,
    };
    for (const site of this.opts.sites?.length ? this.opts.sites : ['+']) {
      filters[shared(`${p}/${site}/+/events/+`)] = qos1;
      filters[shared(`${p}/${site}/+/health`)] = qos1;
    }
    filters[this.replyTopic] = qos1;
    // Answers of MQTT 3.1.1 boxes (no Response Topic): matched by the request id in the payload.
    filters[`${p}/+/+/cmd/resend/result`] = qos1;
    const granted = await client.subscribeAsync(filters);
    const refused = granted.filter((g) => g.qos >= 128);
    if (refused.length) throw new AgentError('CENTER_SUBSCRIBE_REFUSED', `subscriptions refused: ${refused.map((g) => `${g.topic} (${g.qos})`).join(', ')}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  devices(): DeviceState[] {
    return [...this.devicesByKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((d) => this.view(d));
  }

  device(key: string): DeviceState | undefined {
    const d = this.devicesByKey.get(key);
    return d ? this.view(d) : undefined;
  }

  totals(): FleetTotals {
    const t: FleetTotals = {
      connected: this.connected,
      devices: this.devicesByKey.size,
      online: 0,
      offline: 0,
      stopped: 0,
      unknown: 0,
      messages: this.counters.messages,
      events: 0,
      health_messages: 0,
      duplicates: 0,
      invalid: this.counters.invalid_unrouted,
      missing: 0,
      gaps_open: 0,
      filled_late: 0,
      repaired: 0,
      lost: 0,
      resend_requests: 0,
      resend_outstanding: this.requests.size,
      stale_status: 0,
      msgs_per_s: this.rate(),
      peak_msgs_per_s: this.peakPerSecond,
    };
    for (const d of this.devicesByKey.values()) {
      t[d.state]++;
      t.events += d.events;
      t.health_messages += d.health_messages;
      t.duplicates += d.tracker.duplicates + d.duplicates_no_tracker + d.duplicate_ids;
      t.invalid += d.invalid.count;
      t.missing += d.tracker.missing;
      t.gaps_open += d.tracker.openGaps;
      t.filled_late += d.filled_late;
      t.repaired += d.repaired;
      t.lost += d.tracker.lost;
      t.resend_requests += d.resend_requests;
      t.stale_status += d.stale_status;
    }
    return t;
  }

  private view(d: Device): DeviceState {
    const tr = d.tracker;
    const cameras: DeviceState['cameras'] = {};
    for (const [id, c] of d.cameras) cameras[id] = { state: c.state, ...(c.reason ? { reason: c.reason } : {}), ts: c.ts };
    return {
      key: d.key,
      site: d.site,
      device: d.device,
      state: d.state,
      state_source: d.state_source,
      session: d.session,
      state_since: d.state_since === null ? null : new Date(d.state_since).toISOString(),
      last_seen: d.last_seen === null ? null : new Date(d.last_seen).toISOString(),
      agent_version: d.birth?.agent_version ?? null,
      contract_version: d.birth?.contract_version ?? null,
      commands: d.birth?.commands ?? [],
      cameras,
      health: d.health,
      events: d.events,
      health_messages: d.health_messages,
      seq: {
        first: tr.first || null,
        last: tr.last || null,
        received: tr.received,
        duplicates: tr.duplicates + d.duplicates_no_tracker,
        duplicate_ids: d.duplicate_ids,
        seq_conflicts: d.seq_conflicts,
        missing: tr.missing,
        gaps_open: tr.openGaps,
        filled_late: d.filled_late,
        repaired: d.repaired,
        lost: tr.lost,
        resend_requests: d.resend_requests,
      },
      invalid: { ...d.invalid },
      stale_status: d.stale_status,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Messages

  private getDevice(site: string, device: string): Device {
    const key = `${site}/${device}`;
    let d = this.devicesByKey.get(key);
    if (!d) {
      d = {
        key,
        site,
        device,
        state: 'unknown',
        state_source: null,
        session: null,
        status_session: 0,
        status_state: null,
        birth_session: 0,
        state_since: null,
        last_seen: null,
        last_replayed_at: 0,
        birth: null,
        cameras: new Map(),
        health: null,
        tracker: new SeqTracker(),
        idSeq: new Map(),
        seqId: new Map(),
        events: 0,
        health_messages: 0,
        duplicate_ids: 0,
        duplicates_no_tracker: 0,
        seq_conflicts: 0,
        filled_late: 0,
        repaired: 0,
        resend_requests: 0,
        invalid: { count: 0, last_error: null, last_topic: null, at: null },
        stale_status: 0,
      };
      this.devicesByKey.set(key, d);
    }
    return d;
  }

  /**
   * Handles one message as if it arrived from the broker (what the MQTT client calls). Public so recorded
   * traffic can be replayed through the same validation and bookkeeping, and for benchmarks.
   */
  ingest(topic: string, payload: Buffer, packet: { retain?: boolean; correlationData?: Buffer } = {}): void {
    const now = this.now();
    this.count(now);
    this.counters.messages++;
    this.currentCount++;
    if (topic === this.replyTopic) {
      this.onReply(payload, packet.correlationData);
      return;
    }
    const parts = topic.split('/');
    if (parts[0] !== this.prefix || parts.length < 4) return;
    const site = parts[1] as string;
    const device = parts[2] as string;
    const kind = parts[3] as string;
    const rest = parts.slice(4);
    if (site === '_center') return; // other receivers' reply topics
    const d = this.getDevice(site, device);
    d.last_seen = now;
    const json = parseJson(payload);
    // An empty retained message clears a retained topic (e.g. a decommissioned box): not an error.
    if (payload.length === 0 && packet.retain) return;
    if (!json.ok) {
      this.invalid(d, topic, json.error, now);
      return;
    }
    const body = json.value;
    if (kind === 'status' && rest.length === 0) this.onStatus(d, topic, body, now);
    else if (kind === 'birth' && rest.length === 0) this.onBirth(d, topic, body, now);
    else if (kind === 'health' && rest.length === 0) this.onOutboxMessage(d, topic, body, now, 'health');
    else if (kind === 'events' && rest.length === 1) this.onOutboxMessage(d, topic, body, now, 'event', rest[0]);
    else if (kind === 'cameras' && rest.length === 2 && rest[1] === 'status') this.onCameraStatus(d, topic, body, now, rest[0] as string);
    else if (kind === 'cmd' && rest.length === 2 && rest[1] === 'result') this.onReply(payload, undefined);
  }

  private invalid(d: Device | null, topic: string, error: string, now: number): void {
    if (d) {
      d.invalid.count++;
      d.invalid.last_error = error;
      d.invalid.last_topic = topic;
      d.invalid.at = new Date(now).toISOString();
    } else this.counters.invalid_unrouted++;
    this.log.debug({ topic, error }, 'center: invalid payload');
    this.emit('invalid', { key: d?.key ?? null, topic, error });
  }

  private setState(d: Device, state: AgentState, session: number, source: 'status' | 'birth', now: number): void {
    const changed = d.state !== state || d.session !== session;
    d.session = session;
    d.state_source = source;
    if (d.state !== state) d.state_since = now;
    d.state = state;
    if (state !== 'online') this.cancelRequests(d);
    if (changed) this.emit('state', this.view(d));
  }

  private onStatus(d: Device, topic: string, body: unknown, now: number): void {
    const r = StatusPayload.safeParse(body);
    if (!r.success) {
      this.invalid(d, topic, issues(r.error), now);
      return;
    }
    const s = r.data;
    if (s.session < Math.max(d.status_session, d.birth_session)) {
      // A Will (or any status) of an older connection arriving after a newer birth or status: late, ignored.
      d.stale_status++;
      this.log.info({ device: d.key, state: s.state, session: s.session, current_session: d.session }, 'center: late status of an older session ignored');
      return;
    }
    d.status_session = s.session;
    d.status_state = s.state;
    this.applyState(d, now);
  }

  private onBirth(d: Device, topic: string, body: unknown, now: number): void {
    const r = BirthPayload.safeParse(body);
    if (!r.success) {
      this.invalid(d, topic, issues(r.error), now);
      return;
    }
    const b = r.data;
    if (b.session < d.birth_session) {
      d.stale_status++;
      return;
    }
    d.birth = b;
    d.birth_session = b.session;
    this.applyState(d, now);
  }

  /**
   * State from the latest status and birth: a birth of a newer session than the status means the box connected
   * again after that status (birth goes out before online; and a late Will may have overwritten the retained
   * status of the newer session), so it is online.
   */
  private applyState(d: Device, now: number): void {
    if (d.birth_session > d.status_session) this.setState(d, 'online', d.birth_session, 'birth', now);
    else if (d.status_state) this.setState(d, d.status_state, d.status_session, 'status', now);
  }

  private onCameraStatus(d: Device, topic: string, body: unknown, now: number, camera: string): void {
    const r = CameraStatusPayload.safeParse(body);
    if (!r.success) {
      this.invalid(d, topic, issues(r.error), now);
      return;
    }
    if (r.data.camera !== camera) {
      this.invalid(d, topic, `camera "${r.data.camera}" does not match the topic`, now);
      return;
    }
    d.cameras.set(camera, r.data);
  }

  private onOutboxMessage(d: Device, topic: string, body: unknown, now: number, kind: 'event' | 'health', camera?: string): void {
    const delivery = DeliveryFields.safeParse(body);
    if (!delivery.success) {
      this.invalid(d, topic, issues(delivery.error), now);
      return;
    }
    const { id, seq, replayed } = delivery.data;
    if (replayed) d.last_replayed_at = now;

    // Duplicates: by seq (tracker), by id (recent window).
    const prevSeqOfId = d.idSeq.get(id);
    if (this.gapMode === 'off') {
      if (prevSeqOfId !== undefined) {
        if (prevSeqOfId === seq) d.duplicates_no_tracker++;
        else d.duplicate_ids++;
        return;
      }
    } else {
      const obs = d.tracker.observe(seq, now);
      if (obs.kind === 'duplicate') {
        const prevId = d.seqId.get(seq);
        if (prevId !== undefined && prevId !== id) {
          d.seq_conflicts++;
          this.log.warn({ device: d.key, seq, id, previous_id: prevId }, 'center: two messages with the same seq and different ids');
        }
        return;
      }
      if (obs.gap) this.onHoleFilled(d, obs.gap, obs.closed);
      if (prevSeqOfId !== undefined) {
        d.duplicate_ids++;
        this.remember(d, id, seq);
        return;
      }
    }
    this.remember(d, id, seq);

    if (kind === 'health') {
      const r = HealthMessage.safeParse(body);
      if (!r.success) {
        this.invalid(d, topic, issues(r.error), now);
        return;
      }
      d.health_messages++;
      const h = r.data;
      if (!d.health || seq > d.health.seq) {
        d.health = {
          ts: h.ts,
          seq,
          status: h.status,
          reasons: h.reasons.map((x) => x.code),
          soc_temp_c: h.system.soc_temp_c,
          process_fps: Math.round(h.cameras.reduce((a, c) => a + c.process_fps, 0) * 10) / 10,
          backlog: h.outbox?.depth ?? null,
          uplink_session: h.uplink?.session ?? null,
        };
      }
      return;
    }
    const r = WireEventSchema.safeParse(body);
    if (!r.success) {
      this.invalid(d, topic, issues(r.error), now);
      return;
    }
    const ev = r.data;
    if (ev.site !== d.site || ev.device !== d.device || ev.camera !== camera) {
      this.invalid(d, topic, `event of ${ev.site}/${ev.device}/${ev.camera} on topic ${topic}`, now);
      return;
    }
    d.events++;
    const meta: ReceivedEventMeta = { key: d.key, site: d.site, device: d.device, topic, received_at: now };
    for (const s of this.sinks) s.write({ topic, site: d.site, device: d.device, received_at: now, event: ev });
    this.emit('event', ev, meta);
  }

  private remember(d: Device, id: string, seq: number): void {
    d.idSeq.set(id, seq);
    d.seqId.set(seq, id);
    if (d.idSeq.size > this.o.id_window) {
      const oldest = d.idSeq.keys().next().value as string;
      d.idSeq.delete(oldest);
    }
    if (d.seqId.size > this.o.id_window) {
      const oldest = d.seqId.keys().next().value as number;
      d.seqId.delete(oldest);
    }
  }

  /** A seq arrived inside a known hole. */
  private onHoleFilled(d: Device, gap: Gap, closed: boolean): void {
    if (gap.lost) {
      // Arrived after it was given up on (reported lost): counted as received again.
      this.log.info({ device: d.key, from: gap.lo, to: gap.hi }, 'center: a seq reported lost arrived after all');
      return;
    }
    if (gap.tries > 0) d.repaired++;
    else d.filled_late++;
    // One report per request range, when its last missing seq arrived.
    if (closed && gap.tries > 0 && !d.tracker.gaps.some((g) => !g.lost && g.req_from === gap.req_from && g.req_to === gap.req_to && g.tries > 0)) {
      this.emit('gap', { key: d.key, site: d.site, device: d.device, from: gap.req_from, to: gap.req_to, seqs: gap.req_to - gap.req_from + 1, state: 'repaired', tries: gap.tries });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Gap repair

  private tick(): void {
    const now = this.now();
    this.count(now);
    if (this.gapMode === 'off') return;
    for (const req of [...this.requests.values()]) {
      if (now < req.deadline) continue;
      this.requests.delete(req.id);
      const d = this.devicesByKey.get(req.key);
      if (!d) continue;
      for (const g of d.tracker.gaps) {
        if (g.request !== req.id) continue;
        g.request = null;
        g.wait_until = now;
        g.reason = `no answer to resend within ${this.o.request_timeout_ms} ms`;
      }
    }
    for (const d of this.devicesByKey.values()) {
      if (d.tracker.gaps.length === 0) continue;
      this.repairDevice(d, now);
    }
  }

  private repairDevice(d: Device, now: number): void {
    const eligible: Gap[] = [];
    const backlogQuiet = now - d.last_replayed_at >= this.o.grace_ms;
    for (const g of d.tracker.gaps) {
      if (g.lost || g.request !== null) continue;
      if (g.jump) {
        this.markLost(d, g, 'seq jump: the box restarted its seq counter far above (e.g. a corrupt outbox was quarantined)', now);
        continue;
      }
      if (this.gapMode !== 'repair') continue;
      if (now < g.wait_until) continue;
      if (g.tries >= this.o.max_tries) {
        this.markLost(d, g, g.reason ?? `not filled after ${g.tries} resend request(s)`, now);
        continue;
      }
      const age = now - g.opened_at;
      if (g.tries === 0 && (age < this.o.grace_ms || (!backlogQuiet && age < this.o.max_defer_ms))) continue;
      eligible.push(g);
    }
    if (eligible.length === 0 || d.state !== 'online') return;
    // Coalesce close holes into one request range.
    let i = 0;
    while (i < eligible.length && this.requests.size < this.o.max_outstanding) {
      const first = eligible[i] as Gap;
      let j = i;
      while (j + 1 < eligible.length) {
        const next = eligible[j + 1] as Gap;
        const cur = eligible[j] as Gap;
        if (next.lo - cur.hi - 1 > this.o.coalesce || next.hi - first.lo + 1 > 10_000) break;
        j++;
      }
      this.sendResend(d, eligible.slice(i, j + 1), now);
      i = j + 1;
    }
  }

  private sendResend(d: Device, gaps: Gap[], now: number): void {
    const client = this.client;
    if (!client || !this.connected) return;
    const from = (gaps[0] as Gap).lo;
    const to = (gaps[gaps.length - 1] as Gap).hi;
    const id = `${this.requestPrefix}-${++this.requestCounter}`;
    const req: ResendRequest = { id, key: d.key, from, to, sent_at: now, deadline: now + this.o.request_timeout_ms };
    this.requests.set(id, req);
    for (const g of gaps) {
      g.request = id;
      g.tries++;
      g.req_from = from;
      g.req_to = to;
    }
    d.resend_requests++;
    const topic = `${this.prefix}/${d.site}/${d.device}/cmd/resend`;
    client.publish(
      topic,
      JSON.stringify({ id, from, to }),
      { qos: 1, retain: false, properties: { responseTopic: this.replyTopic, correlationData: Buffer.from(id) } },
      (err) => {
        if (err) this.log.debug({ err, topic }, 'center: resend request not acknowledged by the broker');
      },
    );
    const tries = Math.max(...gaps.map((g) => g.tries));
    this.log.info({ device: d.key, from, to, tries }, 'center: resend requested');
    this.emit('gap', { key: d.key, site: d.site, device: d.device, from, to, seqs: to - from + 1, state: 'requested', tries });
  }

  private onReply(payload: Buffer, correlationData: Buffer | undefined): void {
    const json = parseJson(payload);
    let id = correlationData?.toString('utf8');
    const parsed = json.ok ? CommandResponse.safeParse(json.value) : undefined;
    if (id === undefined && parsed?.success) id = typeof parsed.data.id === 'string' ? parsed.data.id : undefined;
    if (id === undefined) return;
    const req = this.requests.get(id);
    if (!req) return; // another receiver's, or already timed out
    this.requests.delete(id);
    const d = this.devicesByKey.get(req.key);
    if (!d) return;
    const now = this.now();
    const gaps = d.tracker.gaps.filter((g) => g.request === id);
    if (!parsed?.success) {
      this.invalid(d, this.replyTopic, `resend response: ${parsed ? issues(parsed.error) : json.ok ? 'invalid' : json.error}`, now);
      for (const g of gaps) {
        g.request = null;
        g.wait_until = now + this.o.confirm_ms;
      }
      return;
    }
    const resp = parsed.data;
    if (resp.status === 'error') {
      this.log.warn({ device: d.key, from: req.from, to: req.to, code: resp.error.code, message: resp.error.message }, 'center: resend refused');
      for (const g of gaps) {
        g.request = null;
        g.wait_until = now + this.o.confirm_ms;
        g.reason = `resend refused: ${resp.error.code} ${resp.error.message}`;
      }
      return;
    }
    const result = ResendResult.safeParse(resp.data);
    const queued = result.success ? result.data.queued : 1;
    if (queued === 0) {
      // Nothing in the range is kept on the box any more: evicted (caps) or expired (TTL).
      for (const g of gaps) this.markLost(d, g, `the box no longer has seqs ${req.from}-${req.to} (evicted or expired)`, now);
      return;
    }
    for (const g of gaps) {
      g.request = null;
      g.wait_until = now + this.o.confirm_ms + queued;
      g.reason = null;
    }
  }

  private markLost(d: Device, g: Gap, reason: string, _now: number): void {
    g.lost = true;
    g.request = null;
    g.reason = reason;
    const seqs = g.hi - g.lo + 1;
    this.log.warn({ device: d.key, from: g.lo, to: g.hi, seqs, tries: g.tries, reason }, 'center: seqs lost');
    this.emit('gap', { key: d.key, site: d.site, device: d.device, from: g.lo, to: g.hi, seqs, state: 'lost', tries: g.tries, reason });
  }

  /** The box went offline: its pending requests will not be answered; they do not count as tries. */
  private cancelRequests(d: Device): void {
    for (const req of [...this.requests.values()]) {
      if (req.key !== d.key) continue;
      this.requests.delete(req.id);
      for (const g of d.tracker.gaps) {
        if (g.request !== req.id) continue;
        g.request = null;
        g.tries = Math.max(0, g.tries - 1);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Rates

  private count(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec !== this.currentSecond) {
      if (this.currentSecond !== 0) {
        this.perSecond.push(this.currentCount);
        this.peakPerSecond = Math.max(this.peakPerSecond, this.currentCount);
        for (let s = this.currentSecond + 1; s < sec && this.perSecond.length < 12; s++) this.perSecond.push(0);
        while (this.perSecond.length > 5) this.perSecond.shift();
      }
      this.currentSecond = sec;
      this.currentCount = 0;
    }
  }

  private rate(): number {
    if (this.perSecond.length === 0) return 0;
    return Math.round(this.perSecond.reduce((a, b) => a + b, 0) / this.perSecond.length);
  }
}
