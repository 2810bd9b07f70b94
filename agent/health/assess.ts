// Turns figures into a status and its reasons. Pure: the health payload, /healthz and the watchdog all use it.
import type { HealthConfig } from '../../config/schema/index.js';
import type { CameraHealth, DetectorHealth, HealthReason, HealthStatus, OutboxHealth, SystemHealth, UplinkHealth } from '../../contract/health.js';

export interface AssessInput {
  system: SystemHealth;
  agent: { event_loop_lag_ms: number };
  cameras: CameraHealth[];
  detector: DetectorHealth | null;
  outbox: OutboxHealth | null;
  uplink: UplinkHealth | null;
  /** Sections whose provider threw. */
  unavailable: string[];
  /** Conditions modules reported themselves (e.g. the status server cannot bind); listed as given. */
  reported?: HealthReason[];
}

export interface Assessment {
  status: HealthStatus;
  reasons: HealthReason[];
}

/** True when the detector is stuck: by its own account, or because it has not finished an inference for
 * `detector_stall_s` while a camera is online (motion gating still forces one every few seconds). */
export function detectorStuck(detector: DetectorHealth | null, cameras: CameraHealth[], cfg: Pick<HealthConfig, 'detector_stall_s'>): boolean {
  if (!detector) return false;
  if (detector.state === 'stuck') return true;
  const anyOnline = cameras.some((c) => c.status === 'online');
  return detector.state === 'running' && anyOnline && detector.last_inference_age_s !== null && detector.last_inference_age_s > cfg.detector_stall_s;
}

export function assess(f: AssessInput, cfg: HealthConfig): Assessment {
  const reasons: HealthReason[] = [];
  const add = (r: HealthReason): void => void reasons.push(r);

  for (const cam of f.cameras) {
    const why = cam.reason ? `: ${cam.reason}` : '';
    switch (cam.status) {
      case 'offline':
        add({ code: 'camera_offline', severity: 'error', camera: cam.id, message: `camera ${cam.id} offline${why}` });
        break;
      case 'stalled':
        add({ code: 'camera_stalled', severity: 'error', camera: cam.id, message: `camera ${cam.id} stalled${why}` });
        break;
      case 'starting':
        add({ code: 'camera_starting', severity: 'warn', camera: cam.id, message: `camera ${cam.id} starting${why}` });
        break;
      case 'online':
        break;
    }
  }

  const d = f.detector;
  if (d) {
    if (detectorStuck(d, f.cameras, cfg)) {
      const age = d.last_inference_age_s === null ? '' : ` (last inference ${Math.round(d.last_inference_age_s)} s ago)`;
      add({ code: 'detector_stuck', severity: 'error', message: `detector stuck${age}` });
    } else if (d.state === 'failed') {
      add({ code: 'detector_failed', severity: 'error', message: `detector failed after ${d.restarts} restarts` });
    } else if (d.state === 'restarting') {
      add({ code: 'detector_restarting', severity: 'warn', message: 'detector restarting' });
    }
  }

  const s = f.system;
  if (s.disk_free_mb !== null && s.disk_free_mb < cfg.disk_min_free_mb) {
    add({ code: 'disk_low', severity: 'error', message: `${Math.round(s.disk_free_mb)} MB free on ${s.disk_path} (minimum ${cfg.disk_min_free_mb} MB)` });
  }
  if (s.soc_temp_c !== null && s.soc_temp_c >= cfg.temperature_warn_c) {
    add({ code: 'temperature_high', severity: 'warn', message: `SoC at ${s.soc_temp_c} °C (warn at ${cfg.temperature_warn_c} °C)` });
  }
  if (s.throttled?.under_voltage_now) add({ code: 'under_voltage', severity: 'warn', message: `supply under-voltage (${s.throttled.raw})` });
  if (s.throttled && (s.throttled.throttled_now || s.throttled.freq_capped_now || s.throttled.soft_temp_limit_now)) {
    add({ code: 'throttled', severity: 'warn', message: `CPU throttled (${s.throttled.raw})` });
  }
  if (s.memory_total_mb && s.memory_used_mb !== null) {
    const pct = (100 * s.memory_used_mb) / s.memory_total_mb;
    if (pct >= cfg.memory_warn_pct) add({ code: 'memory_high', severity: 'warn', message: `memory ${Math.round(pct)} % used (warn at ${cfg.memory_warn_pct} %)` });
  }
  if (f.agent.event_loop_lag_ms >= cfg.event_loop_lag_warn_ms) {
    add({ code: 'event_loop_lag', severity: 'warn', message: `event loop lag ${Math.round(f.agent.event_loop_lag_ms)} ms (warn at ${cfg.event_loop_lag_warn_ms} ms)` });
  }
  if (s.clock.synced === false) add({ code: 'clock_unsynced', severity: 'warn', message: `clock not synchronised (${s.clock.source})` });
  if (s.clock.offset_ms !== null && Math.abs(s.clock.offset_ms) > cfg.clock_offset_warn_ms) {
    add({ code: 'clock_offset', severity: 'warn', message: `clock off by ${Math.round(s.clock.offset_ms)} ms (warn beyond ${cfg.clock_offset_warn_ms} ms)` });
  }
  if (s.network && !s.network.link_up) add({ code: 'network_down', severity: 'warn', message: `link down on ${s.network.interface}` });
  if (f.uplink && !f.uplink.connected) {
    add({ code: 'uplink_disconnected', severity: 'warn', message: `uplink ${f.uplink.state}${f.uplink.last_error ? `: ${f.uplink.last_error}` : ''}` });
  }
  if (f.outbox?.quarantined_file) add({ code: 'outbox_quarantined', severity: 'warn', message: `corrupt outbox moved to ${f.outbox.quarantined_file}` });
  if (f.unavailable.length > 0) add({ code: 'figures_unavailable', severity: 'warn', message: `figures unavailable: ${f.unavailable.join(', ')}` });
  for (const r of f.reported ?? []) add(r);

  const status: HealthStatus = reasons.some((r) => r.severity === 'error') ? 'error' : reasons.length > 0 ? 'warn' : 'ok';
  return { status, reasons };
}
