// Disk full (simulated with max_page_count, as in outbox.test.ts): rows wait in memory, bounded; the newest health
// report is the last thing given up; the stats say since when the disk is full; and once the link works the
// space that acknowledgements free goes to the rows waiting in memory.
import { describe, expect, it } from 'vitest';
import { capturingLogger, msg, useOutboxHarness } from './fixtures.js';

const h = useOutboxHarness();

describe('outbox: full disk', () => {
  it('keeps the newest health report to the last, reports disk_full since its start, and writes it once acknowledgements free space', async () => {
    let now = 1_800_000_000_000;
    const { log, lines } = capturingLogger();
    const ob = await h.start({ commit_interval_ms: 10, pending_max_rows: 100 }, { pragmas: ['max_page_count = 40'], now: () => now }, log);
    expect(ob.stats()).toMatchObject({ disk_full: false, disk_full_since: null });
    const pad = 'f'.repeat(3000);
    let i = 0;
    while (ob.flush() && i < 200) ob.append(msg(i++, { priority: 'statistics', payload: { pad } }));
    const fullAt = new Date(now).toISOString();
    let s = ob.stats();
    expect(s.errors.last_error?.code).toBe('OUTBOX_DISK_FULL');
    expect(s).toMatchObject({ disk_full: true, disk_full_since: fullAt, pending_rows: 1 });

    // Memory is bounded (100 rows): 5 health reports, then 150 violations.
    now += 60_000;
    for (let k = 0; k < 5; k++) ob.append(msg(k, { id: `health-${k}`, priority: 'health', topic: 'health' }));
    for (let k = 0; k < 150; k++) ob.append(msg(1000 + k, { priority: 'violation' }));
    s = ob.stats();
    expect(s.pending_rows).toBe(100);
    // 56 rows went: the 4 older health reports, the statistics row, then the oldest violations; the newest
    // health report stays although it is the lowest class.
    expect(s.evicted).toEqual({ violation: 51, event: 0, statistics: 1, health: 4 });
    expect(s.depth.health).toBe(1);
    expect(s.disk_full_since).toBe(fullAt); // since the first failure, not the latest
    expect(ob.flush()).toBe(false);

    // The link works: the uplink delivers what is stored. Acknowledged rows are kept for resend (keep_acked_s),
    // but on a full disk they are given up so the waiting rows fit.
    now += 1000;
    const stored = ob.lease(1000);
    expect(stored.length).toBeGreaterThan(10);
    for (const r of stored) ob.ack(r.seq);
    expect(ob.flush()).toBe(true);
    s = ob.stats();
    expect(s).toMatchObject({ disk_full: false, disk_full_since: null, pending_rows: 0, acked_kept: 0 });
    expect(s.evicted_acked).toBe(stored.length);
    expect(s.errors.failing).toBe(false);
    const sent = ob.lease(1000);
    expect(sent).toHaveLength(100);
    expect(sent.filter((r) => r.priority === 'health').map((r) => r.id)).toEqual(['health-4']);
    expect(lines.find((l) => l.msg === 'disk full: acknowledged rows kept for resend purged early to make room')).toMatchObject({ evicted_acked: stored.length });
    expect(lines.find((l) => l.msg === 'outbox commits work again')).toMatchObject({ disk_full_since: fullAt });
  });
});
