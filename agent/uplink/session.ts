// The MQTT session of the uplink: connect with the Will (offline + session number), reconnect with jittered
// backoff (to the next broker node of mqtt.urls: brokers.ts), and the announcements of a session: birth (which
// names the node), online, the retained states, stopped on a clean shutdown.
import type { Socket } from 'node:net';
import { z } from 'zod';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Outbox } from '../../buffer/outbox.js';
import type { MqttConfig } from '../../config/schema/index.js';
import { BirthInfo, type BirthPayload } from '../../contract/birth.js';
import type { BrokerNode } from '../../contract/health.js';
import type { StatusCondition, StatusPayload } from '../../contract/status.js';
import { CONTRACT_VERSION, isRelativeTopic, type Topics } from '../../contract/topics.js';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { mqttClientOptions, readTlsFiles } from '../../core/mqtt-options.js';
import { Backoff, withTimeout } from '../../core/time.js';
import { formatIssues } from '../../core/zod-issues.js';
import { BrokerRotation } from './brokers.js';
import { UplinkError, classifyError } from './errors.js';

export type UplinkState = 'stopped' | 'connecting' | 'online' | 'offline' | 'stopping';

/** One connection. Events of an older one are recognised by identity and ignored. */
export interface Link {
  readonly client: MqttClient;
  readonly session: number;
}

export interface SessionHooks {
  /** CONNACK received: prepare the connection (subscribe...). Rejecting closes it (reconnect with backoff). */
  connected(link: Link, receiveMaximum: number | undefined): Promise<void>;
  /** Birth and online are out: messages may flow. */
  online(link: Link): void;
  /** A clean stop begins: deliver what is committed (at most `ms`) before `stopped` goes out. */
  stopping(ms: number): Promise<void>;
  /** The connection is gone (lost, failed or stopped). */
  down(): void;
  /** Connection lost or attempt failed (not on stop). */
  offline(error: UplinkError | undefined): void;
  message(link: Link, topic: string, payload: Buffer, packet: IPublishPacket): void;
}

export interface SessionDeps {
  config: MqttConfig;
  clientId: string;
  topics: Topics;
  /** Session numbers (stored, so they grow across restarts). */
  outbox: Pick<Outbox, 'nextSession'>;
  /** What the birth says about the box; called at every connect and on rebirth. */
  birth: () => BirthInfo | Promise<BirthInfo>;
  /** Command names listed in the birth. */
  commandNames: () => string[];
  log: Logger;
  hooks: SessionHooks;
  random?: () => number;
  /** Longest time a clean stop spends delivering before `stopped`, ms. Default STOP_DRAIN_MS. */
  stopDrainMs?: number;
}

export interface SessionStats {
  state: UplinkState;
  session: number;
  connected_since: string | null;
  /** Successful connections since start. */
  connects: number;
  connect_attempts: number;
  /** Connections lost (not counting failed attempts). */
  disconnects: number;
  /** Delay before the next connection attempt, ms, while offline. */
  reconnect_in_ms: number | null;
  /** publishNow() calls dropped because the uplink was offline (retained states are kept and republished). */
  dropped_offline: number;
  retained_states: number;
  last_error: { code: string; message: string; reason_code: number | null; at: string } | null;
  /** The broker node of the current connection, or of the attempt under way. */
  broker: BrokerNode;
  /** Connections made to another node than the previous connection's. */
  failovers: number;
}

/** The birth schema without its ban on unknown keys (they are stripped instead). */
const BirthInfoLenient = z.object(BirthInfo.shape);

const CONNECT_TIMEOUT_MS = 20_000;
/** Default bound of the delivery at a clean stop (the pipelines' last events go out in it), ms. */
export const STOP_DRAIN_MS = 3_000;
const STOP_PUBLISH_MS = 2_000;
const STABLE_CONNECTION_MS = 30_000;

export class UplinkSession {
  private current: UplinkState = 'stopped';
  private link: Link | undefined;
  /** Birth and online published on the current link, not stopping. */
  private ready = false;
  private session = 0;
  private tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  private readonly backoff: Backoff;
  private readonly brokers: BrokerRotation;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAt: number | null = null;
  private connectedSince: number | null = null;
  private linkError: UplinkError | undefined;
  private lastError: SessionStats['last_error'] = null;
  /** Degraded conditions carried by the online status (e.g. disk_full). */
  private conditions: StatusCondition[] = [];
  /** The conditions of the last online status published on the current link. */
  private conditionsSent = '';
  /** Latest payload per retained relative topic: republished after every birth. */
  private readonly retained = new Map<string, string>();
  private readonly counters = { connects: 0, connect_attempts: 0, disconnects: 0, dropped_offline: 0 };

  constructor(private readonly d: SessionDeps) {
    this.backoff = new Backoff(d.config.backoff, d.random);
    this.brokers = new BrokerRotation(d.config.urls);
  }

  /** Reads the TLS files (a TLS_FILES error names the unreadable one) and starts connecting. */
  start(): void {
    if (this.current !== 'stopped') return;
    this.tls = readTlsFiles(this.d.config.tls);
    this.current = 'connecting';
    this.connect();
  }

  /** Clean shutdown: lets in-flight messages be acknowledged, publishes `stopped`, disconnects (no Will). */
  async stop(): Promise<void> {
    if (this.current === 'stopped' || this.current === 'stopping') return;
    const wasReady = this.ready;
    this.current = 'stopping';
    this.clearReconnect();
    const link = this.link;
    if (link && wasReady) {
      this.ready = false; // no new messages; the in-flight ones may still be acknowledged
      await this.d.hooks.stopping(this.d.stopDrainMs ?? STOP_DRAIN_MS);
      try {
        await withTimeout(this.publish(link, this.d.topics.status, JSON.stringify(this.statusPayload('stopped')), { qos: 1, retain: true }), STOP_PUBLISH_MS, 'publishing the stopped status');
      } catch (err) {
        this.d.log.warn({ err }, 'could not publish the stopped status');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          link.client.end(true);
          resolve();
        }, STOP_PUBLISH_MS);
        link.client.end(false, {}, () => {
          clearTimeout(t);
          resolve();
        });
      });
    } else if (link) {
      link.client.end(true);
    }
    this.link = undefined;
    this.ready = false;
    this.connectedSince = null;
    this.d.hooks.down();
    this.current = 'stopped';
    this.d.log.info({ session: this.session }, 'uplink stopped');
  }

  get state(): UplinkState {
    return this.current;
  }

  get online(): boolean {
    return this.ready;
  }

  get currentSession(): number {
    return this.session;
  }

  /** The client of the current connection, if it is connected. */
  get client(): MqttClient | undefined {
    return this.link?.client.connected ? this.link.client : undefined;
  }

  /**
   * QoS 1 publish of a message outside the outbox on `{base}/{topic}`. Dropped when offline, except retained
   * ones: the latest per topic is kept and republished after each birth. Returns true if sent now.
   */
  publishNow(topic: string, payload: object, retain: boolean): boolean {
    if (!isRelativeTopic(topic)) throw new AgentError('INVALID_TOPIC', `invalid relative topic "${topic}"`);
    const text = JSON.stringify(payload);
    if (retain) this.retained.set(topic, text);
    const link = this.link;
    if (!this.ready || !link) {
      if (!retain) this.counters.dropped_offline++;
      return false;
    }
    this.publish(link, this.d.topics.resolve(topic), text, { qos: 1, retain }).catch((err: unknown) => this.d.log.debug({ err, topic }, 'publishNow not acknowledged'));
    return true;
  }

  /**
   * Sets the conditions the online status carries (`[]` clears them). When they change and the session is online,
   * the retained status is published again at once; otherwise the next online status carries them.
   */
  setConditions(conditions: readonly StatusCondition[]): void {
    const next = [...new Set(conditions)].sort();
    if (next.join() === this.conditions.join()) return;
    this.conditions = next;
    this.republishConditions();
  }

  /** Publishes the online status again when its conditions differ from the last one sent (only while online). */
  private republishConditions(): void {
    const link = this.link;
    if (!this.ready || !link || this.conditionsSent === this.conditions.join()) return;
    const payload = this.statusPayload('online');
    this.publish(link, this.d.topics.status, JSON.stringify(payload), { qos: 1, retain: true }).catch((err: unknown) =>
      this.d.log.warn({ err, conditions: payload.conditions ?? [] }, 'status with new conditions not acknowledged'),
    );
  }

  /** Publishes birth, online status and the retained states again (the `rebirth` command). Returns the states sent. */
  async rebirth(): Promise<number> {
    const link = this.link;
    if (!link || !this.ready) throw new UplinkError('CONNECTION_LOST', 'not connected');
    return (await this.announce(link)).size;
  }

  recordError(e: UplinkError): void {
    this.lastError = { code: e.code, message: e.message, reason_code: e.reasonCode ?? null, at: new Date().toISOString() };
  }

  stats(): SessionStats {
    const c = this.counters;
    return {
      state: this.current,
      session: this.session,
      connected_since: this.connectedSince === null ? null : new Date(this.connectedSince).toISOString(),
      connects: c.connects,
      connect_attempts: c.connect_attempts,
      disconnects: c.disconnects,
      reconnect_in_ms: this.reconnectAt === null ? null : Math.max(0, this.reconnectAt - Date.now()),
      dropped_offline: c.dropped_offline,
      retained_states: this.retained.size,
      last_error: this.lastError,
      broker: this.brokers.node,
      failovers: this.brokers.failovers,
    };
  }

  /** The broker node of the current connection, or of the attempt under way. */
  get broker(): BrokerNode {
    return this.brokers.node;
  }

  // ---------------------------------------------------------------------------------------------
  // Connection

  private connect(): void {
    this.reconnectTimer = undefined;
    this.reconnectAt = null;
    if (this.current === 'stopping' || this.current === 'stopped') return;
    const config = this.d.config;
    this.linkError = undefined;
    this.session = this.d.outbox.nextSession();
    this.counters.connect_attempts++;
    const will: StatusPayload = { state: 'offline', session: this.session, ts: new Date().toISOString() };
    const opts = mqttClientOptions(
      { ...config, client_id: this.d.clientId },
      {
        clean: true,
        connectTimeout: CONNECT_TIMEOUT_MS,
        queueQoSZero: false,
        will: { topic: this.d.topics.status, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
      },
      this.tls,
    );
    const node = this.brokers.node;
    this.d.log.debug({ url: node.url, node: node.index, session: this.session, protocol: config.protocol }, 'connecting');
    const link: Link = { client: mqtt.connect(this.brokers.url, opts), session: this.session };
    this.link = link;
    const { client } = link;
    client.on('connect', (connack) => {
      // mqtt.js leaves Nagle on: small publishes would wait for TCP acks of the previous ones.
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      void this.onConnect(link, connack.properties?.receiveMaximum);
    });
    client.on('message', (topic, payload, packet) => {
      if (link === this.link) this.d.hooks.message(link, topic, payload, packet);
    });
    client.on('error', (err) => this.onError(link, err));
    client.on('close', () => this.onClose(link));
  }

  private async onConnect(link: Link, receiveMaximum: number | undefined): Promise<void> {
    if (link !== this.link) return;
    this.counters.connects++;
    this.connectedSince = Date.now();
    if (this.brokers.connected()) {
      const node = this.brokers.node;
      this.d.log.warn({ url: node.url, node: node.index, session: link.session, failovers: this.brokers.failovers }, `uplink failed over to broker node ${node.index} (${node.url})`);
    }
    try {
      await this.d.hooks.connected(link, receiveMaximum);
      if (link !== this.link) return;
      const announced = await this.announce(link);
      // Retained states set while the birth was on its way.
      for (const [topic, text] of this.retained) {
        if (announced.get(topic) !== text) await this.publish(link, this.d.topics.resolve(topic), text, { qos: 1, retain: true });
      }
    } catch (err) {
      if (link !== this.link) return;
      this.onError(link, err);
      link.client.end(true); // close → reconnect with backoff
      return;
    }
    if (link !== this.link || this.current === 'stopping') return;
    this.current = 'online';
    this.ready = true;
    this.republishConditions(); // they changed while the birth was on its way
    this.d.hooks.online(link);
  }

  /** Birth, then online status, then the retained states (in that order, each acknowledged). Returns the states sent. */
  private async announce(link: Link): Promise<Map<string, string>> {
    let info: z.output<typeof BirthInfo>;
    try {
      const raw = await this.d.birth();
      const strict = BirthInfo.safeParse(raw);
      if (strict.success) info = strict.data;
      else {
        // Publish what the contract knows; unknown keys are left out (and logged), other problems fall through.
        info = BirthInfoLenient.parse(raw);
        this.d.log.warn({ problems: formatIssues(strict.error) }, 'birth() returned keys outside the contract: left out');
      }
    } catch (err) {
      this.d.log.error({ err }, 'birth() failed or returned an invalid description; publishing a minimal birth');
      info = BirthInfo.parse({ agent_version: 'unknown', model: { name: 'unknown' }, config_hash: 'unknown', cameras: [], capabilities: [], last_reboot_reason: 'unknown' });
    }
    const birth: BirthPayload = {
      ...info,
      contract_version: CONTRACT_VERSION,
      session: this.session,
      ts: new Date().toISOString(),
      commands: this.d.commandNames(),
      broker: this.brokers.node,
    };
    const retain = { qos: 1, retain: true } as const;
    await this.publish(link, this.d.topics.birth, JSON.stringify(birth), retain);
    await this.publish(link, this.d.topics.status, JSON.stringify(this.statusPayload('online')), retain);
    const states = new Map(this.retained);
    await Promise.all([...states].map(([topic, text]) => this.publish(link, this.d.topics.resolve(topic), text, retain)));
    return states;
  }

  private onError(link: Link, err: unknown): void {
    if (link !== this.link) return;
    const e = classifyError(err, { url: this.brokers.node.url, protocol: this.d.config.protocol });
    this.linkError = e;
    this.recordError(e);
    // A known cause (refused login, unreachable broker, TLS) repeats on every retry: onClose reports it in one
    // line, without a stack trace. Only an unexpected error keeps its stack.
    if (e.code === 'MQTT_ERROR') this.d.log.error({ code: e.code, reason_code: e.reasonCode, err: e.cause ?? e, session: this.session }, e.message);
  }

  private onClose(link: Link): void {
    if (link !== this.link) return;
    const wasConnected = this.connectedSince !== null;
    // The backoff starts again from initial_ms only after a connection that held: a broker that accepts and
    // then drops us at once (duplicate client id, ACL) must not get a reconnect every initial_ms.
    if (this.connectedSince !== null && Date.now() - this.connectedSince >= STABLE_CONNECTION_MS) this.backoff.reset();
    this.ready = false;
    this.connectedSince = null;
    this.d.hooks.down();
    link.client.end(true);
    if (this.current === 'stopping' || this.current === 'stopped') return;
    this.current = 'offline';
    const url = this.brokers.node.url;
    if (wasConnected) {
      this.counters.disconnects++;
      if (!this.linkError) this.recordError(new UplinkError('CONNECTION_LOST', `connection to ${url} lost`));
    } else if (!this.linkError) {
      this.recordError(new UplinkError('NETWORK', `connection to ${url} closed before CONNACK`));
    }
    this.brokers.advance(); // round robin: the next attempt goes to the next node (the same one with a single URL)
    const delay = this.backoff.next();
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    const why = this.lastError ? `: ${this.lastError.message}` : '';
    const next = this.brokers.node;
    const where = next.nodes > 1 ? ` on ${next.url}` : '';
    this.d.log.warn(
      {
        session: this.session,
        reconnect_in_ms: delay,
        attempt: this.backoff.attempts,
        last_error: this.lastError?.code,
        reason_code: this.lastError?.reason_code ?? undefined,
        ...(next.nodes > 1 ? { next_node: next.index } : {}),
      },
      `${wasConnected ? 'uplink offline' : 'connection attempt failed'}${why}; retrying in ${(delay / 1000).toFixed(1)} s${where}`,
    );
    this.d.hooks.offline(this.linkError);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.reconnectAt = null;
  }

  private statusPayload(state: StatusPayload['state']): StatusPayload {
    const p: StatusPayload = { state, session: this.session, ts: new Date().toISOString() };
    if (state !== 'online') return p;
    this.conditionsSent = this.conditions.join();
    if (this.conditions.length > 0) p.conditions = [...this.conditions];
    return p;
  }

  private publish(link: Link, topic: string, payload: string, opts: IClientPublishOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      link.client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }
}
