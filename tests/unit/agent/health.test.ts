import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthSchema } from '../../../config/schema/index.js';
import { HealthPayload, HealthSummary } from '../../../contract/health.js';
import { runCommand } from '../../../agent/health/exec.js';
import type { CameraFigures } from '../../../agent/health/figures.js';
import { HealthSampler } from '../../../agent/health/sampler.js';
import {
  parseChronyTracking,
  parseMeasureTemp,
  parseThrottled,
  parseTimedatectlShow,
  parseTimesyncOffset,
  readThermalZones,
  SystemHealthSources,
  type ClockFigures,
  type HealthSources,
  type SocFigures,
} from '../../../agent/health/sources.js';
import { silentLogger } from '../../../core/log.js';
import { StaticFigures } from '../../../testkit/static-figures.js';

const tmp = mkdtempSync(join(tmpdir(), 'health-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Fake box: every figure settable; counts calls. */
class FakeSources implements HealthSources {
  calls: Record<string, number> = {};
  temp: number | null = 61.5;
  vcTemp: number | null = null;
  throttled: SocFigures['throttled'] = null;
  freeMb = 20_000;
  clockFig: ClockFigures = { synced: true, offset_ms: 0.4, source: 'chronyc' };
  hang = new Set<string>();

  private count<T>(name: string, v: T): Promise<T> {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
    return this.hang.has(name) ? new Promise<T>(() => undefined) : Promise.resolve(v);
  }
  cpuLoad() {
    return this.count('cpuLoad', { total_pct: 37.5, per_core_pct: [30, 45, 40, 35] });
  }
  temperature() {
    return this.count('temperature', this.temp === null ? null : { celsius: this.temp, source: 'thermal_zone0:cpu-thermal' });
  }
  memory() {
    return this.count('memory', { total_mb: 3906.2, used_mb: 1200.5, available_mb: 2705.7, swap_used_mb: 0 });
  }
  uptime() {
    return this.count('uptime', 86_400);
  }
  disk(path: string) {
    return this.count('disk', { path, total_mb: 29_000, free_mb: this.freeMb });
  }
  network() {
    return this.count('network', { interface: 'eth0', link_up: true, type: 'wired', ip4: '192.0.2.10', ip6: null, speed_mbps: 100 });
  }
  clock() {
    return this.count('clock', this.clockFig);
  }
  soc() {
    return this.count('soc', { temperature: this.vcTemp === null ? null : { celsius: this.vcTemp, source: 'vcgencmd' }, throttled: this.throttled });
  }
}

const camera = (id: string, over: Partial<CameraFigures> = {}): CameraFigures => ({
  id,
  status: 'online',
  camera_fps: 10,
  process_fps: 4.8,
  skipped_fps: 0.2,
  motion_skipped_fps: 5,
  reconnects_last_hour: 0,
  stalls_last_hour: 0,
  last_frame_age_s: 0.1,
  ...over,
});

function healthyFigures(): StaticFigures {
  return new StaticFigures({
    cameras: [camera('cam1'), camera('cam2')],
    detector: { state: 'running', inference_ms_mean: 22.5, inference_ms_p95: 31, detection_fps: 9.6, restarts: 0, last_inference_age_s: 0.2 },
    outbox: { depth: 3, oldest_unsent_age_s: 1.5, evicted: 0 },
    uplink: { connected: true, state: 'connected', publish_rate_per_s: 2.5, session: 7 },
  });
}

function sampler(sources: HealthSources, figures = healthyFigures(), over: Partial<ReturnType<typeof HealthSchema.parse>> = {}) {
  return new HealthSampler({ config: { ...HealthSchema.parse({}), ...over }, dataDir: tmp, figures, log: silentLogger(), sources, callTimeoutMs: 300 });
}

describe('health payload', () => {
  it('matches its schema with a temperature sensor, and is ok when everything is', async () => {
    const s = sampler(new FakeSources());
    const seen: unknown[] = [];
    s.onSample((p) => seen.push(p));
    const p = await s.refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.schema).toBe('roadside.health/1');
    expect(p.status).toBe('ok');
    expect(p.reasons).toEqual([]);
    expect(p.system).toMatchObject({
      cpu_load_pct: 37.5,
      cpu_core_load_pct: [30, 45, 40, 35],
      cpu_cores: 4,
      soc_temp_c: 61.5,
      soc_temp_source: 'thermal_zone0:cpu-thermal',
      memory_used_mb: 1200.5,
      disk_free_mb: 20_000,
      disk_path: tmp,
      uptime_s: 86_400,
      clock: { synced: true, offset_ms: 0.4, source: 'chronyc' },
      network: { interface: 'eth0', ip4: '192.0.2.10', link_up: true },
    });
    expect(p.cameras.map((c) => c.id)).toEqual(['cam1', 'cam2']);
    expect(p.detector?.inference_ms_p95).toBe(31);
    expect(p.agent.rss_mb).toBeGreaterThan(10);
    expect(p.slow_sampled_at).not.toBeNull();
    expect(seen).toEqual([p]);
    expect(s.latest()).toEqual(p);
    expect(s.clockSynced()).toBe(true);
    const summary = s.summary();
    expect(HealthSummary.parse(summary)).toEqual(summary);
    expect(summary).toMatchObject({ status: 'ok', soc_temp_c: 61.5, clock_synced: true, ip4: '192.0.2.10', cpu_cores: 4 });
  });

  it('carries the evidence packages when the box keeps them (evictions counted), and leaves the section out otherwise', async () => {
    const without = await sampler(new FakeSources()).refresh({ slow: true });
    expect('evidence' in without).toBe(false);
    const figures = Object.assign(healthyFigures(), {
      evidence: () => ({ packages: 12, size_mb: 48.5, unacknowledged: 3, evicted_acknowledged: 7, evicted_unacknowledged: 1, expired: 2 }),
    });
    const p = await sampler(new FakeSources(), figures).refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.evidence).toEqual({ packages: 12, size_mb: 48.5, unacknowledged: 3, evicted_acknowledged: 7, evicted_unacknowledged: 1, expired: 2 });
  });

  it('matches its schema without any temperature sensor (this VM): soc_temp_c null', async () => {
    const src = new FakeSources();
    src.temp = null;
    const p = await sampler(src).refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.system.soc_temp_c).toBeNull();
    expect(p.system.soc_temp_source).toBeNull();
    expect(p.system.throttled).toBeNull();
    expect(p.status).toBe('ok');
  });

  it('falls back to the slow vcgencmd temperature and reports throttling', async () => {
    const src = new FakeSources();
    src.temp = null;
    src.vcTemp = 83.2;
    src.throttled = parseThrottled('throttled=0x50005');
    const p = await sampler(src).refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.system.soc_temp_c).toBe(83.2);
    expect(p.system.soc_temp_source).toBe('vcgencmd');
    expect(p.status).toBe('warn');
    expect(p.reasons.map((r) => r.code).sort()).toEqual(['temperature_high', 'throttled', 'under_voltage']);
  });

  it('turns to error with reasons: camera stalled, disk low, detector stuck; warns on clock and uplink', async () => {
    const src = new FakeSources();
    src.freeMb = 120;
    src.clockFig = { synced: false, offset_ms: 2500, source: 'chronyc' };
    const figures = healthyFigures();
    figures.cameraList = [camera('cam1', { status: 'stalled', reason: 'no frames for 12 s', last_frame_age_s: 12 }), camera('cam2')];
    figures.detectorFigures = { ...figures.detectorFigures, last_inference_age_s: 45 };
    figures.uplinkFigures = { connected: false, state: 'backoff', publish_rate_per_s: 0, session: 7, last_error: 'ECONNREFUSED' };
    const s = sampler(src, figures);
    const p = await s.refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.status).toBe('error');
    const byCode = Object.fromEntries(p.reasons.map((r) => [r.code, r]));
    expect(byCode.camera_stalled).toMatchObject({ severity: 'error', camera: 'cam1' });
    expect(byCode.camera_stalled!.message).toContain('no frames for 12 s');
    expect(byCode.disk_low?.severity).toBe('error');
    expect(byCode.detector_stuck?.severity).toBe('error');
    expect(byCode.clock_unsynced?.severity).toBe('warn');
    expect(byCode.clock_offset?.severity).toBe('warn');
    expect(byCode.uplink_disconnected?.message).toContain('ECONNREFUSED');
    expect(s.clockSynced()).toBe(false);
    expect(s.mainLoopHealthy()).toEqual({ healthy: false, reasons: ['detector stuck'] });
    expect(s.summary().reasons).toEqual(expect.arrayContaining(['camera_stalled', 'disk_low', 'detector_stuck']));
  });

  it('keeps the payload valid when a provider throws or returns junk', async () => {
    const figures = healthyFigures();
    figures.detector = () => {
      throw new Error('worker gone');
    };
    figures.cameraList = [{ ...camera('cam1'), camera_fps: Number.NaN, last_frame_age_s: Number.POSITIVE_INFINITY, extra: 'x' } as CameraFigures];
    const p = await sampler(new FakeSources(), figures).refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.detector).toBeNull();
    expect(p.cameras[0]).toMatchObject({ camera_fps: 0, last_frame_age_s: null });
    expect(p.cameras[0]).not.toHaveProperty('extra');
    expect(p.reasons.find((r) => r.code === 'figures_unavailable')?.message).toContain('detector');
  });

  it('lists a condition a module reports (status server unbound) in every payload until it is cleared', async () => {
    const s = sampler(new FakeSources());
    const reason = { code: 'status_server_unbound', severity: 'warn', message: 'status page unavailable: cannot listen on 127.0.0.1:8080 (EADDRINUSE)' } as const;
    s.setCondition('status_server', reason);
    const p = await s.refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.status).toBe('warn');
    expect(p.reasons).toEqual([reason]);
    expect(s.current().reasons).toEqual([reason]);
    expect(HealthSummary.parse(s.summary()).reasons).toEqual(['status_server_unbound']);
    s.setCondition('status_server', undefined);
    const after = await s.refresh();
    expect(after.status).toBe('ok');
    expect(after.reasons).toEqual([]);
  });

  it('bounds a hanging source with a timeout: the sample completes, the figure is unknown', async () => {
    const src = new FakeSources();
    src.hang.add('clock');
    src.hang.add('disk');
    const s = sampler(src);
    const t0 = Date.now();
    const p = await s.refresh({ slow: true });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(p.system.clock).toEqual({ synced: null, offset_ms: null, source: 'unknown' });
    expect(p.system.disk_free_mb).toBeNull();
    expect(s.clockSynced()).toBeNull();
    expect(HealthPayload.parse(p)).toEqual(p);
  });

  it('kills a hanging external command after its timeout', async () => {
    const t0 = Date.now();
    const r = await runCommand('sleep', ['30'], 200);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toMatchObject({ ok: false, error: 'timeout' });
    expect(await runCommand('definitely-not-a-command-xyz', [])).toMatchObject({ ok: false, error: 'not_found' });
  });

  it('samples slow sources less often than fast ones, on timers, and emits each sample', async () => {
    const src = new FakeSources();
    const s = sampler(src, healthyFigures(), { interval_s: 1, slow_interval_s: 3600 });
    let samples = 0;
    s.onSample(() => samples++);
    await s.start(new AbortController().signal);
    await new Promise((r) => setTimeout(r, 2300));
    await s.stop();
    expect(samples).toBeGreaterThanOrEqual(3);
    expect(src.calls.cpuLoad).toBeGreaterThanOrEqual(3);
    expect(src.calls.disk).toBe(1);
    expect(src.calls.clock).toBe(1);
    expect(src.calls.soc).toBe(1);
    const after = samples;
    await new Promise((r) => setTimeout(r, 1200));
    expect(samples).toBe(after);
  });
});

describe('health sources', () => {
  it('parses chronyc tracking (synchronised, and not)', () => {
    const synced = [
      'Reference ID    : C0A80001 (192.168.0.1)',
      'Stratum         : 3',
      'System time     : 0.000123456 seconds slow of NTP time',
      'Last offset     : -0.000012 seconds',
      'Leap status     : Normal',
    ].join('\n');
    expect(parseChronyTracking(synced)).toEqual({ synced: true, offset_ms: -0.123, source: 'chronyc' });
    const unsynced = ['Reference ID    : 00000000 ()', 'Stratum         : 0', 'System time     : 1.500000000 seconds fast of NTP time', 'Leap status     : Not synchronised'].join('\n');
    expect(parseChronyTracking(unsynced)).toEqual({ synced: false, offset_ms: 1500, source: 'chronyc' });
    expect(parseChronyTracking('506 Cannot talk to daemon')).toBeNull();
  });

  it('parses timedatectl and vcgencmd', () => {
    expect(parseTimedatectlShow('Timezone=UTC\nNTP=yes\nNTPSynchronized=yes\n')).toBe(true);
    expect(parseTimedatectlShow('NTPSynchronized=no\n')).toBe(false);
    expect(parseTimedatectlShow('Failed to connect to bus')).toBeNull();
    expect(parseTimesyncOffset('       Server: 192.0.2.1\n       Offset: -1.234ms\n')).toBe(-1.234);
    expect(parseTimesyncOffset('Offset: +250us')).toBe(0.25);
    expect(parseThrottled('throttled=0x0')).toMatchObject({ throttled_now: false, under_voltage_now: false, occurred_since_boot: false, raw: '0x0' });
    expect(parseThrottled('throttled=0x50005')).toMatchObject({ throttled_now: true, under_voltage_now: true, freq_capped_now: false, occurred_since_boot: true });
    expect(parseMeasureTemp("temp=48.3'C")).toBe(48.3);
  });

  it('reads the hottest CPU/SoC thermal zone from a /sys/class/thermal tree', async () => {
    const root = join(tmp, 'thermal');
    const zone = (n: number, type: string, milli: string) => {
      mkdirSync(join(root, `thermal_zone${n}`), { recursive: true });
      writeFileSync(join(root, `thermal_zone${n}`, 'type'), `${type}\n`);
      writeFileSync(join(root, `thermal_zone${n}`, 'temp'), `${milli}\n`);
    };
    zone(0, 'soc-thermal', '51250');
    zone(1, 'bigcore0-thermal', '55900');
    zone(2, 'gpu-thermal', '70000'); // hotter, but not a CPU zone
    zone(3, 'littlecore-thermal', 'garbage');
    expect(await readThermalZones(root)).toEqual({ celsius: 55.9, source: 'thermal_zone1:bigcore0-thermal' });
    expect(await readThermalZones(join(tmp, 'nothing-here'))).toBeNull();
  });

  it('samples this machine for real (systeminformation, statfs, no sensors) into a valid payload', async () => {
    const s = new HealthSampler({ config: HealthSchema.parse({}), dataDir: join(tmp, 'not-created-yet', 'data'), figures: healthyFigures(), log: silentLogger(), sources: new SystemHealthSources({ thermalRoot: join(tmp, 'no-thermal') }) });
    const p = await s.refresh({ slow: true });
    expect(HealthPayload.parse(p)).toEqual(p);
    expect(p.system.cpu_load_pct).not.toBeNull();
    expect(p.system.memory_total_mb).toBeGreaterThan(100);
    expect(p.system.disk_path).toBe(tmp);
    expect(p.system.disk_free_mb).toBeGreaterThan(0);
    expect(p.system.uptime_s).toBeGreaterThan(0);
  });
});
