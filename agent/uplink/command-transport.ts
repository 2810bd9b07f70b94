// Commands over MQTT: the subscription to `{base}/cmd/+`, what is refused before a handler runs (retained
// requests, Response Topics outside the reply namespace), and the publishing of responses.
import type { IClientPublishOptions, IClientSubscribeOptions, IPublishPacket, MqttClient } from 'mqtt';
import { commandError, responseTopicRefused, type CommandResponse } from '../../contract/command.js';
import { isPermittedResponseTopic, type Topics } from '../../contract/topics.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { requestId, type CommandDispatcher } from '../commands/registry.js';
import { UplinkError } from './errors.js';

export interface CommandStats {
  /** Requests handled (answered), refused ones included. */
  received: number;
  ok: number;
  error: number;
  /** Messages not acted on and not answered: other topics below `cmd/`, and retained requests. */
  ignored: number;
  /** Retained requests not executed (also counted in `ignored`). */
  retained_refused: number;
  /** Requests refused because their Response Topic was outside the reply namespace (also counted in `error`). */
  response_topic_refused: number;
}

export interface CommandTransportDeps {
  topics: Topics;
  protocol: 4 | 5;
  dispatcher: CommandDispatcher;
  /** The client of the current connection when connected: responses are not kept while offline. */
  client: () => MqttClient | undefined;
  log: Logger;
}

const LOGGED_TOPIC_CHARS = 200;

export class CommandTransport {
  private readonly counters: CommandStats = { received: 0, ok: 0, error: 0, ignored: 0, retained_refused: 0, response_topic_refused: 0 };

  constructor(private readonly d: CommandTransportDeps) {}

  /**
   * Subscribes to the command topics. MQTT 5: No Local, and Retain As Published so that a retained request keeps
   * its retain flag on live delivery and can be refused (without it the broker clears the flag). MQTT 3.1.1
   * brokers clear the flag on live delivery (3.1.1 §3.3.1.3): only retained requests replayed at subscribe
   * time can be recognised there.
   */
  subscribe(client: MqttClient): Promise<void> {
    const filter = this.d.topics.commandFilter;
    const opts: IClientSubscribeOptions = { qos: 1, ...(this.d.protocol === 5 ? { nl: true, rap: true } : {}) };
    return new Promise<void>((resolve, reject) => {
      client.subscribe(filter, opts, (err, granted) => {
        if (err) reject(err);
        else if (granted?.some((g) => g.qos >= 128)) reject(new UplinkError('MQTT_NOT_AUTHORIZED', `subscription to ${filter} refused`, granted[0]?.qos));
        else resolve();
      });
    });
  }

  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const name = this.d.topics.commandName(topic);
    if (name === undefined) {
      this.counters.ignored++;
      this.d.log.debug({ topic: topic.slice(0, LOGGED_TOPIC_CHARS) }, 'message on an unexpected topic ignored');
      return;
    }
    if (packet.retain) {
      // A retained command would run again at every connect, and once more for whoever publishes it live.
      this.counters.ignored++;
      this.counters.retained_refused++;
      this.d.log.warn({ command: name.slice(0, 64), topic }, 'retained command not executed (commands must not be published with retain)');
      return;
    }
    this.counters.received++;
    const props = this.d.protocol === 5 ? packet.properties : undefined;
    const requested = props?.responseTopic;
    const correlationData = props?.correlationData;
    const fallback = this.d.topics.commandResult(name);
    if (requested !== undefined && requested !== fallback && !isPermittedResponseTopic(this.d.topics.base, requested)) {
      this.counters.response_topic_refused++;
      const shown = requested.slice(0, LOGGED_TOPIC_CHARS);
      this.d.log.warn({ command: name.slice(0, 64), response_topic: shown }, 'command refused: response topic outside the reply namespace');
      this.respond(name, responseTopicRefused(shown, this.d.topics.reply, requestId(payload)), fallback, correlationData);
      return;
    }
    void this.run(name, payload, requested ?? fallback, correlationData);
  }

  stats(): CommandStats {
    return { ...this.counters };
  }

  private async run(name: string, payload: Buffer, dest: string, correlationData: Buffer | undefined): Promise<void> {
    const t0 = performance.now();
    const response = await this.d.dispatcher.execute(name, payload).catch((err: unknown) => commandError('HANDLER_FAILED', errorMessage(err)));
    const level = response.status === 'ok' ? 'info' : 'warn';
    this.d.log[level](
      {
        command: name.slice(0, 64),
        id: response.id,
        status: response.status,
        code: response.status === 'error' ? response.error.code : undefined,
        ms: Math.round(performance.now() - t0),
      },
      'command',
    );
    this.respond(name, response, dest, correlationData);
  }

  private respond(name: string, response: CommandResponse, dest: string, correlationData: Buffer | undefined): void {
    if (response.status === 'ok') this.counters.ok++;
    else this.counters.error++;
    const client = this.d.client();
    if (!client) return; // results are not kept while offline
    const opts: IClientPublishOptions = { qos: 1, retain: false };
    if (this.d.protocol === 5 && correlationData) opts.properties = { correlationData };
    client.publish(dest, JSON.stringify(response), opts, (err) => {
      if (err) this.d.log.debug({ err, command: name.slice(0, 64), dest }, 'command response not acknowledged');
    });
  }
}
