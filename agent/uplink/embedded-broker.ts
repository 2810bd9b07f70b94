// Embedded MQTT 3.1.1 broker (aedes) for the demo: plain MQTT on 127.0.0.1 only, at the port of mqtt.url.
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import type { MqttConfig } from '../../config/schema/index.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Module } from '../module.js';

const HOST = '127.0.0.1';

/** Does nothing unless `mqtt.embedded_broker` is true. aedes speaks MQTT 3.1.1 only: use `mqtt.protocol: 4`. */
export class EmbeddedBroker implements Module {
  readonly name = 'embedded-broker';
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

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
    const broker = await Aedes.createBroker();
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    broker.on('clientError', (client, err) => this.log.debug({ client: client.id, err }, 'embedded broker: client error'));
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

  async stop(): Promise<void> {
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
