// The MQTT uplink module: a session (connect, Will, birth / online / stopped, reconnect with backoff, failover
// between the broker nodes of mqtt.urls), the drain of the outbox through an in-flight window (ack after PUBACK;
// rows unacknowledged when a connection ends are sent again on the next), and commands with request/response.
// This file wires them together; each part owns its state (session.ts, brokers.ts, drain.ts, command-transport.ts).
import { EventEmitter } from 'node:events';
import type { Outbox } from '../../buffer/outbox.js';
import type { MqttConfig } from '../../config/schema/index.js';
import type { BirthInfo } from '../../contract/birth.js';
import type { BrokerNode } from '../../contract/health.js';
import { COMMANDS } from '../../contract/commands.js';
import type { StatusCondition } from '../../contract/status.js';
import { baseTopic, topicsFor, type Topics } from '../../contract/topics.js';
import { AgentError } from '../../core/errors.js';
import type { Logger, LogLevel } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { CommandRegistry, type AgentCommands } from '../commands/registry.js';
import { registerUplinkCommands } from '../commands/uplink-commands.js';
import { CommandTransport, type CommandStats } from './command-transport.js';
import { Drain, type DrainStats } from './drain.js';
import type { UplinkError } from './errors.js';
import { UplinkSession, type SessionStats, type UplinkState } from './session.js';

export type { UplinkState } from './session.js';

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
  /** Longest time a clean stop spends delivering committed rows before `stopped`, ms. Default STOP_DRAIN_MS (3 s). */
  stopDrainMs?: number;
}

export type UplinkStats = Omit<SessionStats, 'state'> &
  DrainStats & {
    state: UplinkState;
    protocol: 4 | 5;
    commands: CommandStats;
  };

export interface PublishNowOptions {
  retain?: boolean;
}

interface UplinkEvents {
  /** Connected, birth and online published: draining starts. */
  online: [session: number];
  /** Connection lost or attempt failed. */
  offline: [error: UplinkError | undefined];
}

/**
 * Sends only from the outbox, acknowledges a row after its PUBACK, and keeps at most `inflight_window` messages
 * unacknowledged. Live rows (appended since the connection came up) go first; the backlog follows oldest-first
 * per priority with `replayed: true`, optionally rate limited. Every Uplink answers ping, rebirth, resend and
 * set-log-level; other modules register the rest of the catalogue on `commands`.
 */
export class Uplink extends EventEmitter<UplinkEvents> implements Module {
  readonly name = 'uplink';
  readonly commands: AgentCommands;
  readonly topics: Topics;

  private readonly session: UplinkSession;
  private readonly drain: Drain;
  private readonly transport: CommandTransport;
  private unsubscribeCommit: (() => void) | undefined;
  private startedAt = 0;

  constructor(private readonly deps: UplinkDeps) {
    super();
    const { config, outbox, log } = deps;
    this.topics = topicsFor(baseTopic(config.topic_prefix, deps.device.site, deps.device.id));
    this.commands = new CommandRegistry(COMMANDS, log);
    this.drain = new Drain({ config, outbox, topics: this.topics, log, onError: (e) => this.session.recordError(e) });
    this.transport = new CommandTransport({ topics: this.topics, protocol: config.protocol, dispatcher: this.commands, client: () => this.session.client, log });
    this.session = new UplinkSession({
      config,
      clientId: config.client_id ?? `roadside-${deps.device.site}-${deps.device.id}`,
      topics: this.topics,
      outbox,
      birth: deps.birth,
      commandNames: () => this.commands.names(),
      log,
      random: deps.random,
      stopDrainMs: deps.stopDrainMs,
      hooks: {
        connected: (link, receiveMaximum) => {
          this.drain.connected(link.client, receiveMaximum);
          return this.transport.subscribe(link.client);
        },
        online: (link) => this.onOnline(link.session),
        stopping: (ms) => this.finish(ms),
        down: () => this.drain.disconnected(),
        offline: (err) => this.emit('offline', err),
        message: (_link, topic, payload, packet) => this.transport.onMessage(topic, payload, packet),
      },
    });
    registerUplinkCommands(this.commands, {
      uptimeS: () => Math.round((Date.now() - this.startedAt) / 1000),
      session: () => this.session.currentSession,
      lastSeq: () => outbox.nextSeq - 1,
      rebirth: () => this.session.rebirth(),
      resend: (from, to) => this.drain.resend(from, to),
      setLogLevel: (level) => this.setLogLevel(level),
    });
  }

  start(_signal?: AbortSignal): Promise<void> {
    if (this.session.state !== 'stopped') return Promise.resolve();
    if (!this.deps.outbox.isOpen) return Promise.reject(new AgentError('OUTBOX_NOT_OPEN', 'the uplink needs a started outbox'));
    try {
      this.session.start();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.startedAt = Date.now();
    this.unsubscribeCommit = this.deps.outbox.onCommit(() => this.drain.pump());
    return Promise.resolve();
  }

  /**
   * Clean shutdown: commits the rows appended by the modules stopped before (the pipelines' last events), delivers
   * everything committed within stopDrainMs, publishes `stopped`, disconnects (no Will).
   */
  async stop(): Promise<void> {
    await this.session.stop();
    this.unsubscribeCommit?.();
    this.unsubscribeCommit = undefined;
  }

  /** True when connected and birth published (messages flow). */
  get online(): boolean {
    return this.session.online;
  }

  get currentSession(): number {
    return this.session.currentSession;
  }

  /** The broker node in use (or being tried): its URL without credentials and its place in mqtt.urls. */
  get broker(): BrokerNode {
    return this.session.broker;
  }

  /**
   * Publishes a message that does not go through the outbox (camera status, command results), QoS 1.
   * `topic` is relative to the device base (e.g. `cameras/cam1/status`). Dropped when offline, except
   * retained ones: the latest per topic is kept and republished after each birth. Returns true if sent now.
   */
  publishNow(topic: string, payload: object, opts: PublishNowOptions = {}): boolean {
    return this.session.publishNow(topic, payload, opts.retain ?? false);
  }

  /**
   * Conditions carried by the retained `{base}/status` while online (e.g. `['disk_full']`; `[]` clears them).
   * Published again at once when they change while online.
   */
  setStatusConditions(conditions: readonly StatusCondition[]): void {
    this.session.setConditions(conditions);
  }

  /** Publishes birth, online status and the retained states again (the `rebirth` command). */
  rebirth(): Promise<number> {
    return this.session.rebirth();
  }

  stats(): UplinkStats {
    const { state, ...session } = this.session.stats();
    return { state, protocol: this.deps.config.protocol, ...session, ...this.drain.stats(), commands: this.transport.stats() };
  }

  private onOnline(session: number): void {
    this.drain.start();
    const d = this.drain.stats();
    this.deps.log.info(
      { url: this.session.broker.url, node: this.session.broker.index, session, window: d.window, live_from_seq: this.drain.liveFromSeq, backlog: this.deps.outbox.stats().depth_total },
      'uplink online',
    );
    this.emit('online', session);
  }

  /** The delivery of a clean stop (the session's `stopping` hook): still connected, no new publishNow. */
  private async finish(ms: number): Promise<void> {
    const outbox = this.deps.outbox;
    const t0 = Date.now();
    if (outbox.isOpen && !outbox.flush()) this.deps.log.warn('stopping: the outbox could not commit its last rows; it tries again when it closes');
    const left = await this.drain.finish(ms);
    const level = left > 0 ? 'warn' : 'info';
    this.deps.log[level]({ unsent: left, ms: Date.now() - t0, bound_ms: ms }, left > 0 ? 'stopping: rows left for the next start' : 'stopping: everything delivered');
  }

  private setLogLevel(level: LogLevel): string {
    if (this.deps.setLogLevel) return this.deps.setLogLevel(level);
    const previous = this.deps.log.level;
    this.deps.log.level = level;
    return previous;
  }
}
