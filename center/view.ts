// Terminal views of the fleet: a table redrawn about once a second on a TTY, JSON summary lines otherwise.
import type { DeviceState } from './devices.js';
import type { FleetTotals } from './receiver.js';

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

/** The fleet table as text, at most `maxRows` device rows (the rest summarised in one line). */
export function renderTable(devices: DeviceState[], totals: FleetTotals, opts: { now?: number; maxRows?: number; width?: number } = {}): string {
  const now = opts.now ?? Date.now();
  const head = [
    `roadside center  ${totals.connected ? 'connected' : 'DISCONNECTED'}  devices ${totals.devices} (online ${totals.online}, offline ${totals.offline}, stopped ${totals.stopped}, unknown ${totals.unknown})`,
    `msgs/s ${totals.msgs_per_s} (peak ${totals.peak_msgs_per_s})  events ${totals.events}  dup ${totals.duplicates}  invalid ${totals.invalid}  missing ${totals.missing} in ${totals.gaps_open} gap(s)  repaired ${totals.repaired}  lost ${totals.lost}  resend ${totals.resend_requests} (${totals.resend_outstanding} waiting)`,
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
  const widths = cols.map((c, i) => Math.max(c.length, ...shown.map((r) => (i === cols.length - 1 ? 0 : (r[i] as string).length))));
  const line = (r: string[]): string => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i] as number))).join('  ');
  const out = [...head, line(cols), ...shown.map(line)];
  if (rows.length > shown.length) out.push(`… ${rows.length - shown.length} more device(s)`);
  const width = opts.width;
  return `${(width ? out.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l)) : out).join('\n')}\n`;
}

/** One JSON line: the totals plus the devices needing attention (at most 20). */
export function summaryLine(devices: DeviceState[], totals: FleetTotals, now = Date.now()): string {
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
  return `${JSON.stringify({ ts: new Date(now).toISOString(), type: 'fleet_summary', ...totals, attention })}\n`;
}
