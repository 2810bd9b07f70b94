// Simulated boxes for fleet, cluster and center tests: valid synthetic events and health, and a box made of the
// real Outbox and Uplink (so what is measured is what runs on a pole).
import { join } from 'node:path';
import { Uplink } from '../agent/uplink/uplink.js';
import { Outbox } from '../buffer/outbox.js';
import { MqttSchema } from '../config/schema/mqtt.js';
import { OutboxSchema } from '../config/schema/outbox.js';
import type { BirthInfo } from '../contract/birth.js';
import { makeEvent, PRIORITY, uuidv7, type EventDraft } from '../contract/event.js';
import { HEALTH_SCHEMA, type HealthPayload } from '../contract/health.js';
import { relativeTopic } from '../contract/topics.js';
import type { Logger } from '../core/log.js';

export interface SimDeviceOptions {
  inflight_window: number;
  drain_rate_per_s?: number;
  /** 5 (default) or 4 (MQTT 3.1.1, e.g. NATS). */
  protocol?: 4 | 5;
  backoff: { initial_ms: number; max_ms: number; jitter: number };
  health_interval_ms: number;
}

/** The site of every simulated box. */
export const SIM_SITE = 'sim';
const BIRTH: BirthInfo = {
  agent_version: 'fleet-sim',
  model: { name: 'none' },
  config_hash: 'fleet-sim',
  cameras: [{ id: 'cam1' }],
  capabilities: [],
  last_reboot_reason: 'power_on',
};

/** A valid traffic event draft (mostly line crossings, some wrong-way violations and flow statistics). */
export function syntheticEvent(site: string, device: string, i: number, now = Date.now()): EventDraft {
  const env = { site, device, camera: 'cam1', captured_at_ms: now, mono_ms: performance.now(), clock_synced: true };
  const object = { track_id: 1 + (i % 100_000), class: i % 7 === 0 ? 'truck' : 'car', score: 0.8, box: [400, 230, 520, 300] as [number, number, number, number] };
  if (i % 20 === 7) {
    return makeEvent({ type: 'wrong_way', ...env, object, rule: { kind: 'zone', id: 'ramp' }, attributes: { distance_px: 120, allowed_direction: [0, 1], heading: [0, -1] } });
  }
  if (i % 20 === 13) {
    const t = new Date(now).toISOString();
    const stats = { volume: 12, volume_by_class: { car: 11, truck: 1 }, speed_samples: 0 };
    return makeEvent({ type: 'flow', ...env, rule: { kind: 'line', id: 'stop-nb' }, attributes: { bin_start: t, bin_end: t, observed_s: 60, occupancy: 0.1, in: stats, out: stats } });
  }
  return makeEvent({
    type: 'line_crossing',
    ...env,
    object,
    rule: { kind: 'line', id: 'stop-nb' },
    attributes: { direction: i % 2 ? 'in' : 'out', point_px: [460, 300], crossed_at: new Date(now).toISOString() },
  });
}

/** A valid health body (HealthPayload plus the message id; the uplink adds seq, sent_at, replayed). */
export function syntheticHealth(now: number, backlog: number, session: number): HealthPayload & { id: string } {
  const ts = new Date(now).toISOString();
  return {
    schema: HEALTH_SCHEMA,
    ts,
    slow_sampled_at: ts,
    status: 'ok',
    reasons: [],
    system: {
      cpu_load_pct: 40,
      cpu_core_load_pct: [40, 40, 40, 40],
      cpu_cores: 4,
      load_avg_1m: 1.2,
      soc_temp_c: 55 + (now % 100) / 10,
      soc_temp_source: 'sim',
      throttled: null,
      memory_total_mb: 3800,
      memory_used_mb: 900,
      memory_available_mb: 2900,
      swap_used_mb: 0,
      disk_path: '/var/lib/roadside',
      disk_total_mb: 29_000,
      disk_free_mb: 20_000,
      uptime_s: 1000,
      network: null,
      clock: { synced: true, offset_ms: 0.5, source: 'chronyc' },
    },
    agent: { uptime_s: 100, rss_mb: 300, heap_used_mb: 50, event_loop_lag_ms: 1, event_loop_lag_max_ms: 5 },
    cameras: [
      { id: 'cam1', status: 'online', camera_fps: 10, process_fps: 10, skipped_fps: 0, motion_skipped_fps: 0, reconnects_last_hour: 0, stalls_last_hour: 0, last_frame_age_s: 0.1 },
    ],
    detector: null,
    outbox: { depth: backlog, oldest_unsent_age_s: null, evicted: 0 },
    uplink: { connected: true, state: 'online', publish_rate_per_s: 5, session },
    id: uuidv7(now),
  };
}

/** One simulated box: its own SQLite outbox file and MQTT uplink (one broker or a list), fed with synthetic events and health. */
export class SimDevice {
  readonly outbox: Outbox;
  readonly uplink: Uplink;
  readonly key: string;
  /** Seqs of the health reports it appended (a receiver stores them apart from events). */
  readonly healthSeqs = new Set<number>();
  private carry = 0;
  private n = 0;
  private nextHealth: number;

  constructor(
    readonly id: string,
    dir: string,
    url: string | string[],
    o: SimDeviceOptions,
    log: Logger,
    readonly site = SIM_SITE,
  ) {
    this.key = `${site}/${id}`;
    this.outbox = new Outbox(OutboxSchema.parse({ path: join(dir, `${id}.db`), synchronous: 'NORMAL' }), log);
    const broker = Array.isArray(url) ? { urls: url } : { url };
    this.uplink = new Uplink({
      config: MqttSchema.parse({ ...broker, protocol: o.protocol ?? 5, inflight_window: o.inflight_window, drain_rate_per_s: o.drain_rate_per_s ?? 0, backoff: o.backoff, keepalive_s: 10 }),
      device: { site, id },
      outbox: this.outbox,
      log,
      birth: () => BIRTH,
    });
    this.nextHealth = Date.now() + Math.random() * o.health_interval_ms;
  }

  /** Appends the events due after dt ms at `rate` per s, and a health report when due. */
  produce(dt_ms: number, rate: number, health_interval_ms: number, now: number): void {
    this.carry += (rate * dt_ms) / 1000;
    while (this.carry >= 1) {
      this.carry--;
      this.appendEvent(now);
    }
    if (now >= this.nextHealth) {
      this.nextHealth += health_interval_ms;
      const h = syntheticHealth(now, 0, this.uplink.currentSession);
      this.healthSeqs.add(this.outbox.append({ id: h.id, topic: relativeTopic.health, priority: 'health', payload: h }));
    }
  }

  /** Appends `n` events at once (a backlog). */
  burst(n: number, now = Date.now()): void {
    for (let i = 0; i < n; i++) this.appendEvent(now);
  }

  private appendEvent(now: number): void {
    const ev = syntheticEvent(this.site, this.id, this.n++, now);
    this.outbox.append({ id: ev.id, topic: relativeTopic.events(ev.camera), priority: PRIORITY[ev.type], payload: ev });
  }

  /** Seqs issued so far (1..appended). */
  get appended(): number {
    return this.outbox.nextSeq - 1;
  }

  /** Every appended row acknowledged by the broker. */
  get delivered(): boolean {
    return this.outbox.stats().depth_total === 0 && this.uplink.stats().inflight === 0;
  }
}
