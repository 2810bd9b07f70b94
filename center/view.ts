// Terminal views of the fleet: a table redrawn about once a second on a TTY (the delivery table per device, with
// the live traffic per line beside it), JSON summary lines otherwise.
import type { DeviceState } from './devices.js';
import type { FleetTotals } from './receiver-types.js';
import type { SinkStats } from './sinks.js';
import type { TrafficRow } from './traffic.js';
import { columns } from '../core/table.js';

export interface ViewExtras {
  /** Sinks' figures (rows written, rows/s). */
  sinks?: SinkStats[];
  /** Vehicles per line and direction over the last `window_min` minutes. */
  traffic?: { rows: TrafficRow[]; window_min: number };
}

const STATE_ORDER: Record<DeviceState['state'], number> = { offline: 0, unknown: 1, stopped: 2, online: 3 };

function age(iso: string | null, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

const num = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '-' : v.toFixed(digits));

/** Devices needing attention first (offline, gaps, lost, invalid), then by key. */
export function sortForAttention(devices: DeviceState[]): DeviceState[] {
  const trouble = (d: DeviceState): number => (d.seq.lost > 0 || d.invalid.count > 0 ? 0 : d.seq.missing > 0 ? 1 : 2);
  return [...devices].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || trouble(a) - trouble(b) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function sinkLine(s: SinkStats): string {
  const extra = `${s.dropped ? `  DROPPED ${s.dropped}` : ''}${s.rejected ? `  REJECTED ${s.rejected}` : ''}${s.error ? `  ERROR ${s.error}` : ''}`;
  return `${s.name}: ${s.rows_per_s} rows/s  written ${s.written}  waiting ${s.pending}${extra}`;
}

/** Vehicles per line and direction (its first column: the device), as table lines. */
export function renderTraffic(rows: TrafficRow[], window_min: number, maxRows = rows.length): string[] {
  const shown = rows.slice(0, maxRows).map((r) => [r.device, r.camera, r.line, String(r.in), String(r.out)]);
  const out = columns([`TRAFFIC ${window_min} MIN`, 'CAM', 'LINE', 'IN', 'OUT'], shown);
  if (rows.length > shown.length) out.push(`… ${rows.length - shown.length} more line(s)`);
  return out;
}

/**
 * The fleet table as text, at most `maxRows` device rows (the rest summarised in one line), with the traffic per
 * line beside it when the width allows, else below it.
 */
export function renderTable(devices: DeviceState[], totals: FleetTotals, opts: { now?: number; maxRows?: number; width?: number } & ViewExtras = {}): string {
  const now = opts.now ?? Date.now();
  const head = [
    `roadside center  ${totals.connected ? 'connected' : 'DISCONNECTED'}  devices ${totals.devices} (online ${totals.online}, offline ${totals.offline}, stopped ${totals.stopped}, unknown ${totals.unknown})`,
    `msgs/s ${totals.msgs_per_s} (peak ${totals.peak_msgs_per_s})  events ${totals.events}  dup ${totals.duplicates}  invalid ${totals.invalid}  missing ${totals.missing} in ${totals.gaps_open} gap(s)  repaired ${totals.repaired}  lost ${totals.lost}  resend ${totals.resend_requests} (${totals.resend_outstanding} waiting)`,
    ...(opts.sinks ?? []).map(sinkLine),
    '',
  ];
  const cols = ['DEVICE', 'STATE', 'SESS', 'SEEN', 'BACKLOG', 'TEMP°C', 'FPS', 'HEALTH', 'SEQ', 'MISSING', 'LOST', 'DUP', 'INVALID'];
  const rows = sortForAttention(devices).map((d) => [
    d.key,
    d.state === 'online' && d.state_source === 'birth' ? 'online*' : d.state,
    num(d.session),
    age(d.last_seen, now),
    num(d.health?.backlog),
    num(d.health?.soc_temp_c, 1),
    num(d.health?.process_fps, 1),
    d.health?.status ?? '-',
    num(d.seq.last),
    String(d.seq.missing),
    String(d.seq.lost),
    String(d.seq.duplicates + d.seq.duplicate_ids),
    d.invalid.count ? `${d.invalid.count} ${d.invalid.last_error ?? ''}` : '0',
  ]);
  const maxRows = opts.maxRows ?? rows.length;
  const shown = rows.slice(0, maxRows);
  const table = columns(cols, shown);
  if (rows.length > shown.length) table.push(`… ${rows.length - shown.length} more device(s)`);
  const width = opts.width;
  let out = [...head, ...table];
  if (opts.traffic) {
    const traffic = renderTraffic(opts.traffic.rows, opts.traffic.window_min, opts.maxRows);
    const left = Math.max(...table.map((l) => l.length)) + 4;
    const right = Math.max(...traffic.map((l) => l.length));
    if (width === undefined || left + right <= width) {
      const n = Math.max(table.length, traffic.length);
      out = [...head, ...Array.from({ length: n }, (_, i) => `${(table[i] ?? '').padEnd(left)}${traffic[i] ?? ''}`.trimEnd())];
    } else out.push('', ...traffic);
  }
  return `${(width ? out.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l)) : out).join('\n')}\n`;
}

/** One JSON line: the totals plus the devices needing attention (at most 20), sinks and traffic when given. */
export function summaryLine(devices: DeviceState[], totals: FleetTotals, now = Date.now(), extras: ViewExtras = {}): string {
  const attention = sortForAttention(devices)
    .filter((d) => d.state !== 'online' || d.seq.missing > 0 || d.seq.lost > 0 || d.invalid.count > 0)
    .slice(0, 20)
    .map((d) => ({
      device: d.key,
      state: d.state,
      session: d.session,
      last_seen: d.last_seen,
      missing: d.seq.missing,
      lost: d.seq.lost,
      invalid: d.invalid.count,
      last_error: d.invalid.last_error,
    }));
  const more = {
    ...(extras.sinks?.length ? { sinks: extras.sinks } : {}),
    ...(extras.traffic ? { traffic: { window_min: extras.traffic.window_min, lines: extras.traffic.rows.slice(0, 50) } } : {}),
  };
  return `${JSON.stringify({ ts: new Date(now).toISOString(), type: 'fleet_summary', ...totals, attention, ...more })}\n`;
}
