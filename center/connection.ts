// The receiver's broker connection: connects with MQTT 5 or 3.1.1, subscribes the fleet's topics at every
// connect without a session, hands each message over, sends command requests, and disconnects once.
import mqtt, { type IClientOptions, type IClientPublishOptions, type IClientSubscribeOptions, type MqttClient } from 'mqtt';
import { baseFilter, topicsFor } from '../contract/topics.js';
import { AgentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { mqttClientOptions, readTlsFiles, type MqttTlsFiles } from '../core/mqtt-options.js';
import { settleWithin } from '../core/time.js';
import { brokerNodes } from './broker-urls.js';

export interface ConnectionOptions {
  /** The broker, or the nodes of a cluster: tried in turn, the next one at each reconnect (failover). */
  url: string | readonly string[];
  /** 5, or 4 (MQTT 3.1.1: no Response Topic, Session Expiry or Receive Maximum). */
  protocol: 4 | 5;
  client_id: string;
  username?: string | undefined;
  password?: string | undefined;
  tls?: MqttTlsFiles | undefined;
  /** 0: the session ends with the connection; otherwise the broker keeps it (on 3.1.1 for as long as it is configured to). */
  session_expiry_s: number;
  receive_maximum: number;
  /** Topic filters, subscribed at every connect without a session. */
  filters: Record<string, IClientSubscribeOptions>;
  /** Where MQTT 5 command responses come back (Response Topic); null on 3.1.1. */
  reply_topic: string | null;
  /**
   * Called after each message is handled; the message is acknowledged, and the next one read, only when `done` is
   * called (backpressure from slow sinks). Default: at once.
   */
  gate?: (done: () => void) => void;
}

export interface FleetFilterOptions {
  prefix: string;
  share?: string | undefined;
  sites?: string[] | undefined;
  reply_topic: string | null;
}

/**
 * What a receiver subscribes. Events and health may be shared (`$share/{group}/…`) and limited to some sites;
 * status, birth and camera states are retained availability data every receiver needs, so never shared.
 */
export function fleetFilters(o: FleetFilterOptions): Record<string, IClientSubscribeOptions> {
  const qos1: IClientSubscribeOptions = { qos: 1 };
  const fleet = topicsFor(baseFilter(o.prefix));
  const shared = (f: string): string => (o.share ? `$share/${o.share}/${f}` : f);
  // Retained availability first, so the table knows every box before the first event.
  const filters: Record<string, IClientSubscribeOptions> = { [fleet.status]: qos1, [fleet.birth]: qos1, [fleet.cameraStatus('+')]: qos1 };
  for (const site of o.sites?.length ? o.sites : ['+']) {
    const t = topicsFor(baseFilter(o.prefix, site));
    filters[shared(t.events('+'))] = qos1;
    filters[shared(t.health)] = qos1;
  }
  if (o.reply_topic) filters[o.reply_topic] = qos1;
  // Responses without a Response Topic (a 3.1.1 box, or this receiver on 3.1.1): matched by the id in the payload.
  filters[fleet.commandResult('resend')] = qos1;
  return filters;
}

export type MessageHandler = (topic: string, payload: Buffer, packet: { retain: boolean; correlationData?: Buffer | undefined }) => void;

/** CONNACK codes meaning "not this protocol version" (3.1.1 return code 1, MQTT 5 reason 0x84). */
const BAD_PROTOCOL = new Set([1, 132]);

export class BrokerConnection {
  connected = false;
  private client: MqttClient | undefined;
  private stopping: Promise<void> | undefined;
  private lastErrorLog = 0;

  constructor(
    private readonly o: ConnectionOptions,
    private readonly onMessage: MessageHandler,
    private readonly log: Logger,
  ) {}

  /** Connects and subscribes; resolves once subscribed. Rejects on a refused connection (credentials, TLS, protocol) or abort. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.stopping) return Promise.reject(new AgentError('CENTER_STOPPED', 'the receiver was stopped; create a new one'));
    if (this.client) return Promise.resolve();
    let opts: IClientOptions;
    let nodes: ReturnType<typeof brokerNodes>;
    try {
      nodes = brokerNodes(this.o.url);
      const v5: IClientOptions = { properties: { sessionExpiryInterval: this.o.session_expiry_s, receiveMaximum: this.o.receive_maximum } };
      opts = mqttClientOptions(
        { protocol: this.o.protocol, client_id: this.o.client_id, username: this.o.username, password: this.o.password, tls: this.o.tls, keepalive_s: 30 },
        {
          clean: this.o.session_expiry_s === 0,
          reconnectPeriod: 1000,
          connectTimeout: 10_000,
          ...(this.o.protocol === 5 ? v5 : {}),
          ...(nodes.servers ? { servers: nodes.servers } : {}),
        },
        readTlsFiles(this.o.tls, 'center'),
      );
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const client = mqtt.connect(nodes.url, opts);
    const url = nodes.label;
    this.client = client;
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, { retain: packet.retain, correlationData: packet.properties?.correlationData }));
    // mqtt.js sends the PUBACK, and reads the next packet, once this calls back.
    const gate = this.o.gate;
    if (gate) client.handleMessage = (_packet, callback) => gate(() => callback());
    client.on('close', () => {
      if (this.connected && !this.stopping) this.log.warn({ url }, 'center: connection to the broker lost; reconnecting');
      this.connected = false;
    });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => settle(new AgentError('ABORTED', 'center start aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      client.on('connect', (connack) => {
        this.connected = true;
        // With several nodes, mqtt.js has put the one it reached in its options.
        const node = nodes.servers ? `${client.options.protocol ?? ''}://${client.options.host ?? ''}:${client.options.port ?? ''}` : url;
        this.log.info({ url: node, client_id: this.o.client_id, protocol: this.o.protocol, session_present: connack.sessionPresent }, 'center: connected');
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
        if (!fatal || settled) return;
        const hint =
          this.o.protocol === 5 && typeof err.code === 'number' && BAD_PROTOCOL.has(err.code)
            ? '; the broker does not speak MQTT 5 (e.g. the demo\'s embedded broker): use protocol 4 (--protocol 4)'
            : '';
        settle(new AgentError('CENTER_CONNECT_REFUSED', `${url}: ${err.message}${hint}`));
      });
    });
  }

  /**
   * Publishes a command request (QoS 1). On MQTT 5 with a reply topic the response comes back there with `id` as
   * Correlation Data; otherwise the box answers on `{base}/cmd/{name}/result` with the id in the payload.
   */
  sendCommand(topic: string, body: { id: string } & Record<string, unknown>): void {
    const client = this.client;
    if (!client || !this.connected) return;
    const opts: IClientPublishOptions = { qos: 1, retain: false };
    if (this.o.protocol === 5 && this.o.reply_topic) opts.properties = { responseTopic: this.o.reply_topic, correlationData: Buffer.from(body.id) };
    client.publish(topic, JSON.stringify(body), opts, (err) => {
      if (err) this.log.debug({ err, topic }, 'center: command not acknowledged by the broker');
    });
  }

  /** Disconnects (at most 2 s for a clean DISCONNECT). Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= this.disconnect();
    return this.stopping;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      await settleWithin(client.endAsync(), 2000);
      if (!client.disconnected) client.end(true);
    }
    this.connected = false;
  }

  private async subscribe(client: MqttClient): Promise<void> {
    const granted = await client.subscribeAsync(this.o.filters);
    const refused = granted.filter((g) => g.qos >= 128);
    if (refused.length) throw new AgentError('CENTER_SUBSCRIBE_REFUSED', `subscriptions refused: ${refused.map((g) => `${g.topic} (${g.qos})`).join(', ')}`);
  }
}
