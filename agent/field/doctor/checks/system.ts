// The box: clock synchronised, free space on the data partition (the health sampler's sources and thresholds).
import type { HealthConfig } from '../../../../config/schema/index.js';
import type { HealthSources } from '../../../health/index.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

/** Before this date the clock is certainly wrong (a box without RTC booting at 1970 or at its last shutdown). */
export const CLOCK_FLOOR_MS = Date.parse('2025-01-01T00:00:00Z');

/** Free space below this multiple of `disk_min_free_mb` is a warning (below the minimum itself: fail). */
export const DISK_WARN_FACTOR = 2;

export async function checkClock(sources: Pick<HealthSources, 'clock'>, health: Pick<HealthConfig, 'clock_offset_warn_ms'>, now = Date.now()): Promise<CheckOutcome> {
  const c = await sources.clock();
  const figures = { synced: c.synced, offset_ms: c.offset_ms, source: c.source, now: new Date(now).toISOString() };
  if (now < CLOCK_FLOOR_MS) {
    return fail(`the clock says ${new Date(now).toISOString()}: certainly wrong`, 'set the time (NTP reachable? timedatectl set-ntp true): TLS certificates and event times depend on it', figures);
  }
  const ntpFix = c.source === 'chronyc' ? 'check NTP: chronyc sources (servers reachable? UDP 123 open?)' : 'check NTP: timedatectl timesync-status (servers reachable? UDP 123 open?)';
  if (c.synced === null) {
    return warn('clock synchronisation unknown: neither chronyc nor timedatectl answered', 'install and enable chrony (or systemd-timesyncd): event times must be right', figures);
  }
  if (!c.synced) return warn(`clock not synchronised (${c.source})`, ntpFix, figures);
  if (c.offset_ms !== null && Math.abs(c.offset_ms) > health.clock_offset_warn_ms) {
    return warn(`clock synchronised but off by ${Math.round(c.offset_ms)} ms (warn beyond ${health.clock_offset_warn_ms} ms)`, ntpFix, figures);
  }
  return pass(`synchronised (${c.source}${c.offset_ms === null ? '' : `, offset ${c.offset_ms} ms`})`, figures);
}

export async function checkDisk(sources: Pick<HealthSources, 'disk'>, dataDir: string, health: Pick<HealthConfig, 'disk_min_free_mb'>): Promise<CheckOutcome> {
  const d = await sources.disk(dataDir);
  if (d === null) return warn(`cannot measure free space at ${dataDir}`, 'check that the data partition is mounted', { path: dataDir });
  const min = health.disk_min_free_mb;
  const figures = { path: d.path, free_mb: d.free_mb, total_mb: d.total_mb, free_pct: d.total_mb > 0 ? Math.round((1000 * d.free_mb) / d.total_mb) / 10 : null, min_free_mb: min };
  const head = `${Math.round(d.free_mb)} MB free of ${Math.round(d.total_mb)} MB on ${d.path}`;
  const fix = `free space on ${d.path}: remove old evidence (${dataDir}/evidence) or logs; the agent needs at least ${min} MB (health.disk_min_free_mb)`;
  if (d.free_mb < min) return fail(`${head}: below the minimum ${min} MB`, fix, figures);
  if (d.free_mb < DISK_WARN_FACTOR * min) return warn(`${head}: less than ${DISK_WARN_FACTOR} x the minimum ${min} MB`, fix, figures);
  return pass(head, figures);
}
