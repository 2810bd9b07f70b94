// Embedded MQTT 3.1.1 broker (aedes) for the demo: plain MQTT on 127.0.0.1 only, at the port of mqtt.url.
import { createServer, type Server, type Socket } from 'node:net';
import type { Aedes } from 'aedes';
import type { MqttConfig } from '../../config/schema/index.js';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';

const HOST = '127.0.0.1';
const SUMMARY_MS = 10_000;

/** Does nothing unless `mqtt.embedded_broker` is true. aedes speaks MQTT 3.1.1 only: use `mqtt.protocol: 4`. */
export class EmbeddedBroker implements Module {
  readonly name = 'embedded-broker';
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly tally = new Map<string, number>();
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: MqttConfig,
    private readonly log: Logger,
  ) {}

  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  async start(_signal?: AbortSignal): Promise<void> {
    if (!this.config.embedded_broker || this.server) return;
    const url = new URL(this.config.url);
    if (url.protocol !== 'mqtt:') throw new AgentError('EMBEDDED_BROKER', `the embedded broker serves plain mqtt:// only (got ${url.protocol}//)`);
    const port = url.port === '' ? 1883 : Number(url.port);
    if (this.config.protocol !== 4) {
      this.log.warn({ protocol: this.config.protocol }, 'the embedded broker speaks MQTT 3.1.1 only: set mqtt.protocol: 4');
    }
    // aedes is loaded here, not with the module: only the demo's config starts a broker.
    const { Aedes } = await import('aedes');
    const broker = await Aedes.createBroker();
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    broker.on('clientError', (client, err) => this.log.debug({ client: client.id, err }, 'embedded broker: client error'));
    // The demo has no center: show what a center subscriber would receive, each message at debug (the
    // terminal is not flooded at info) and a tally per topic kind every SUMMARY_MS at info.
    broker.on('publish', (packet, client) => {
      if (!client || packet.topic.startsWith('$SYS')) return;
      const summary = summarize(packet.payload);
      this.log.debug({ view: 'center', topic: packet.topic, retain: packet.retain, ...summary }, 'center received');
      const kind = packet.topic.split('/')[3] ?? 'other';
      this.tally.set(kind, (this.tally.get(kind) ?? 0) + 1);
    });
    this.summaryTimer = setInterval(() => this.logTally(), SUMMARY_MS);
    this.summaryTimer.unref();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: HOST, port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((r) => broker.close(() => r()));
      throw new AgentError('EMBEDDED_BROKER', `the embedded broker cannot listen on ${HOST}:${port}: ${(err as Error).message}`, { cause: err });
    }
    server.on('error', (err) => this.log.error({ err }, 'embedded broker server error'));
    this.broker = broker;
    this.server = server;
    this.log.info({ host: HOST, port: this.port, protocol: '3.1.1' }, 'embedded MQTT broker listening (demo use)');
  }

  private logTally(): void {
    if (this.tally.size === 0) return;
    this.log.info({ view: 'center', received: Object.fromEntries(this.tally) }, 'center received (last 10 s; each message at debug)');
    this.tally.clear();
  }

  async stop(): Promise<void> {
    clearInterval(this.summaryTimer);
    this.logTally();
    const { server, broker } = this;
    this.server = undefined;
    this.broker = undefined;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    if (server) {
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
}

/** A few telling fields of a published payload, for the demo's console. */
export function summarize(payload: Buffer | string): Record<string, unknown> {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(payload.toString()) as Record<string, unknown>;
  } catch {
    return { bytes: payload.length };
  }
  const pick = (keys: string[]) => Object.fromEntries(keys.filter((k) => body[k] !== undefined).map((k) => [k, body[k]]));
  if (body.schema === 'roadside.event/1') {
    const object = body.object as { track_id?: number; class?: string; speed_kmh?: number } | undefined;
    const rule = body.rule as { id?: string } | undefined;
    const attributes = body.attributes as { direction?: string } | undefined;
    return {
      ...pick(['seq', 'type', 'replayed']),
      ...(object ? { object: `${object.class ?? '?'}#${object.track_id ?? '?'}` } : {}),
      ...(rule?.id ? { rule: rule.id } : {}),
      ...(attributes?.direction ? { direction: attributes.direction } : {}),
      ...(object?.speed_kmh !== undefined ? { speed_kmh: object.speed_kmh } : {}),
    };
  }
  if (body.schema === 'roadside.health/1') return pick(['seq', 'status']);
  return pick(['state', 'session', 'camera', 'reason', 'status']);
}
