// Migration 1: the tables. SQL kept in a TypeScript module rather than a .sql file so the compiled receiver in
// dist/ carries it (tsc copies no .sql files).
//
// Partitioning and uniqueness. events, health_samples and flow_bins are partitioned by UTC day on the time the box
// stamped (events: captured_at, health: ts, flow: bin_start); a partition is created by the receiver before the
// first row of its day (roadside_ensure_day_partition). A unique constraint on a partitioned table must include
// the partition key, so the key is (site, device, seq, captured_at). That is as strict as (site, device, seq):
// a seq always carries the same stored row on the box (a resend or a replay sends that row again), so every copy
// has the same captured_at, lands in the same partition and hits the same key; `ON CONFLICT DO NOTHING` makes
// duplicates and replays free. The one way to two rows on one seq is a seq reused for another event (a box that
// lost the tail of its outbox in a power cut); a receiver tracking seqs refuses the second one (seq_conflicts),
// its saved seq state included. Partitioning by the box's time also makes retention by event time a DROP of whole
// partitions. A box with a wrong clock (clock_synced false) gets a partition for each wrong day it reports.
// (Rejected: partitioning by received time plus an unpartitioned event_keys(device, seq) table: exactly unique,
// but one more index insert per row and a key table that grows forever, with no partition to drop.)
export default `
CREATE FUNCTION roadside_ensure_day_partition(parent text, day date) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
  part text := parent || '_p' || to_char(day, 'YYYYMMDD');
BEGIN
  IF parent NOT IN ('events', 'health_samples', 'flow_bins') THEN
    RAISE EXCEPTION 'roadside_ensure_day_partition: % is not a day-partitioned table', parent;
  END IF;
  -- Receivers create partitions concurrently: one at a time per partition name.
  PERFORM pg_advisory_xact_lock(hashtext(part));
  IF to_regclass(quote_ident(part)) IS NULL THEN
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, parent,
                   day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
  END IF;
  RETURN part;
END
$fn$;

-- Traffic events: one row per (device, seq); the typed columns come from contract/event.ts, the whole wire
-- event is kept in payload.
CREATE TABLE events (
  site          text        NOT NULL,
  device        text        NOT NULL,
  seq           bigint      NOT NULL,
  captured_at   timestamptz NOT NULL,
  id            uuid        NOT NULL,
  camera        text        NOT NULL,
  type          text        NOT NULL,
  priority      text        NOT NULL,
  received_at   timestamptz NOT NULL,
  sent_at       timestamptz NOT NULL,
  replayed      boolean     NOT NULL,
  clock_synced  boolean     NOT NULL,
  rule_kind     text,
  rule_id       text,
  direction     text,
  lane          text,
  object_class  text,
  track_id      integer,
  speed_kmh     double precision,
  topic         text        NOT NULL,
  payload       jsonb       NOT NULL,
  PRIMARY KEY (site, device, seq, captured_at)
) PARTITION BY RANGE (captured_at);
CREATE INDEX events_type_time ON events (type, captured_at);
CREATE INDEX events_crossings ON events (site, device, camera, rule_id, captured_at) WHERE type = 'line_crossing';

-- Violations (priority "violation": stopped_vehicle, wrong_way, red_light), also in events. Few rows: not
-- partitioned, unique on (device, seq) directly. Plate fields stay null until plate reading exists.
CREATE TABLE violations (
  site              text        NOT NULL,
  device            text        NOT NULL,
  seq               bigint      NOT NULL,
  id                uuid        NOT NULL,
  camera            text        NOT NULL,
  type              text        NOT NULL,
  captured_at       timestamptz NOT NULL,
  received_at       timestamptz NOT NULL,
  clock_synced      boolean     NOT NULL,
  rule_kind         text        NOT NULL,
  rule_id           text        NOT NULL,
  direction         text,
  object_class      text        NOT NULL,
  track_id          integer     NOT NULL,
  speed_kmh         double precision,
  evidence          jsonb,
  plate_text        text,
  plate_confidence  real,
  plate_region      text,
  plate_read_at     timestamptz,
  payload           jsonb       NOT NULL,
  PRIMARY KEY (site, device, seq)
);
COMMENT ON COLUMN violations.evidence IS 'Evidence manifest of the event: frame/crop file names and SHA-256; null when the box attached none';
CREATE INDEX violations_time ON violations (captured_at);

-- Flow statistics: one row per line and bin (both directions), from "flow" events.
CREATE TABLE flow_bins (
  site                text        NOT NULL,
  device              text        NOT NULL,
  camera              text        NOT NULL,
  line_id             text        NOT NULL,
  bin_start           timestamptz NOT NULL,
  bin_end             timestamptz NOT NULL,
  seq                 bigint      NOT NULL,
  observed_s          double precision NOT NULL,
  occupancy           double precision NOT NULL,
  in_volume           integer     NOT NULL,
  out_volume          integer     NOT NULL,
  in_by_class         jsonb       NOT NULL,
  out_by_class        jsonb       NOT NULL,
  in_speed_mean_kmh   double precision,
  in_speed_p85_kmh    double precision,
  out_speed_mean_kmh  double precision,
  out_speed_p85_kmh   double precision,
  clock_synced        boolean     NOT NULL,
  received_at         timestamptz NOT NULL,
  PRIMARY KEY (site, device, camera, line_id, bin_start)
) PARTITION BY RANGE (bin_start);

-- Health reports (contract/health.ts), the main figures as columns.
CREATE TABLE health_samples (
  site                 text        NOT NULL,
  device               text        NOT NULL,
  seq                  bigint      NOT NULL,
  ts                   timestamptz NOT NULL,
  received_at          timestamptz NOT NULL,
  status               text        NOT NULL,
  reasons              text[]      NOT NULL,
  cpu_load_pct         double precision,
  soc_temp_c           double precision,
  memory_used_mb       double precision,
  disk_free_mb         double precision,
  disk_total_mb        double precision,
  clock_synced         boolean,
  clock_offset_ms      double precision,
  process_fps          double precision NOT NULL,
  backlog              integer,
  oldest_unsent_age_s  double precision,
  evicted              bigint,
  uplink_session       integer,
  payload              jsonb       NOT NULL,
  PRIMARY KEY (site, device, seq, ts)
) PARTITION BY RANGE (ts);

-- Availability and the newest health summary of each box, as the receivers last saw them.
CREATE TABLE devices (
  site            text        NOT NULL,
  device          text        NOT NULL,
  state           text        NOT NULL CHECK (state IN ('online', 'offline', 'stopped', 'unknown')),
  state_source    text,
  session         integer,
  state_since     timestamptz,
  last_seen       timestamptz,
  birth           jsonb,
  agent_version   text,
  health_at       timestamptz,
  health_seq      bigint,
  health_status   text,
  health_reasons  text[],
  backlog         integer,
  soc_temp_c      double precision,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (site, device)
);

-- Rows PostgreSQL refused (a value it cannot store, e.g. a NUL character in a text): kept as JSON text with the
-- error instead of stopping the stream; their seqs count as received.
CREATE TABLE rejected_rows (
  id           bigserial   PRIMARY KEY,
  rejected_at  timestamptz NOT NULL DEFAULT now(),
  target       text        NOT NULL,
  site         text        NOT NULL,
  device       text        NOT NULL,
  seq          bigint      NOT NULL,
  error        text        NOT NULL,
  row_json     text        NOT NULL
);

-- The receivers' seq bookkeeping per box: a restarted receiver loads it and resumes gap repair.
CREATE TABLE device_seqs (
  site             text        NOT NULL,
  device           text        NOT NULL,
  first_seq        bigint      NOT NULL,
  last_seq         bigint      NOT NULL,
  contiguous_seq   bigint      NOT NULL,
  received         bigint      NOT NULL,
  duplicates       bigint      NOT NULL,
  missing          bigint      NOT NULL,
  lost             bigint      NOT NULL,
  gaps             jsonb       NOT NULL,
  filled_late      bigint      NOT NULL,
  repaired         bigint      NOT NULL,
  resend_requests  bigint      NOT NULL,
  updated_at       timestamptz NOT NULL,
  PRIMARY KEY (site, device)
);
COMMENT ON COLUMN device_seqs.contiguous_seq IS 'Highest seq with nothing still expected below it (holes given up on count as settled)';
COMMENT ON COLUMN device_seqs.gaps IS 'Holes: [{lo, hi, opened_at (ms), tries (resend requests), jump, lost, reason, req_from, req_to}]';
`;
