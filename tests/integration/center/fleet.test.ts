// Fleet load test (small): 20 boxes (real Outbox + Uplink each) against mosquitto, broker restarted while the
// boxes keep appending, some boxes losing messages after the broker's PUBACK; the receiver must end up with
// every (device, seq) and no loss.
import { describe, expect, it } from 'vitest';
import { runFleet } from '../../../bench/fleet.js';

describe('fleet through a broker restart', () => {
  it('loses no event: every (device, seq) reaches the receiver, gaps repaired with resend', { timeout: 60_000 }, async () => {
    const r = await runFleet({
      devices: 20,
      events_per_s: 20,
      health_interval_ms: 1000,
      warmup_s: 3,
      outage_s: 4,
      after_s: 3,
      settle_timeout_s: 15,
      backoff: { initial_ms: 200, max_ms: 2000, jitter: 0.5 },
      lossy_devices: 3,
      grace_ms: 1000,
    });
    const f = r.figures;
    const summary = JSON.stringify(f);
    expect(r.lost_events, summary).toBe(0);
    expect(r.undelivered, summary).toBe(0);
    for (const d of r.devices) {
      expect(d, d.key).toMatchObject({ first: 1, last: d.appended, missing: 0, lost: 0 });
      expect(d.received).toBe(d.appended);
    }
    // Events and health share the per-device seq space; the outage left a backlog that drained.
    expect(f.appended_total).toBeGreaterThan(20 * 20 * 8);
    expect(f.backlog_at_restart).toBeGreaterThan(0);
    expect(f.drain_s).toBeGreaterThan(0);
    // Three boxes lost five acknowledged messages each: repaired through resend.
    expect(f.dropped_after_puback).toBe(15);
    expect(f.repaired_seqs).toBeGreaterThanOrEqual(15);
    expect(f.resend_requests).toBeGreaterThanOrEqual(3);
    expect(f.invalid).toBe(0);
    expect(r.totals.online).toBe(20);
    expect(f.broker_sys_clients_peak).toBeGreaterThanOrEqual(21);
    expect(f.broker_cpu_peak_pct).toBeGreaterThan(0);
  });
});
