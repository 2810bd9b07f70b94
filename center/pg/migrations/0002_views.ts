// Migration 2: the views operations use (the Grafana dashboard in docs/monitoring/ is built on them). Time bins
// are UTC. Filter on the bin column (e.g. `WHERE bin_start >= now() - interval '1 day'`) to keep queries short.
export default `
-- Vehicles counted per camera, line and direction (line_crossing events), per 15 minutes and per hour.
CREATE VIEW traffic_counts_15min AS
SELECT site, device, camera, rule_id AS line_id, direction,
       date_bin('15 minutes', captured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bin_start,
       count(*) AS vehicles
FROM events
WHERE type = 'line_crossing'
GROUP BY site, device, camera, rule_id, direction, bin_start;

CREATE VIEW traffic_counts_hourly AS
SELECT site, device, camera, rule_id AS line_id, direction,
       date_bin('1 hour', captured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bin_start,
       count(*) AS vehicles
FROM events
WHERE type = 'line_crossing'
GROUP BY site, device, camera, rule_id, direction, bin_start;

-- Volumes the boxes aggregated themselves (flow events), per 15 minutes.
CREATE VIEW flow_volume_15min AS
SELECT site, device, camera, line_id,
       date_bin('15 minutes', bin_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bin_start,
       sum(in_volume) AS in_volume, sum(out_volume) AS out_volume, sum(observed_s) AS observed_s
FROM flow_bins
GROUP BY site, device, camera, line_id, 5;

-- Violations per UTC day and type.
CREATE VIEW violations_daily AS
SELECT (captured_at AT TIME ZONE 'UTC')::date AS day, type,
       count(*) AS violations,
       count(evidence) AS with_evidence,
       count(plate_text) AS with_plate
FROM violations
GROUP BY 1, type;

-- Boxes not running now (offline: the broker published the Will; stopped: clean shutdown) and for how long.
CREATE VIEW devices_offline AS
SELECT site, device, state, session, state_since, last_seen,
       floor(extract(epoch FROM now() - state_since))::bigint AS offline_s
FROM devices
WHERE state IN ('offline', 'stopped');

-- Messages waiting on each box, from its newest health report.
CREATE VIEW device_backlog AS
SELECT site, device, backlog, health_at, health_status,
       floor(extract(epoch FROM now() - health_at))::bigint AS health_age_s
FROM devices
WHERE health_at IS NOT NULL;

-- Seq holes per box: still expected (lost = false) or given up on.
CREATE VIEW seq_gaps AS
SELECT s.site, s.device, (g->>'lo')::bigint AS seq_from, (g->>'hi')::bigint AS seq_to,
       (g->>'hi')::bigint - (g->>'lo')::bigint + 1 AS seqs,
       (g->>'tries')::integer AS resend_tries, (g->>'lost')::boolean AS lost, g->>'reason' AS reason,
       to_timestamp((g->>'opened_at')::double precision / 1000) AS opened_at
FROM device_seqs s, jsonb_array_elements(s.gaps) AS g;
`;
