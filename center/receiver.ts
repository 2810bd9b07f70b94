// Fleet receiver: the control-center side of the MQTT contract. Subscribes to a whole fleet, validates every
// payload against the contract's zod schemas and composes the parts that keep the books: the broker connection
// (connection.ts), each box's availability by session number (devices.ts), duplicates (dedup.ts), seq gaps
// (seq-tracker.ts) repaired with the agent's `resend` command (gap-repair.ts), and the message rate (rate-meter.ts).
//
// Shared subscriptions: events and health may be split across receivers (`$share/{group}/…`). A receiver in a
// share group sees only part of each box's seqs when the broker distributes round-robin (mosquitto does), so gap
// tracking is off by default there; turn it on only when the broker pins each publisher to one member (EMQX
// `hash_clientid`, HiveMQ/VerneMQ equivalents): see docs/scaling.md.
//
// With a state store (the PostgreSQL sink) the seq bookkeeping outlives the process: it is loaded at start, so a
// restarted receiver resumes gap repair. In a share group a device's saved state is taken over at its first
// outbox message here (only the member that gets its messages repairs it); otherwise at start.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BirthPayload } from '../contract/birth.js';
import { WireEventSchema, type WireEvent } from '../contract/event.js';
import { HealthMessage } from '../contract/health.js';
import { CameraStatusPayload, StatusPayload } from '../contract/status.js';
import { baseFilter, centerReplyTopic, DeliveryFields, parseTopic } from '../contract/topics.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import { formatIssues } from '../core/zod-issues.js';
import { BrokerConnection, fleetFilters } from './connection.js';
import { DeviceRegistry, type Device, type DeviceState, type AvailabilityChange } from './devices.js';
import { GapRepair, type GapMode, type GapReport } from './gap-repair.js';
import { parseJson } from './payload.js';
import { RateMeter } from './rate-meter.js';
import type { FleetReceiverOptions, FleetTotals, InvalidReport, ReceivedEventMeta } from './receiver-types.js';
import type { EventSink, SinkStats } from './sinks.js';
import { restoreSeqs, snapshotDevice, type DeviceSnapshot, type SavedSeqs } from './state.js';

export type { DeviceHealthSummary, DeviceState } from './devices.js';
export type { GapMode, GapReport } from './gap-repair.js';
export type { FleetReceiverOptions, FleetTotals, InvalidReport, ReceivedEventMeta } from './receiver-types.js';

interface FleetReceiverEvents {
  event: [event: WireEvent, meta: ReceivedEventMeta];
  gap: [report: GapReport];
  invalid: [report: InvalidReport];
  state: [device: DeviceState];
}

const SHARE_NAME = /^[^/+#]+$/;

export class FleetReceiver extends EventEmitter<FleetReceiverEvents> implements Module {
  readonly name = 'center';
  readonly prefix: string;
  readonly protocol: 4 | 5;
  readonly clientId: string;
  /** Where MQTT 5 resend responses come back; null on MQTT 3.1.1 (responses come on the boxes' result topics). */
  readonly replyTopic: string | null;
  readonly gapMode: GapMode;

  private readonly connection: BrokerConnection;
  private readonly registry: DeviceRegistry;
  private readonly repair: GapRepair;
  private readonly rate = new RateMeter();
  private readonly sinks: EventSink[];
  private readonly now: () => number;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Invalid messages that could not be tied to a device. */
  private invalidUnrouted = 0;
  /** Reading from the broker is paused until a sink catches up. */
  private paused = false;
  /** Saved seq state waiting for the device's first outbox message (share group), by device key. */
  private readonly pendingSeqs = new Map<string, SavedSeqs>();

  constructor(
    private readonly opts: FleetReceiverOptions,
    private readonly log: Logger,
  ) {
    super();
    this.prefix = opts.prefix ?? 'roadside';
    this.protocol = opts.protocol ?? 5;
    if (this.protocol !== 4 && this.protocol !== 5) throw new AgentError('CENTER_BAD_OPTION', `protocol must be 4 or 5, got ${String(opts.protocol)}`);
    if (opts.share !== undefined && !SHARE_NAME.test(opts.share)) throw new AgentError('CENTER_BAD_OPTION', `invalid share group "${opts.share}"`);
    try {
      baseFilter(this.prefix);
      for (const site of opts.sites ?? []) baseFilter(this.prefix, site);
    } catch (err) {
      throw new AgentError('CENTER_BAD_OPTION', `invalid prefix or site: ${errorMessage(err)}`);
    }
    this.clientId = opts.clientId ?? `roadside-center-${randomBytes(4).toString('hex')}`;
    this.replyTopic = this.protocol === 5 ? centerReplyTopic(this.prefix, this.clientId) : null;
    this.gapMode = opts.gaps ?? (opts.share ? 'off' : 'repair');
    this.sinks = opts.sinks ?? [];
    this.now = opts.now ?? Date.now;
    this.tickMs = opts.tick_ms ?? 250;
    this.connection = new BrokerConnection(
      {
        url: opts.url,
        protocol: this.protocol,
        client_id: this.clientId,
        username: opts.username,
        password: opts.password,
        tls: { ca: opts.ca, cert: opts.cert, key: opts.key },
        session_expiry_s: opts.session_expiry_s ?? (opts.clientId ? 3600 : 0),
        receive_maximum: opts.receive_maximum ?? 1000,
        filters: fleetFilters({ prefix: this.prefix, share: opts.share, sites: opts.sites, reply_topic: this.replyTopic }),
        reply_topic: this.replyTopic,
        gate: (done) => this.gate(done),
      },
      (topic, payload, packet) => this.ingest(topic, payload, packet),
      log,
    );
    this.registry = new DeviceRegistry(this.prefix, { track_seqs: this.gapMode !== 'off', id_window: opts.id_window ?? 256 });
    const connection = this.connection;
    this.repair = new GapRepair(
      {
        mode: this.gapMode,
        grace_ms: opts.grace_ms ?? 3000,
        max_defer_ms: opts.max_defer_ms ?? 300_000,
        request_timeout_ms: opts.request_timeout_ms ?? 10_000,
        confirm_ms: opts.confirm_ms ?? 10_000,
        max_tries: opts.max_tries ?? 3,
        max_outstanding: opts.max_outstanding ?? 64,
        coalesce: opts.coalesce ?? 64,
      },
      this.registry,
      {
        get ready() {
          return connection.connected;
        },
        sendResend: (d, req) => connection.sendCommand(d.topics.command('resend'), req),
      },
      { report: (r) => this.emit('gap', r), invalid: (d, topic, error, now) => this.invalid(d, topic, error, now) },
      log,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /** Connects and subscribes; resolves once subscribed. Rejects on a refused connection (credentials, TLS, protocol) or abort. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.opts.share && this.protocol === 4) {
      this.log.warn({ share: this.opts.share }, 'center: shared subscriptions are an MQTT 5 feature; on 3.1.1 only some brokers (mosquitto, EMQX) honour $share/');
    }
    try {
      for (const s of this.sinks) await s.start?.();
      await this.loadState();
      await this.connection.start(signal);
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (!this.timer && !this.stopping) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  /** Disconnects and closes the sinks. Safe to call more than once (every call waits for the same stop). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.connection.stop();
    for (const s of this.sinks) {
      try {
        await s.close();
      } catch (err) {
        this.log.error({ err, sink: s.name }, 'center: closing a sink failed');
      }
    }
  }

  /** Seq state saved by earlier runs: taken over now, or at the device's first outbox message in a share group. */
  private async loadState(): Promise<void> {
    const store = this.opts.state;
    if (!store) return;
    if (this.gapMode !== 'off') {
      for (const saved of await store.loadSeqs(this.opts.sites)) {
        if (this.opts.share) this.pendingSeqs.set(`${saved.site}/${saved.device}`, saved.seqs);
        else {
          const d = this.registry.obtain(saved.site, saved.device);
          restoreSeqs(d, saved.seqs, this.repair.stats(d.key));
        }
      }
      if (this.pendingSeqs.size + this.registry.size > 0) this.log.info({ devices: this.pendingSeqs.size + this.registry.size }, 'center: seq state loaded');
    }
    store.track(() => this.changedDevices());
  }

  private changedDevices(): DeviceSnapshot[] {
    const out: DeviceSnapshot[] = [];
    for (const d of this.registry.all()) {
      if (!d.changed) continue;
      d.changed = false;
      out.push(snapshotDevice(d, this.repair.stats(d.key), this.gapMode !== 'off'));
    }
    return out;
  }

  /** Backpressure: the next message is acknowledged and read once every sink takes more rows. */
  private gate(done: () => void): void {
    const waits = this.sinks.flatMap((s) => s.writable?.() ?? []);
    if (waits.length === 0) return done();
    if (!this.paused) this.log.warn({ sinks: this.sinkStats() }, 'center: sinks behind; reading from the broker paused (the broker queues meanwhile)');
    this.paused = true;
    void Promise.all(waits).then(() => {
      if (this.paused) this.log.warn('center: sinks caught up; reading from the broker again');
      this.paused = false;
      done();
    });
  }

  private tick(): void {
    const now = this.now();
    this.rate.roll(now);
    this.repair.tick(now);
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  devices(): DeviceState[] {
    return this.registry.sorted().map((d) => d.view(this.repair.stats(d.key)));
  }

  device(key: string): DeviceState | undefined {
    const d = this.registry.get(key);
    return d ? d.view(this.repair.stats(d.key)) : undefined;
  }

  totals(): FleetTotals {
    const t: FleetTotals = {
      connected: this.connection.connected,
      devices: this.registry.size,
      online: 0,
      offline: 0,
      stopped: 0,
      unknown: 0,
      messages: this.rate.total,
      events: 0,
      health_messages: 0,
      duplicates: 0,
      invalid: this.invalidUnrouted,
      missing: 0,
      gaps_open: 0,
      filled_late: 0,
      repaired: 0,
      lost: 0,
      resend_requests: 0,
      resend_outstanding: this.repair.outstanding,
      stale_status: 0,
      msgs_per_s: this.rate.msgsPerS,
      peak_msgs_per_s: this.rate.peakPerS,
    };
    for (const d of this.registry.all()) {
      const r = this.repair.stats(d.key);
      t[d.availability.state]++;
      t.events += d.events;
      t.health_messages += d.health_messages;
      t.duplicates += d.dedup.duplicates + d.dedup.duplicate_ids;
      t.invalid += d.invalid.count;
      t.missing += d.seqs.missing;
      t.gaps_open += d.seqs.openGaps;
      t.filled_late += r.filled_late;
      t.repaired += r.repaired;
      t.lost += d.seqs.lost;
      t.resend_requests += r.resend_requests;
      t.stale_status += d.availability.stale;
    }
    return t;
  }

  /** Figures of the sinks that report them (rows written, rows/s, waiting). */
  sinkStats(): SinkStats[] {
    return this.sinks.flatMap((s) => (s.stats ? [s.stats()] : []));
  }

  // ---------------------------------------------------------------------------------------------
  // Messages

  /**
   * Handles one message as if it arrived from the broker (what the MQTT client calls). Public so recorded
   * traffic can be replayed through the same validation and bookkeeping, and for benchmarks.
   */
  ingest(topic: string, payload: Buffer, packet: { retain?: boolean; correlationData?: Buffer | undefined } = {}): void {
    const now = this.now();
    this.rate.add(now);
    if (topic === this.replyTopic) {
      this.repair.onReply(topic, parseJson(payload), packet.correlationData, now);
      return;
    }
    const t = parseTopic(this.prefix, topic);
    if (!t || t.site === '_center') return; // not a device topic (other receivers' reply topics)
    const d = this.registry.obtain(t.site, t.device);
    d.last_seen = now;
    d.changed = true;
    // An empty retained message clears a retained topic (e.g. a decommissioned box): not an error.
    if (payload.length === 0 && packet.retain) return;
    const json = parseJson(payload);
    if (t.name === 'command_result') {
      if (t.param === 'resend') this.repair.onReply(topic, json, undefined, now);
      return;
    }
    if (!json.ok) {
      this.invalid(d, topic, json.error, now);
      return;
    }
    const body = json.value;
    switch (t.name) {
      case 'status':
      case 'birth':
        this.onAvailability(d, topic, body, now, t.name);
        return;
      case 'camera_status':
        this.onCameraStatus(d, topic, body, now, t.param as string);
        return;
      case 'health':
      case 'events':
        this.onOutboxMessage(d, topic, body, now, t.param);
        return;
      case 'command':
        return;
    }
  }

  private invalid(d: Device | null, topic: string, error: string, now: number): void {
    if (d) d.recordInvalid(topic, error, now);
    else this.invalidUnrouted++;
    this.log.debug({ topic, error }, 'center: invalid payload');
    this.emit('invalid', { key: d?.key ?? null, topic, error });
  }

  private onAvailability(d: Device, topic: string, body: unknown, now: number, kind: 'status' | 'birth'): void {
    let change: AvailabilityChange;
    if (kind === 'status') {
      const r = StatusPayload.safeParse(body);
      if (!r.success) return this.invalid(d, topic, formatIssues(r.error, 3), now);
      const before = d.availability.session;
      change = d.availability.onStatus(r.data, now);
      // A Will (or any status) of an older connection arriving after a newer birth or status: late, ignored.
      if (change === 'stale') this.log.info({ device: d.key, state: r.data.state, session: r.data.session, current_session: before }, 'center: late status of an older session ignored');
    } else {
      const r = BirthPayload.safeParse(body);
      if (!r.success) return this.invalid(d, topic, formatIssues(r.error, 3), now);
      change = d.availability.onBirth(r.data, now);
    }
    if (change === 'stale') return;
    if (!d.online) this.repair.cancel(d);
    if (change === 'changed') this.emit('state', d.view(this.repair.stats(d.key)));
  }

  private onCameraStatus(d: Device, topic: string, body: unknown, now: number, camera: string): void {
    const r = CameraStatusPayload.safeParse(body);
    if (!r.success) return this.invalid(d, topic, formatIssues(r.error, 3), now);
    if (r.data.camera !== camera) return this.invalid(d, topic, `camera "${r.data.camera}" does not match the topic`, now);
    d.cameras.set(camera, r.data);
  }

  /** events and health: delivery fields first (dedup, seqs), then the body. `camera` set for events. */
  private onOutboxMessage(d: Device, topic: string, body: unknown, now: number, camera: string | undefined): void {
    const delivery = DeliveryFields.safeParse(body);
    if (!delivery.success) return this.invalid(d, topic, formatIssues(delivery.error, 3), now);
    const { id, seq, replayed } = delivery.data;
    if (replayed) d.last_replayed_at = now;
    const saved = this.pendingSeqs.get(d.key);
    if (saved) {
      this.pendingSeqs.delete(d.key);
      restoreSeqs(d, saved, this.repair.stats(d.key));
    }
    const a = d.dedup.admit(id, seq, now);
    if (a.conflicting_id !== undefined) this.log.warn({ device: d.key, seq, id, previous_id: a.conflicting_id }, 'center: two messages with the same seq and different ids');
    if (a.gap) this.repair.onFilled(d, a.gap, a.closed);
    if (!a.fresh) return;

    if (camera === undefined) {
      const r = HealthMessage.safeParse(body);
      if (!r.success) return this.invalid(d, topic, formatIssues(r.error, 3), now);
      d.recordHealth(seq, r.data);
      for (const s of this.sinks) s.writeHealth?.({ topic, site: d.site, device: d.device, received_at: now, health: r.data });
      return;
    }
    const r = WireEventSchema.safeParse(body);
    if (!r.success) return this.invalid(d, topic, formatIssues(r.error, 3), now);
    const ev = r.data;
    if (ev.site !== d.site || ev.device !== d.device || ev.camera !== camera) {
      return this.invalid(d, topic, `event of ${ev.site}/${ev.device}/${ev.camera} on topic ${topic}`, now);
    }
    d.events++;
    for (const s of this.sinks) s.write({ topic, site: d.site, device: d.device, received_at: now, event: ev });
    this.emit('event', ev, { key: d.key, site: d.site, device: d.device, topic, received_at: now });
  }
}
