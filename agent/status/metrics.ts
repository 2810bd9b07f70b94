// /metrics: the health payload in Prometheus text format (prom-client, a registry of our own).
import { Counter, Gauge, Registry } from 'prom-client';
import { CAMERA_STATES, DETECTOR_STATES, HEALTH_STATUSES, type HealthPayload } from '../../contract/health.js';
import type { RestartInfo } from '../health/restarts.js';

const MB = 1024 * 1024;
export const METRIC_PREFIX = 'roadside_';

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number | null | undefined;
}

/**
 * Renders a payload. A fresh registry per scrape: a figure that is unknown (null) has no series at all rather
 * than a misleading 0 (prom-client reports an unlabelled gauge that was never set as 0), and cameras removed
 * by a config reload leave no stale series. Names carry their units (Prometheus base units: bytes, seconds,
 * celsius, ratio); the same figures as the health payload, converted (MB × 1048576, ms / 1000, % / 100).
 */
export async function renderMetrics(p: HealthPayload, restart?: RestartInfo): Promise<{ contentType: string; text: string }> {
  const reg = new Registry();
  const emit = (kind: 'gauge' | 'counter', name: string, help: string, samples: Sample[]): void => {
    const present = samples.filter((s): s is { labels?: Labels; value: number } => typeof s.value === 'number' && Number.isFinite(s.value));
    if (present.length === 0) return;
    const labelNames = [...new Set(present.flatMap((s) => Object.keys(s.labels ?? {})))];
    const full = METRIC_PREFIX + name;
    if (kind === 'gauge') {
      const g = new Gauge({ name: full, help, labelNames, registers: [reg] });
      for (const s of present) g.set(s.labels ?? {}, s.value);
    } else {
      const c = new Counter({ name: full, help, labelNames, registers: [reg] });
      for (const s of present) c.inc(s.labels ?? {}, Math.max(0, s.value));
    }
  };
  const gauge = (name: string, help: string, value: number | null | undefined, labels?: Labels): void => emit('gauge', name, help, [{ value, labels }]);
  const bytes = (mb: number | null): number | null => (mb === null ? null : Math.round(mb * MB));
  const bool = (b: boolean | null | undefined): number | null => (b === null || b === undefined ? null : b ? 1 : 0);

  emit(
    'gauge',
    'health_status',
    'Health status: 1 for the current one (ok, warn, error)',
    HEALTH_STATUSES.map((s) => ({ labels: { status: s }, value: p.status === s ? 1 : 0 })),
  );
  emit(
    'gauge',
    'health_reason',
    'Active health reasons (1 each)',
    p.reasons.map((r) => ({ labels: { code: r.code, severity: r.severity, camera: r.camera ?? '' }, value: 1 })),
  );

  const s = p.system;
  gauge('cpu_load_ratio', 'CPU load since the previous sample, all cores, 0-1', s.cpu_load_pct === null ? null : s.cpu_load_pct / 100);
  emit('gauge', 'cpu_core_load_ratio', 'CPU load per core, 0-1', s.cpu_core_load_pct.map((v, i) => ({ labels: { core: String(i) }, value: v / 100 })));
  gauge('cpu_cores', 'Logical CPU cores', s.cpu_cores);
  gauge('load_average_1m', '1-minute load average', s.load_avg_1m);
  gauge('soc_temperature_celsius', 'SoC / CPU temperature', s.soc_temp_c, { source: s.soc_temp_source ?? '' });
  if (s.throttled) {
    const t = s.throttled;
    emit('gauge', 'soc_throttled', 'SoC throttling conditions (vcgencmd get_throttled), 1 when present', [
      { labels: { condition: 'throttled_now' }, value: bool(t.throttled_now) },
      { labels: { condition: 'under_voltage_now' }, value: bool(t.under_voltage_now) },
      { labels: { condition: 'freq_capped_now' }, value: bool(t.freq_capped_now) },
      { labels: { condition: 'soft_temp_limit_now' }, value: bool(t.soft_temp_limit_now) },
      { labels: { condition: 'occurred_since_boot' }, value: bool(t.occurred_since_boot) },
    ]);
  }
  gauge('memory_total_bytes', 'Physical memory', bytes(s.memory_total_mb));
  gauge('memory_used_bytes', 'Memory in use (total minus available)', bytes(s.memory_used_mb));
  gauge('memory_available_bytes', 'Memory available (MemAvailable)', bytes(s.memory_available_mb));
  gauge('swap_used_bytes', 'Swap in use', bytes(s.swap_used_mb));
  gauge('disk_total_bytes', 'Size of the data partition', bytes(s.disk_total_mb), { path: s.disk_path });
  gauge('disk_free_bytes', 'Space available on the data partition', bytes(s.disk_free_mb), { path: s.disk_path });
  gauge('system_uptime_seconds', 'System uptime', s.uptime_s);
  if (s.network) gauge('network_link_up', 'Primary interface link state (1 up)', bool(s.network.link_up), { interface: s.network.interface });
  gauge('clock_synced', 'System clock synchronised (1) or not (0); absent when unknown', bool(s.clock.synced), { source: s.clock.source });
  gauge('clock_offset_seconds', 'Local clock minus reference time', s.clock.offset_ms === null ? null : s.clock.offset_ms / 1000, { source: s.clock.source });

  const a = p.agent;
  gauge('agent_uptime_seconds', 'Seconds since the agent process started', a.uptime_s);
  gauge('agent_rss_bytes', 'Resident memory of the agent process', bytes(a.rss_mb));
  gauge('agent_heap_used_bytes', 'V8 heap in use', bytes(a.heap_used_mb));
  gauge('event_loop_lag_seconds', 'Event-loop delay, 99th percentile over the last sample period', a.event_loop_lag_ms / 1000);
  gauge('event_loop_lag_max_seconds', 'Largest event-loop delay over the last sample period', a.event_loop_lag_max_ms / 1000);
  if (restart) {
    emit('counter', 'agent_restarts_total', 'Agent restarts since the restart state was created', [{ value: restart.count }]);
    emit('counter', 'agent_unclean_exits_total', 'Runs that ended without a clean stop (crash, power loss, watchdog)', [{ value: restart.unclean }]);
    gauge('agent_last_restart_info', 'Why the agent last (re)started (1)', 1, { reason: restart.reason });
  }

  const cams = p.cameras;
  const perCam = (name: string, help: string, pick: (c: HealthPayload['cameras'][number]) => number | null): void =>
    emit('gauge', name, help, cams.map((c) => ({ labels: { camera: c.id }, value: pick(c) })));
  emit(
    'gauge',
    'camera_state',
    'Camera stream state: 1 for the current one (starting, online, offline, stalled)',
    cams.flatMap((c) => CAMERA_STATES.map((st) => ({ labels: { camera: c.id, state: st }, value: c.status === st ? 1 : 0 }))),
  );
  perCam('camera_fps', 'Frames per second decoded from the camera', (c) => c.camera_fps);
  perCam('camera_process_fps', 'Frames per second run through the detector', (c) => c.process_fps);
  perCam('camera_skipped_fps', 'Frames per second dropped because the detector was busy', (c) => c.skipped_fps);
  perCam('camera_motion_skipped_fps', 'Frames per second skipped on a still scene', (c) => c.motion_skipped_fps);
  perCam('camera_reconnects_last_hour', 'Stream reconnects in the last hour', (c) => c.reconnects_last_hour);
  perCam('camera_stalls_last_hour', 'Stream stalls in the last hour', (c) => c.stalls_last_hour);
  perCam('camera_last_frame_age_seconds', 'Seconds since the last frame', (c) => c.last_frame_age_s);

  const d = p.detector;
  if (d) {
    emit('gauge', 'detector_state', 'Detector state: 1 for the current one', DETECTOR_STATES.map((st) => ({ labels: { state: st }, value: d.state === st ? 1 : 0 })));
    gauge('detector_inference_mean_seconds', 'Mean inference time over the recent window', d.inference_ms_mean === null ? null : d.inference_ms_mean / 1000);
    gauge('detector_inference_p95_seconds', '95th percentile inference time over the recent window', d.inference_ms_p95 === null ? null : d.inference_ms_p95 / 1000);
    gauge('detector_fps', 'Inferences per second, all cameras', d.detection_fps);
    emit('counter', 'detector_restarts_total', 'Detector worker restarts since the agent started', [{ value: d.restarts }]);
    gauge('detector_last_inference_age_seconds', 'Seconds since the last inference finished', d.last_inference_age_s);
  }
  const o = p.outbox;
  if (o) {
    gauge('outbox_depth_messages', 'Messages waiting to be sent', o.depth);
    gauge('outbox_oldest_unsent_age_seconds', 'Age of the oldest unsent message (0: none waiting)', o.oldest_unsent_age_s ?? 0);
    emit('counter', 'outbox_evicted_messages_total', 'Messages evicted by the size cap or TTL since the agent started', [{ value: o.evicted }]);
    gauge('outbox_quarantined', 'A corrupt outbox file was moved aside (1)', o.quarantined_file ? 1 : 0);
  }
  const u = p.uplink;
  if (u) {
    gauge('uplink_connected', 'Connected to the broker (1)', u.connected ? 1 : 0, { state: u.state });
    gauge('uplink_publish_per_second', 'Messages acknowledged per second', u.publish_rate_per_s);
    gauge('uplink_session', 'Connection session number', u.session);
  }
  return { contentType: reg.contentType, text: await reg.metrics() };
}
