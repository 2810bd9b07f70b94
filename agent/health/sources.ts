// Where health figures come from. The default implementation reads the box (systeminformation, /sys, statfs,
// chronyc / timedatectl, vcgencmd); tests inject fakes (this VM has no thermal sensor).
import { existsSync } from 'node:fs';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { uptime as osUptime } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ClockHealth, NetworkHealth, ThrottleHealth } from '../../contract/health.js';
import { withTimeout } from '../../core/time.js';
import { runCommand } from './exec.js';
import { si } from './si.js';

export interface CpuLoadFigures {
  total_pct: number;
  per_core_pct: number[];
}
export interface TemperatureFigures {
  celsius: number;
  /** e.g. "thermal_zone0:cpu-thermal", "vcgencmd", "systeminformation". */
  source: string;
}
export interface MemoryFigures {
  total_mb: number;
  used_mb: number;
  available_mb: number;
  swap_used_mb: number;
}
export interface DiskFigures {
  /** The directory actually measured (the nearest existing ancestor of the data dir). */
  path: string;
  total_mb: number;
  free_mb: number;
}
export type NetworkFigures = NetworkHealth;
export type ClockFigures = ClockHealth;
export type ThrottleFigures = ThrottleHealth;
/** What a slow SoC probe (vcgencmd, sensor fallbacks) found. */
export interface SocFigures {
  temperature: TemperatureFigures | null;
  throttled: ThrottleFigures | null;
}

/**
 * Sources of the box's figures. Every method resolves (null when the figure is not available) and may be
 * slow; the sampler bounds each call with a timeout. Fast ones run every `health.interval_s`, slow ones
 * (disk, network, clock, soc) every `health.slow_interval_s`.
 */
export interface HealthSources {
  cpuLoad(): Promise<CpuLoadFigures | null>;
  /** Fast path: a file read (thermal zones), no child process. */
  temperature(): Promise<TemperatureFigures | null>;
  memory(): Promise<MemoryFigures | null>;
  uptime(): Promise<number | null>;
  disk(path: string): Promise<DiskFigures | null>;
  network(): Promise<NetworkFigures | null>;
  clock(): Promise<ClockFigures>;
  /** Slow path: vcgencmd (temperature, throttling), sensor fallbacks that spawn processes. */
  soc(): Promise<SocFigures | null>;
}

const MB = 1024 * 1024;
const round1 = (n: number): number => Math.round(n * 10) / 10;

// ---------------------------------------------------------------------------------------------
// Parsers (exported for tests)

/** `chronyc -n tracking` → clock figures; null when the text is not chronyc's. */
export function parseChronyTracking(text: string): ClockFigures | null {
  const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'mi').exec(text)?.[1]?.trim();
  const leap = field('Leap status');
  if (leap === undefined) return null;
  const ref = field('Reference ID');
  const synced = !/not synchronised/i.test(leap) && !(ref !== undefined && /^0+\b/.test(ref));
  const sys = field('System time');
  let offset_ms: number | null = null;
  const m = sys ? /^([0-9.]+)\s+seconds\s+(fast|slow)/i.exec(sys) : null;
  if (m) offset_ms = round3(Number(m[1]) * 1000 * (m[2]!.toLowerCase() === 'fast' ? 1 : -1));
  return { synced, offset_ms, source: 'chronyc' };
}

/** `timedatectl show` → NTPSynchronized; null when absent. */
export function parseTimedatectlShow(text: string): boolean | null {
  const m = /^NTPSynchronized=(yes|no)$/m.exec(text);
  return m ? m[1] === 'yes' : null;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, min: 60_000 };

/** `timedatectl timesync-status` (systemd-timesyncd) → "Offset: -1.234ms" in ms; null when absent. */
export function parseTimesyncOffset(text: string): number | null {
  const m = /^\s*Offset:\s*([+-]?[0-9.]+)\s*(ns|us|µs|ms|s|min)\s*$/m.exec(text);
  if (!m) return null;
  return round3(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/** `vcgencmd get_throttled` → "throttled=0x50005". Bits: 0 under-voltage, 1 freq capped, 2 throttled, 3 soft temp limit; 16-19 the same since boot. */
export function parseThrottled(text: string): ThrottleFigures | null {
  const m = /throttled=(0x[0-9a-f]+)/i.exec(text);
  if (!m) return null;
  const v = Number.parseInt(m[1]!, 16);
  return {
    under_voltage_now: (v & 0x1) !== 0,
    freq_capped_now: (v & 0x2) !== 0,
    throttled_now: (v & 0x4) !== 0,
    soft_temp_limit_now: (v & 0x8) !== 0,
    occurred_since_boot: (v & 0xf0000) !== 0,
    raw: m[1]!,
  };
}

/** `vcgencmd measure_temp` → "temp=48.3'C". */
export function parseMeasureTemp(text: string): number | null {
  const m = /temp=([-0-9.]+)/.exec(text);
  return m ? Number(m[1]) : null;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

const PREFERRED_ZONE = /cpu|soc|core|x86_pkg|package|ap[-_]?thermal|bigcore|littlecore/i;
const plausible = (c: number): boolean => Number.isFinite(c) && c > -40 && c < 150;

/** The hottest CPU/SoC thermal zone under `root` (/sys/class/thermal); any zone when none is named like a CPU. */
export async function readThermalZones(root: string): Promise<TemperatureFigures | null> {
  let names: string[];
  try {
    names = (await readdir(root)).filter((n) => n.startsWith('thermal_zone'));
  } catch {
    return null;
  }
  const zones: { name: string; type: string; celsius: number }[] = [];
  for (const name of names.sort()) {
    try {
      const [type, temp] = await Promise.all([readFile(join(root, name, 'type'), 'utf8').catch(() => ''), readFile(join(root, name, 'temp'), 'utf8')]);
      const celsius = Number(temp.trim()) / 1000;
      if (plausible(celsius)) zones.push({ name, type: type.trim(), celsius });
    } catch {
      // a zone whose sensor is off returns EINVAL / ENODATA: skip it
    }
  }
  const preferred = zones.filter((z) => PREFERRED_ZONE.test(z.type));
  const pool = preferred.length > 0 ? preferred : zones;
  const hottest = pool.reduce<(typeof zones)[number] | undefined>((a, z) => (a === undefined || z.celsius > a.celsius ? z : a), undefined);
  return hottest ? { celsius: round1(hottest.celsius), source: `${hottest.name}${hottest.type ? `:${hottest.type}` : ''}` } : null;
}

// ---------------------------------------------------------------------------------------------
// The box

export interface SystemSourcesOptions {
  /** Default /sys/class/thermal. */
  thermalRoot?: string;
  /** Kill an external command after this long, ms. Default 3000. */
  commandTimeoutMs?: number;
}

/** The default sources: systeminformation for CPU, memory and network; /sys and commands for the rest. */
export class SystemHealthSources implements HealthSources {
  private readonly thermalRoot: string;
  private readonly commandTimeoutMs: number;
  private vcgencmd: string | null | undefined;
  private readonly missing = new Set<string>();

  constructor(opts: SystemSourcesOptions = {}) {
    this.thermalRoot = opts.thermalRoot ?? '/sys/class/thermal';
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 3000;
  }

  async cpuLoad(): Promise<CpuLoadFigures | null> {
    const l = await si.currentLoad();
    if (!Number.isFinite(l.currentLoad)) return null;
    return { total_pct: round1(l.currentLoad), per_core_pct: l.cpus.map((c) => round1(c.load)) };
  }

  temperature(): Promise<TemperatureFigures | null> {
    return readThermalZones(this.thermalRoot);
  }

  async memory(): Promise<MemoryFigures | null> {
    const m = await si.mem();
    if (!m.total) return null;
    return {
      total_mb: round1(m.total / MB),
      used_mb: round1((m.total - m.available) / MB),
      available_mb: round1(m.available / MB),
      swap_used_mb: round1(m.swapused / MB),
    };
  }

  uptime(): Promise<number | null> {
    // os.uptime, not si.time(): that one builds an Intl.DateTimeFormat for the time zone, which maps ~4 MB of
    // ICU's data into the agent for a figure it does not use.
    return Promise.resolve(Math.round(osUptime()));
  }

  async disk(path: string): Promise<DiskFigures | null> {
    // statfs(2) on the data dir itself (or its nearest existing ancestor before the first start): exact for
    // the partition that holds the outbox, no `df` child process, no guessing among mount points.
    let dir = resolve(path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    const s = await statfs(dir);
    return { path: dir, total_mb: round1((s.blocks * s.bsize) / MB), free_mb: round1((s.bavail * s.bsize) / MB) };
  }

  async network(): Promise<NetworkFigures | null> {
    const n = await si.networkInterfaces('default');
    if (!n?.iface) return null;
    return {
      interface: n.iface,
      link_up: n.operstate === 'up',
      type: n.type || null,
      ip4: n.ip4 || null,
      ip6: n.ip6 || null,
      speed_mbps: typeof n.speed === 'number' && n.speed > 0 ? n.speed : null,
    };
  }

  async clock(): Promise<ClockFigures> {
    const chrony = await this.command('chronyc', ['-n', 'tracking']);
    const fromChrony = chrony === null ? null : parseChronyTracking(chrony);
    if (fromChrony) return fromChrony;
    const show = await this.command('timedatectl', ['show']);
    const synced = show === null ? null : parseTimedatectlShow(show);
    if (synced !== null) {
      const status = await this.command('timedatectl', ['timesync-status']);
      return { synced, offset_ms: status === null ? null : parseTimesyncOffset(status), source: 'timedatectl' };
    }
    return { synced: null, offset_ms: null, source: 'unknown' };
  }

  async soc(): Promise<SocFigures | null> {
    const vc = this.findVcgencmd();
    if (vc) {
      const [throttledText, tempText] = await Promise.all([this.command(vc, ['get_throttled']), this.command(vc, ['measure_temp'])]);
      const celsius = tempText === null ? null : parseMeasureTemp(tempText);
      return {
        throttled: throttledText === null ? null : parseThrottled(throttledText),
        temperature: celsius !== null && plausible(celsius) ? { celsius, source: 'vcgencmd' } : null,
      };
    }
    // No vcgencmd: hwmon / lm-sensors through systeminformation (spawns a shell, hence the slow path).
    const t = await withTimeout(si.cpuTemperature(), this.commandTimeoutMs, 'systeminformation.cpuTemperature');
    const c = t.main ?? t.max;
    return { throttled: null, temperature: typeof c === 'number' && plausible(c) ? { celsius: round1(c), source: 'systeminformation' } : null };
  }

  private findVcgencmd(): string | null {
    if (this.vcgencmd !== undefined) return this.vcgencmd;
    const found = ['/usr/bin/vcgencmd', '/opt/vc/bin/vcgencmd'].find((p) => existsSync(p));
    this.vcgencmd = found ?? null;
    return this.vcgencmd;
  }

  /** stdout of a command, or null (absent, failed, timed out). A command found missing is not tried again. */
  private async command(cmd: string, args: string[]): Promise<string | null> {
    if (this.missing.has(cmd)) return null;
    const r = await runCommand(cmd, args, this.commandTimeoutMs);
    if (r.ok) return r.stdout;
    if (r.error === 'not_found') this.missing.add(cmd);
    return null;
  }
}
