// The health sampler: box figures on two timers (fast / slow), agent figures from the provider, one payload.
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthConfig } from '../../config/schema/index.js';
import {
  HEALTH_SCHEMA,
  type CameraHealth,
  type ClockHealth,
  type DetectorHealth,
  type HealthPayload,
  type HealthReason,
  type HealthSummary,
  type NetworkHealth,
  type OutboxHealth,
  type SystemHealth,
  type UplinkHealth,
} from '../../contract/health.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { assess, detectorStuck } from './assess.js';
import { withTimeout } from '../../core/time.js';
import type { AgentFigures } from './figures.js';
import { SystemHealthSources, type CpuLoadFigures, type DiskFigures, type HealthSources, type MemoryFigures, type SocFigures, type TemperatureFigures } from './sources.js';

export interface HealthSamplerOptions {
  config: HealthConfig;
  /** device.data_dir: the partition whose free space is reported. */
  dataDir: string;
  figures: AgentFigures;
  log: Logger;
  /** Default: SystemHealthSources (systeminformation, /sys, chronyc / timedatectl, vcgencmd). */
  sources?: HealthSources;
  /** Longest wait for one source call, ms. Default 5000. */
  callTimeoutMs?: number;
  /** Longest wait for the first sample in start(), ms. Default 2000. */
  firstSampleWaitMs?: number;
}

/** The watchdog's view: is the main loop doing its job? */
export interface LoopVerdict {
  healthy: boolean;
  reasons: string[];
}

interface FastFigures {
  cpu: CpuLoadFigures | null;
  temperature: TemperatureFigures | null;
  memory: MemoryFigures | null;
  uptime_s: number | null;
}

interface SlowFigures {
  at: string;
  disk: DiskFigures | null;
  network: NetworkHealth | null;
  clock: ClockHealth;
  soc: SocFigures | null;
}

const MB = 1024 * 1024;
const UNKNOWN_CLOCK: ClockHealth = { synced: null, offset_ms: null, source: 'unknown' };
const round1 = (n: number): number => Math.round(n * 10) / 10;

/**
 * Samples the box and the agent. Fast figures (CPU, temperature from thermal zones, memory, uptime) every
 * `interval_s`, slow ones (disk, network, clock sync, vcgencmd) every `slow_interval_s`; every source call is
 * asynchronous and bounded by a timeout, and nothing here runs on the frame path. Each fast sample composes a
 * payload with the provider's live figures and hands it to `onSample` listeners (the controller appends it to
 * the outbox).
 */
export class HealthSampler implements Module {
  readonly name = 'health';
  private readonly sources: HealthSources;
  private readonly log: Logger;
  private readonly callTimeoutMs: number;
  private fast: FastFigures = { cpu: null, temperature: null, memory: null, uptime_s: null };
  private slow: SlowFigures | undefined;
  private last: HealthPayload | undefined;
  private readonly listeners = new Set<(p: HealthPayload) => void>();
  private fastTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private loopDelay: IntervalHistogram | undefined;
  private fastRunning: Promise<HealthPayload> | undefined;
  private slowRunning: Promise<void> | undefined;
  private readonly failing = new Set<string>();
  private readonly conditions = new Map<string, HealthReason>();
  private stopped = false;

  constructor(private readonly opts: HealthSamplerOptions) {
    this.sources = opts.sources ?? new SystemHealthSources();
    this.log = opts.log.child({ mod: 'health' });
    this.callTimeoutMs = opts.callTimeoutMs ?? 5000;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.stopped = false;
    this.loopDelay = monitorEventLoopDelay({ resolution: 20 });
    this.loopDelay.enable();
    const cfg = this.opts.config;
    const onError = (err: unknown): void => this.log.error({ err }, 'health sample failed');
    this.fastTimer = setInterval(() => void this.refresh().catch(onError), cfg.interval_s * 1000);
    this.slowTimer = setInterval(() => void this.sampleSlow().catch(onError), cfg.slow_interval_s * 1000);
    this.fastTimer.unref();
    this.slowTimer.unref();
    // The first sample (slow first, so the first payload is complete) runs in the background; start() waits
    // for it only briefly, so a slow probe never delays the agent's start.
    const first = this.refresh({ slow: true }).catch(onError);
    await Promise.race([first, sleep(this.opts.firstSampleWaitMs ?? 2000, undefined, { signal, ref: false }).catch(() => undefined)]);
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.fastTimer);
    clearInterval(this.slowTimer);
    this.fastTimer = this.slowTimer = undefined;
    this.loopDelay?.disable();
    // In-flight probes are bounded by their timeouts; do not wait for them.
    return Promise.resolve();
  }

  /** The last sampled payload (the one last handed to onSample); undefined before the first sample. */
  latest(): HealthPayload | undefined {
    return this.last;
  }

  /**
   * A payload composed now: the box figures of the last samples with the provider's live figures. Cheap (no
   * I/O): what /metrics, /healthz and /api/status serve.
   */
  current(): HealthPayload {
    return this.compose(new Date(), false);
  }

  /** Called with every sampled payload; returns the unsubscribe function. */
  onSample(cb: (p: HealthPayload) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /**
   * A condition a module owns and reports itself (the status server cannot bind its port…): listed in every
   * payload until the module clears it with `undefined`.
   */
  setCondition(key: string, reason: HealthReason | undefined): void {
    if (reason) this.conditions.set(key, reason);
    else this.conditions.delete(key);
  }

  /** Summary for the retained birth message. */
  summary(): HealthSummary {
    const p = this.last ?? this.current();
    return {
      schema: HEALTH_SCHEMA,
      ts: this.last ? this.last.ts : null,
      status: p.status,
      reasons: [...new Set(p.reasons.map((r) => r.code))],
      cpu_cores: p.system.cpu_cores,
      memory_total_mb: p.system.memory_total_mb,
      disk_total_mb: p.system.disk_total_mb,
      disk_free_mb: p.system.disk_free_mb,
      soc_temp_c: p.system.soc_temp_c,
      clock_synced: p.system.clock.synced,
      network_interface: p.system.network?.interface ?? null,
      ip4: p.system.network?.ip4 ?? null,
    };
  }

  /**
   * Whether the system clock is synchronised, from the last slow sample: true / false, or null when unknown
   * (no chronyc or timedatectl answered, or not sampled yet). Analytics flags events captured while false.
   */
  clockSynced(): boolean | null {
    return this.slow?.clock.synced ?? null;
  }

  /**
   * For the systemd watchdog: healthy unless the detector is stuck (live figures) or the event loop has been
   * lagging badly (99th percentile above 5 × event_loop_lag_warn_ms since the last sample).
   */
  mainLoopHealthy(): LoopVerdict {
    const reasons: string[] = [];
    try {
      if (detectorStuck(this.opts.figures.detector(), this.opts.figures.cameras(), this.opts.config)) reasons.push('detector stuck');
    } catch (err) {
      this.logFailure('watchdog figures', err);
    }
    const lag = this.lagMs().p99;
    const limit = 5 * this.opts.config.event_loop_lag_warn_ms;
    if (lag > limit) reasons.push(`event loop lag ${Math.round(lag)} ms > ${limit} ms`);
    return { healthy: reasons.length === 0, reasons };
  }

  /**
   * Samples now (fast sources; also slow ones with `slow: true`), emits and returns the payload. Concurrent
   * calls share one sample.
   */
  refresh(opts: { slow?: boolean } = {}): Promise<HealthPayload> {
    if (this.fastRunning) return this.fastRunning;
    const run = (async () => {
      if (opts.slow) await this.sampleSlow();
      await this.sampleFast();
      const payload = this.compose(new Date(), true);
      this.last = payload;
      if (!this.stopped) this.emit(payload);
      return payload;
    })().finally(() => {
      this.fastRunning = undefined;
    });
    this.fastRunning = run;
    return run;
  }

  private emit(payload: HealthPayload): void {
    for (const cb of this.listeners) {
      try {
        cb(payload);
      } catch (err) {
        this.log.error({ err }, 'health listener failed');
      }
    }
  }

  private async sampleFast(): Promise<void> {
    const [cpu, temperature, memory, uptime_s] = await Promise.all([
      this.call('cpuLoad', () => this.sources.cpuLoad()),
      this.call('temperature', () => this.sources.temperature()),
      this.call('memory', () => this.sources.memory()),
      this.call('uptime', () => this.sources.uptime()),
    ]);
    this.fast = { cpu, temperature, memory, uptime_s };
  }

  /** Slow probes; overlapping runs are skipped (each call is bounded, so a run ends). */
  private sampleSlow(): Promise<void> {
    this.slowRunning ??= (async () => {
      const [disk, network, clock, soc] = await Promise.all([
        this.call('disk', () => this.sources.disk(this.opts.dataDir)),
        this.call('network', () => this.sources.network()),
        this.call('clock', () => this.sources.clock()),
        this.call('soc', () => this.sources.soc()),
      ]);
      this.slow = { at: new Date().toISOString(), disk, network, clock: clock ?? UNKNOWN_CLOCK, soc };
    })().finally(() => {
      this.slowRunning = undefined;
    });
    return this.slowRunning;
  }

  /** One source call: bounded, never rejects; a failure is logged once until the source recovers. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      const v = await withTimeout(Promise.resolve().then(fn), this.callTimeoutMs, what);
      if (this.failing.delete(what)) this.log.info({ source: what }, 'health source recovered');
      return v;
    } catch (err) {
      this.logFailure(what, err);
      return null;
    }
  }

  private logFailure(what: string, err: unknown): void {
    if (this.failing.has(what)) return;
    this.failing.add(what);
    this.log.warn({ source: what, err: errorMessage(err) }, 'health source failed');
  }

  private lagMs(): { p99: number; max: number } {
    const h = this.loopDelay;
    if (!h || h.count === 0) return { p99: 0, max: 0 };
    const p99 = h.percentile(99) / 1e6;
    const max = h.max / 1e6;
    return { p99: Number.isFinite(p99) ? round1(p99) : 0, max: Number.isFinite(max) ? round1(max) : 0 };
  }

  private compose(now: Date, resetLag: boolean): HealthPayload {
    const unavailable: string[] = [];
    const figures = this.opts.figures;
    const section = <T>(name: string, fn: () => T, fallback: T): T => {
      try {
        const v = fn();
        if (this.failing.delete(`figures.${name}`)) this.log.info({ section: name }, 'figures available again');
        return v;
      } catch (err) {
        unavailable.push(name);
        this.logFailure(`figures.${name}`, err);
        return fallback;
      }
    };
    const cameras = section('cameras', () => figures.cameras().map(pickCamera), []);
    const detector = section('detector', () => pickDetector(figures.detector()), null);
    const outbox = section('outbox', () => pickOutbox(figures.outbox()), null);
    const uplink = section('uplink', () => pickUplink(figures.uplink()), null);
    const evidence = figures.evidence ? section('evidence', () => figures.evidence!(), null) : undefined;

    const f = this.fast;
    const sl = this.slow;
    const socTemp = f.temperature ?? sl?.soc?.temperature ?? null;
    const cores = Math.max(1, f.cpu?.per_core_pct.length || os.availableParallelism());
    const system: SystemHealth = {
      cpu_load_pct: f.cpu ? clampPct(f.cpu.total_pct) : null,
      cpu_core_load_pct: f.cpu ? f.cpu.per_core_pct.map(clampPct) : [],
      cpu_cores: cores,
      load_avg_1m: round2(os.loadavg()[0] ?? 0),
      soc_temp_c: socTemp ? socTemp.celsius : null,
      soc_temp_source: socTemp ? socTemp.source : null,
      throttled: sl?.soc?.throttled ?? null,
      memory_total_mb: f.memory?.total_mb ?? null,
      memory_used_mb: f.memory?.used_mb ?? null,
      memory_available_mb: f.memory?.available_mb ?? null,
      swap_used_mb: f.memory?.swap_used_mb ?? null,
      disk_path: sl?.disk?.path ?? this.opts.dataDir,
      disk_total_mb: sl?.disk?.total_mb ?? null,
      disk_free_mb: sl?.disk?.free_mb ?? null,
      uptime_s: f.uptime_s,
      network: sl?.network ?? null,
      clock: sl?.clock ?? UNKNOWN_CLOCK,
    };
    const lag = this.lagMs();
    if (resetLag) this.loopDelay?.reset();
    const mem = process.memoryUsage();
    const agent = {
      uptime_s: Math.round(process.uptime()),
      rss_mb: round1(mem.rss / MB),
      heap_used_mb: round1(mem.heapUsed / MB),
      event_loop_lag_ms: lag.p99,
      event_loop_lag_max_ms: lag.max,
    };
    const { status, reasons } = assess({ system, agent, cameras, detector, outbox, uplink, unavailable, reported: [...this.conditions.values()] }, this.opts.config);
    return {
      schema: HEALTH_SCHEMA,
      ts: now.toISOString(),
      slow_sampled_at: sl?.at ?? null,
      status,
      reasons,
      system,
      agent,
      cameras,
      detector,
      outbox,
      uplink,
      ...(evidence !== undefined ? { evidence } : {}),
    };
  }
}

// Providers are implemented elsewhere: copy only the contract's keys and keep numbers finite and >= 0, so a
// stray NaN or extra field never makes the payload invalid.
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
const int = (v: unknown): number => Math.round(num(v));
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? Math.max(0, v) : null);
const round2 = (n: number): number => Math.round(n * 100) / 100;
const clampPct = (n: number): number => Math.min(100, Math.max(0, Number.isFinite(n) ? n : 0));
const text = (v: unknown, max = 500): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, max) : undefined);

function pickCamera(c: CameraHealth): CameraHealth {
  const out: CameraHealth = {
    id: String(c.id),
    status: c.status,
    camera_fps: round2(num(c.camera_fps)),
    process_fps: round2(num(c.process_fps)),
    skipped_fps: round2(num(c.skipped_fps)),
    motion_skipped_fps: round2(num(c.motion_skipped_fps)),
    reconnects_last_hour: int(c.reconnects_last_hour),
    stalls_last_hour: int(c.stalls_last_hour),
    last_frame_age_s: numOrNull(c.last_frame_age_s),
  };
  const reason = text(c.reason);
  if (reason !== undefined) out.reason = reason;
  return out;
}

function pickDetector(d: DetectorHealth): DetectorHealth {
  return {
    state: d.state,
    inference_ms_mean: numOrNull(d.inference_ms_mean),
    inference_ms_p95: numOrNull(d.inference_ms_p95),
    detection_fps: round2(num(d.detection_fps)),
    restarts: int(d.restarts),
    last_inference_age_s: numOrNull(d.last_inference_age_s),
  };
}

function pickOutbox(o: OutboxHealth): OutboxHealth {
  const out: OutboxHealth = { depth: int(o.depth), oldest_unsent_age_s: numOrNull(o.oldest_unsent_age_s), evicted: int(o.evicted) };
  const q = text(o.quarantined_file, 1000);
  if (q !== undefined) out.quarantined_file = q;
  return out;
}

function pickUplink(u: UplinkHealth): UplinkHealth {
  const out: UplinkHealth = { connected: Boolean(u.connected), state: String(u.state), publish_rate_per_s: round2(num(u.publish_rate_per_s)), session: int(u.session) };
  const e = text(u.last_error);
  if (e !== undefined) out.last_error = e;
  if (u.broker) out.broker = { url: String(u.broker.url).slice(0, 500), index: int(u.broker.index), nodes: Math.max(1, int(u.broker.nodes)) };
  if (u.failovers !== undefined) out.failovers = int(u.failovers);
  return out;
}
