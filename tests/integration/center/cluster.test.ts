// A 3-node NATS cluster (MQTT gateway, JetStream) under 20 boxes that list every node in mqtt.urls: the node
// most boxes are on is killed and brought back; a group of receivers (sharded by site, persistent sessions; NATS
// has no $share) stores into PostgreSQL (SQLite when PostgreSQL is not installed). Every (device, seq) must be
// stored exactly once; failover times, drain time and rates are reported.
import { describe, expect, it } from 'vitest';
import { runCluster } from '../../../bench/cluster.js';

describe('broker cluster: node crash under a fleet', () => {
  it('every box fails over, nothing is lost, nothing is stored twice', { timeout: 150_000 }, async () => {
    const r = await runCluster({
      devices: 20,
      events_per_s: 10,
      health_interval_ms: 1000,
      warmup_s: 4,
      outage_s: 8,
      after_s: 4,
      settle_timeout_s: 45,
      backoff: { initial_ms: 500, max_ms: 5000, jitter: 0.5 },
      progress: (line) => process.stderr.write(`cluster: ${line}\n`),
    });
    const f = r.figures;
    const summary = JSON.stringify({ ...f, store: r.store, failover_ms: r.failover_ms });
    console.log(summary);
    // Half the boxes were on the killed node: every one of them (and any other the crash disconnected) is back.
    expect(f.boxes_on_killed_node, summary).toBe(10);
    expect(f.boxes_disconnected, summary).toBeGreaterThanOrEqual(10);
    expect(f.boxes_failed_over, summary).toBe(f.boxes_disconnected);
    expect(f.failover_ms_max, summary).toBeLessThan(30_000);
    expect(f.boxes_not_drained, summary).toBe(0);
    // Exactly once in the database: none missing, none twice; and the receivers saw only valid messages.
    expect(r.lost, summary).toBe(0);
    expect(r.duplicates_stored, summary).toBe(0);
    for (const d of r.devices) expect(d, d.key).toMatchObject({ missing: 0, duplicates_stored: 0 });
    expect(f.appended_total, summary).toBeGreaterThan(20 * 10 * 14);
    expect(f.stored_rows, summary).toBe(f.appended_total);
    expect(f.invalid, summary).toBe(0);
    expect(f.stored_after_stop_s, summary).toBeGreaterThanOrEqual(0);
    // Every receiver stored its share (sites split three ways).
    for (const rc of r.receivers) expect(rc.stored, JSON.stringify(rc.sites)).toBeGreaterThan(0);
  });
});
