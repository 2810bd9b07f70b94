// What the PostgreSQL sink writes, table by table: the columns (one list per table drives both the SQL and the
// row objects) and the mapping from the contract's payloads. A batch travels as one JSON parameter expanded with
// json_to_recordset: one statement per table and batch, no per-row round trips.
import type { WireEvent } from '../../contract/event.js';
import type { ReceivedEvent, ReceivedHealth } from '../sinks.js';
import type { DeviceSnapshot } from '../state.js';

export type Row = Record<string, unknown>;

/** Columns of one table: name → PostgreSQL type. */
type Columns = Record<string, string>;

const EVENT_COLUMNS = {
  site: 'text',
  device: 'text',
  seq: 'bigint',
  captured_at: 'timestamptz',
  id: 'uuid',
  camera: 'text',
  type: 'text',
  priority: 'text',
  received_at: 'timestamptz',
  sent_at: 'timestamptz',
  replayed: 'boolean',
  clock_synced: 'boolean',
  rule_kind: 'text',
  rule_id: 'text',
  direction: 'text',
  lane: 'text',
  object_class: 'text',
  track_id: 'integer',
  speed_kmh: 'double precision',
  topic: 'text',
  payload: 'jsonb',
} satisfies Columns;

const VIOLATION_COLUMNS = {
  site: 'text',
  device: 'text',
  seq: 'bigint',
  id: 'uuid',
  camera: 'text',
  type: 'text',
  captured_at: 'timestamptz',
  received_at: 'timestamptz',
  clock_synced: 'boolean',
  rule_kind: 'text',
  rule_id: 'text',
  direction: 'text',
  object_class: 'text',
  track_id: 'integer',
  speed_kmh: 'double precision',
  evidence: 'jsonb',
  payload: 'jsonb',
} satisfies Columns;

const FLOW_COLUMNS = {
  site: 'text',
  device: 'text',
  camera: 'text',
  line_id: 'text',
  bin_start: 'timestamptz',
  bin_end: 'timestamptz',
  seq: 'bigint',
  observed_s: 'double precision',
  occupancy: 'double precision',
  in_volume: 'integer',
  out_volume: 'integer',
  in_by_class: 'jsonb',
  out_by_class: 'jsonb',
  in_speed_mean_kmh: 'double precision',
  in_speed_p85_kmh: 'double precision',
  out_speed_mean_kmh: 'double precision',
  out_speed_p85_kmh: 'double precision',
  clock_synced: 'boolean',
  received_at: 'timestamptz',
} satisfies Columns;

const HEALTH_COLUMNS = {
  site: 'text',
  device: 'text',
  seq: 'bigint',
  ts: 'timestamptz',
  received_at: 'timestamptz',
  status: 'text',
  reasons: 'text[]',
  cpu_load_pct: 'double precision',
  soc_temp_c: 'double precision',
  memory_used_mb: 'double precision',
  disk_free_mb: 'double precision',
  disk_total_mb: 'double precision',
  clock_synced: 'boolean',
  clock_offset_ms: 'double precision',
  process_fps: 'double precision',
  backlog: 'integer',
  oldest_unsent_age_s: 'double precision',
  evicted: 'bigint',
  uplink_session: 'integer',
  payload: 'jsonb',
} satisfies Columns;

const DEVICE_COLUMNS = {
  site: 'text',
  device: 'text',
  state: 'text',
  state_source: 'text',
  session: 'integer',
  state_since: 'timestamptz',
  last_seen: 'timestamptz',
  birth: 'jsonb',
  agent_version: 'text',
  health_at: 'timestamptz',
  health_seq: 'bigint',
  health_status: 'text',
  health_reasons: 'text[]',
  backlog: 'integer',
  soc_temp_c: 'double precision',
} satisfies Columns;

const SEQ_COLUMNS = {
  site: 'text',
  device: 'text',
  first_seq: 'bigint',
  last_seq: 'bigint',
  contiguous_seq: 'bigint',
  received: 'bigint',
  duplicates: 'bigint',
  missing: 'bigint',
  lost: 'bigint',
  gaps: 'jsonb',
  filled_late: 'bigint',
  repaired: 'bigint',
  resend_requests: 'bigint',
} satisfies Columns;

/** `INSERT INTO table (cols) SELECT cols FROM json_to_recordset($1) … {tail}`; $1 is the JSON array of rows. */
function insertSql(table: string, columns: Columns, tail: string, extra: Record<string, string> = {}): string {
  const names = Object.keys(columns);
  const record = names.map((n) => `${n} ${columns[n] as string}`).join(', ');
  const extraNames = Object.keys(extra);
  return `INSERT INTO ${table} (${[...names, ...extraNames].join(', ')}) SELECT ${[...names, ...Object.values(extra)].join(', ')} FROM json_to_recordset($1::json) AS r(${record}) ${tail}`;
}

/** Keeps the stored value unless `cond` (about the new row) holds: e.g. only a newer health replaces the stored one. */
function guarded(cond: string, cols: string[]): string {
  return cols.map((c) => `${c} = CASE WHEN ${cond} THEN EXCLUDED.${c} ELSE devices.${c} END`).join(',\n  ');
}

export const SQL = {
  events: insertSql('events', EVENT_COLUMNS, 'ON CONFLICT DO NOTHING'),
  violations: insertSql('violations', VIOLATION_COLUMNS, 'ON CONFLICT DO NOTHING'),
  flowBins: insertSql('flow_bins', FLOW_COLUMNS, 'ON CONFLICT DO NOTHING'),
  health: insertSql('health_samples', HEALTH_COLUMNS, 'ON CONFLICT DO NOTHING'),
  /**
   * Availability from a receiver that knows nothing yet (state unknown) or an older session never replaces what
   * is stored; state_since stays when state and session did not change (a restarted receiver does not reset how
   * long a box has been offline); birth and health only move forward.
   */
  devices: insertSql(
    'devices',
    DEVICE_COLUMNS,
    `ON CONFLICT (site, device) DO UPDATE SET
  ${guarded("EXCLUDED.state <> 'unknown' AND (devices.session IS NULL OR EXCLUDED.session >= devices.session)", ['state', 'state_source', 'session'])},
  state_since = CASE
    WHEN EXCLUDED.state = 'unknown' OR (devices.session IS NOT NULL AND EXCLUDED.session < devices.session) THEN devices.state_since
    WHEN devices.state = EXCLUDED.state AND devices.session IS NOT DISTINCT FROM EXCLUDED.session THEN COALESCE(devices.state_since, EXCLUDED.state_since)
    ELSE EXCLUDED.state_since END,
  last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen),
  ${guarded("EXCLUDED.birth IS NOT NULL AND (devices.birth IS NULL OR (EXCLUDED.birth->>'session')::bigint >= (devices.birth->>'session')::bigint)", ['birth', 'agent_version'])},
  ${guarded('EXCLUDED.health_at IS NOT NULL AND (devices.health_at IS NULL OR EXCLUDED.health_at >= devices.health_at)', ['health_at', 'health_seq', 'health_status', 'health_reasons', 'backlog', 'soc_temp_c'])},
  updated_at = now()`,
    { updated_at: 'now()' },
  ),
  seqs: insertSql(
    'device_seqs',
    SEQ_COLUMNS,
    `ON CONFLICT (site, device) DO UPDATE SET ${Object.keys(SEQ_COLUMNS)
      .filter((c) => c !== 'site' && c !== 'device')
      .map((c) => `${c} = EXCLUDED.${c}`)
      .join(', ')}, updated_at = now()`,
    { updated_at: 'now()' },
  ),
  loadSeqs: `SELECT site, device, first_seq, last_seq, received, duplicates, gaps, filled_late, repaired, resend_requests FROM device_seqs`,
  ensurePartition: 'SELECT roadside_ensure_day_partition($1, $2::date)',
  reject: 'INSERT INTO rejected_rows (target, site, device, seq, error, row_json) VALUES ($1, $2, $3, $4, $5, $6)',
};

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** UTC day (YYYY-MM-DD) of an ISO 8601 time with offset: the partition a row goes to. */
export function utcDay(isoTime: string): string {
  return new Date(isoTime).toISOString().slice(0, 10);
}

/** A string attribute several event types carry (direction, lane), or null. */
function attribute(ev: WireEvent, name: 'direction' | 'lane'): string | null {
  const v = (ev.attributes as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : null;
}

export function eventRow(r: ReceivedEvent): Row {
  const ev = r.event;
  const object = 'object' in ev ? ev.object : undefined;
  const rule = 'rule' in ev ? ev.rule : undefined;
  return {
    site: r.site,
    device: r.device,
    seq: ev.seq,
    captured_at: ev.captured_at,
    id: ev.id,
    camera: ev.camera,
    type: ev.type,
    priority: ev.priority,
    received_at: iso(r.received_at),
    sent_at: ev.sent_at,
    replayed: ev.replayed,
    clock_synced: ev.clock_synced,
    rule_kind: rule?.kind ?? null,
    rule_id: rule?.id ?? null,
    direction: attribute(ev, 'direction'),
    lane: attribute(ev, 'lane'),
    object_class: object?.class ?? null,
    track_id: object?.track_id ?? null,
    speed_kmh: object?.speed_kmh ?? null,
    topic: r.topic,
    payload: ev,
  };
}

/**
 * The violations row of an event of priority "violation" (stopped_vehicle, wrong_way, red_light, speeding); null
 * for other events. Keyed on the priority, not a list of types, so a new violation type lands here too. A speeding
 * event's limit and uncertainty stay in `payload` (attributes.limit_kmh, uncertainty_kmh, excess_kmh): the
 * table has no columns of its own for them.
 */
export function violationRow(r: ReceivedEvent): Row | null {
  const ev = r.event;
  if (ev.priority !== 'violation') return null;
  return {
    site: r.site,
    device: r.device,
    seq: ev.seq,
    id: ev.id,
    camera: ev.camera,
    type: ev.type,
    captured_at: ev.captured_at,
    received_at: iso(r.received_at),
    clock_synced: ev.clock_synced,
    rule_kind: ev.rule.kind,
    rule_id: ev.rule.id,
    direction: attribute(ev, 'direction'),
    object_class: ev.object.class,
    track_id: ev.object.track_id,
    speed_kmh: ev.object.speed_kmh ?? null,
    evidence: ev.evidence ?? null,
    payload: ev,
  };
}

/** The flow_bins row of a "flow" event; null for other events. */
export function flowRow(r: ReceivedEvent): Row | null {
  const ev = r.event;
  if (ev.type !== 'flow') return null;
  const a = ev.attributes;
  return {
    site: r.site,
    device: r.device,
    camera: ev.camera,
    line_id: ev.rule.id,
    bin_start: a.bin_start,
    bin_end: a.bin_end,
    seq: ev.seq,
    observed_s: a.observed_s,
    occupancy: a.occupancy,
    in_volume: a.in.volume,
    out_volume: a.out.volume,
    in_by_class: a.in.volume_by_class,
    out_by_class: a.out.volume_by_class,
    in_speed_mean_kmh: a.in.speed_mean_kmh ?? null,
    in_speed_p85_kmh: a.in.speed_p85_kmh ?? null,
    out_speed_mean_kmh: a.out.speed_mean_kmh ?? null,
    out_speed_p85_kmh: a.out.speed_p85_kmh ?? null,
    clock_synced: ev.clock_synced,
    received_at: iso(r.received_at),
  };
}

export function healthRow(r: ReceivedHealth): Row {
  const h = r.health;
  const s = h.system;
  return {
    site: r.site,
    device: r.device,
    seq: h.seq,
    ts: h.ts,
    received_at: iso(r.received_at),
    status: h.status,
    reasons: h.reasons.map((x) => x.code),
    cpu_load_pct: s.cpu_load_pct,
    soc_temp_c: s.soc_temp_c,
    memory_used_mb: s.memory_used_mb,
    disk_free_mb: s.disk_free_mb,
    disk_total_mb: s.disk_total_mb,
    clock_synced: s.clock.synced,
    clock_offset_ms: s.clock.offset_ms,
    process_fps: h.cameras.reduce((a, c) => a + c.process_fps, 0),
    backlog: h.outbox?.depth ?? null,
    oldest_unsent_age_s: h.outbox?.oldest_unsent_age_s ?? null,
    evicted: h.outbox?.evicted ?? null,
    uplink_session: h.uplink?.session ?? null,
    payload: h,
  };
}

export function deviceRow(d: DeviceSnapshot): Row {
  const h = d.health;
  return {
    site: d.site,
    device: d.device,
    state: d.state,
    state_source: d.state_source,
    session: d.session,
    state_since: iso(d.state_since),
    last_seen: iso(d.last_seen),
    birth: d.birth,
    agent_version: d.birth?.agent_version ?? null,
    health_at: h?.ts ?? null,
    health_seq: h?.seq ?? null,
    health_status: h?.status ?? null,
    health_reasons: h?.reasons ?? null,
    backlog: h?.backlog ?? null,
    soc_temp_c: h?.soc_temp_c ?? null,
  };
}

/** The device_seqs row of a snapshot; null when the receiver does not track this device's seqs. */
export function seqRow(d: DeviceSnapshot): Row | null {
  const s = d.seqs;
  if (!s) return null;
  return {
    site: d.site,
    device: d.device,
    first_seq: s.first,
    last_seq: s.last,
    contiguous_seq: s.contiguous,
    received: s.received,
    duplicates: s.duplicates,
    missing: s.missing,
    lost: s.lost,
    gaps: s.gaps,
    filled_late: s.filled_late,
    repaired: s.repaired,
    resend_requests: s.resend_requests,
  };
}
