// A box serving evidence packages over a real broker, for the evidence delivery test and the evidence fetch
// benchmark: the real Outbox and Uplink with the agent's own `evidence` command handler (agent/commands/evidence.ts)
// on an evidence directory, fed with live events stamped with the time they were appended, and a watcher on the
// broker that records when those events arrive and which evidence requests the center sent.
import type { MqttClient } from 'mqtt';
import { registerEvidence } from '../agent/commands/evidence.js';
import { Uplink } from '../agent/uplink/uplink.js';
import { Outbox } from '../buffer/outbox.js';
import { MqttSchema } from '../config/schema/mqtt.js';
import { OutboxSchema } from '../config/schema/outbox.js';
import type { BirthInfo } from '../contract/birth.js';
import { silentLogger } from '../core/log.js';
import { percentile } from '../inference/analytics/speed.js';

export interface EvidenceBoxOptions {
  /** Broker URL (testkit/mosquitto.ts `.url`). */
  url: string;
  site: string;
  device: string;
  /** The evidence directory served: packages are `<dir>/<event id>/` (testkit/evidence-packages.ts). */
  dir: string;
  /** The outbox database file. */
  outboxPath: string;
  /** The handler's byte rate; default the agent's (EVIDENCE_RATE_BYTES_S). */
  rate_bytes_s?: number;
  onAcknowledged?: (eventId: string) => void;
}

const BIRTH: BirthInfo = { agent_version: 't', model: { name: 'm' }, config_hash: 'h', cameras: [], capabilities: [], last_reboot_reason: 'test' };

/** A box online on the broker, serving `evidence` from its directory; `startEvents` adds live traffic. */
export class EvidenceBox {
  /** When each live event was appended to the outbox, epoch ms, in order. */
  readonly appended: number[] = [];
  private producer: NodeJS.Timeout | undefined;
  private eventNo = 0;

  private constructor(
    readonly outbox: Outbox,
    readonly uplink: Uplink,
  ) {}

  static async start(o: EvidenceBoxOptions): Promise<EvidenceBox> {
    // A 10 ms group commit: event latency is then the uplink's and the broker's, not the outbox's batching.
    const outbox = new Outbox(OutboxSchema.parse({ path: o.outboxPath, commit_interval_ms: 10 }), silentLogger());
    await outbox.start(new AbortController().signal);
    const uplink = new Uplink({
      config: MqttSchema.parse({ url: o.url, protocol: 5, backoff: { initial_ms: 100 } }),
      device: { site: o.site, id: o.device },
      outbox,
      log: silentLogger(),
      birth: () => BIRTH,
    });
    registerEvidence(uplink.commands, { dir: () => o.dir, rate_bytes_s: o.rate_bytes_s, onAcknowledged: o.onAcknowledged });
    const online = new Promise<void>((resolve) => uplink.once('online', () => resolve()));
    await uplink.start(new AbortController().signal);
    await online;
    return new EvidenceBox(outbox, uplink);
  }

  /** Appends live events (`events/cam1`, priority event, payload `{n, appended_ms}`) at `rate_per_s` until stopEvents. */
  startEvents(rate_per_s: number): void {
    this.stopEvents();
    this.producer = setInterval(() => {
      const n = ++this.eventNo;
      const at = Date.now();
      this.appended.push(at);
      this.outbox.append({ id: `ev-${n}`, topic: 'events/cam1', priority: 'event', payload: { n, appended_ms: at } });
    }, 1000 / rate_per_s);
  }

  stopEvents(): void {
    clearInterval(this.producer);
    this.producer = undefined;
  }

  /** Events appended in [from, to), epoch ms. */
  appendedBetween(from: number, to: number): number {
    return this.appended.filter((t) => t >= from && t < to).length;
  }

  async stop(): Promise<void> {
    this.stopEvents();
    await this.uplink.stop();
    await this.outbox.stop();
  }
}

/** A live event as it arrived at the watcher. */
export interface Delivered {
  appended_ms: number;
  received_ms: number;
}

/** An `evidence` request seen on the broker (the center's ask): the file and offset of a chunk, none for the manifest. */
export interface EvidenceRequest {
  file?: string | undefined;
  offset?: number | undefined;
  at: number;
}

export interface BoxWatch {
  /** Live events of the box (EvidenceBox.startEvents), in arrival order. */
  readonly delivered: Delivered[];
  /** Evidence requests to the box, in order. */
  readonly requests: EvidenceRequest[];
  /** Events appended in [from, to), epoch ms, that arrived. */
  deliveredBetween(from: number, to: number): Delivered[];
}

/** Subscribes `client` to the box's events and evidence requests (`base` = `{prefix}/{site}/{device}`) and records them. */
export async function watchEvidenceBox(client: MqttClient, base: string): Promise<BoxWatch> {
  const delivered: Delivered[] = [];
  const requests: EvidenceRequest[] = [];
  client.on('message', (topic, payload) => {
    const now = Date.now();
    if (topic.startsWith(`${base}/events/`)) {
      const body = JSON.parse(payload.toString()) as { appended_ms: number };
      delivered.push({ appended_ms: body.appended_ms, received_ms: now });
    } else if (topic === `${base}/cmd/evidence`) {
      const body = JSON.parse(payload.toString()) as { file?: string; offset?: number };
      requests.push({ file: body.file, offset: body.offset, at: now });
    }
  });
  await client.subscribeAsync([`${base}/events/#`, `${base}/cmd/evidence`], { qos: 1 });
  return { delivered, requests, deliveredBetween: (from, to) => delivered.filter((d) => d.appended_ms >= from && d.appended_ms < to) };
}

export interface LatencySummary {
  events: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Append-to-arrival latency of delivered events (percentiles interpolated); NaN figures when there are none. */
export function latencySummary(ds: readonly Delivered[]): LatencySummary {
  const lat = ds.map((d) => d.received_ms - d.appended_ms);
  const at = (p: number): number => percentile(lat, p) ?? Number.NaN;
  return { events: lat.length, p50_ms: at(0.5), p95_ms: at(0.95), p99_ms: at(0.99), max_ms: lat.length ? Math.max(...lat) : Number.NaN };
}
