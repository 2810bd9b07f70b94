import { closeSync, existsSync, openSync, readdirSync, statSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { AckedRanges } from '../../../buffer/acked-ranges.js';
import { OutboxError } from '../../../buffer/errors.js';
import { SQLITE_HEADER } from '../../../buffer/files.js';
import { Outbox, type OutboxMessage } from '../../../buffer/outbox.js';
import { OutboxStore, PAGE_CACHE_KIB } from '../../../buffer/store.js';
import { capturingLogger, msg, useOutboxHarness } from './fixtures.js';

const h = useOutboxHarness();
const { config, start, restart, open } = h;

describe('outbox: append, group commit, seq', () => {
  it('append is synchronous, assigns increasing seqs, and commits as a group', async () => {
    const ob = await start({ commit_interval_ms: 50, commit_rows: 1000 });
    const seqs = [1, 2, 3].map((i) => ob.append(msg(i)));
    expect(seqs).toEqual([1, 2, 3]);
    expect(ob.stats().pending_rows).toBe(3);
    expect(ob.lease(10)).toEqual([]); // not committed yet: nothing is sent before it is durable
    await sleep(120);
    expect(ob.stats().pending_rows).toBe(0);
    expect(ob.stats().commits).toBe(1);
    expect(ob.stats().batch_rows.last).toBe(3);
    const rows = ob.lease(10);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(rows[0]).toMatchObject({ id: 'ev-1', topic: 'events/cam1', priority: 'event', payload: '{"id":"ev-1","n":1}', bytes: 19 });
  });

  it('commits at once when commit_rows rows are pending', async () => {
    const ob = await start({ commit_interval_ms: 1000, commit_rows: 10 });
    for (let i = 0; i < 10; i++) ob.append(msg(i));
    await sleep(20); // setImmediate, not the 1 s timer
    expect(ob.stats().pending_rows).toBe(0);
  });

  it('puts the id in the payload, strips the reserved keys, and rejects malformed messages with a code', async () => {
    const ob = await start();
    ob.append(msg(1, { payload: { n: 1, seq: 99, sent_at: 'x', replayed: false } }));
    ob.append(msg(2, { payload: { id: 'ev-2', n: 2 } }));
    ob.append(msg(3, { payload: { id: 'other', n: 3 } }));
    ob.flush();
    expect(ob.lease(3).map((r) => r.payload)).toEqual(['{"id":"ev-1","n":1}', '{"id":"ev-2","n":2}', '{"id":"ev-3","n":3}']);
    const bad: [Partial<OutboxMessage>, RegExp][] = [
      [{ id: '' }, /id/],
      [{ topic: '/events/cam1' }, /topic/],
      [{ topic: 'events/+' }, /topic/],
      [{ priority: 'urgent' as never }, /priority/],
      [{ payload: [1, 2] as never }, /object/],
    ];
    for (const [over, re] of bad) {
      let err: unknown;
      try {
        ob.append(msg(2, over));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OutboxError);
      expect((err as OutboxError).code).toBe('OUTBOX_INVALID_MESSAGE');
      expect((err as Error).message).toMatch(re);
    }
  });

  it('throws OUTBOX_NOT_OPEN before start', () => {
    const ob = new Outbox(config(), silentLogger());
    expect(() => ob.append(msg(1))).toThrow(expect.objectContaining({ code: 'OUTBOX_NOT_OPEN' }) as Error);
  });

  it('seq survives restarts, even when every row was delivered and purged', async () => {
    let ob = await start({ keep_acked_s: 0 });
    for (let i = 0; i < 5; i++) ob.append(msg(i));
    ob.flush();
    for (const r of ob.lease(10)) ob.ack(r.seq);
    ob = await restart(ob, { keep_acked_s: 0 });
    await sleep(10);
    expect(ob.stats().acked_kept).toBe(0); // purged at start (keep_acked_s 0)
    expect(ob.append(msg(6))).toBe(6);
    ob = await restart(ob);
    expect(ob.append(msg(7))).toBe(7);
    expect(ob.nextSeq).toBe(8);
  });

  it('stop() flushes the memory batch', async () => {
    let ob = await start({ commit_interval_ms: 1000 });
    ob.append(msg(1));
    ob = await restart(ob);
    expect(ob.lease(5).map((r) => r.id)).toEqual(['ev-1']);
  });

  it('keeps a persistent session counter', async () => {
    let ob = await start();
    expect(ob.nextSession()).toBe(1);
    expect(ob.nextSession()).toBe(2);
    ob = await restart(ob);
    expect(ob.nextSession()).toBe(3);
  });
});

describe('outbox: the SQLite connection', () => {
  it('keeps a 1 MB page cache, not better-sqlite3\'s 16 MB, so memory does not grow with the file', () => {
    const file = join(h.dir, 'cache.db');
    const bare = new Database(join(h.dir, 'bare.db'));
    expect(bare.pragma('cache_size', { simple: true })).toBe(-16000); // what the outbox would get by default
    bare.close();
    const store = new OutboxStore({ path: file, synchronous: 'FULL' }, silentLogger(), Date.now);
    store.open();
    try {
      expect(store.db.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB);
      expect(PAGE_CACHE_KIB).toBe(1024);
    } finally {
      store.close();
    }
  });
});

describe('outbox: lease, ack, release, resend', () => {
  it('leases live rows first by priority, then the backlog by priority, oldest first', async () => {
    const ob = await start();
    ob.append(msg(1, { priority: 'health', topic: 'health' })); // 1
    ob.append(msg(2, { priority: 'event' })); // 2
    ob.append(msg(3, { priority: 'violation' })); // 3
    ob.append(msg(4, { priority: 'statistics', topic: 'events/cam2' })); // 4
    ob.flush();
    const liveFrom = ob.nextSeq;
    ob.append(msg(5, { priority: 'event' })); // 5
    ob.append(msg(6, { priority: 'violation' })); // 6
    ob.append(msg(7, { priority: 'event' })); // 7
    ob.flush();
    expect(ob.lease(100, { liveFrom }).map((r) => r.seq)).toEqual([6, 5, 7, 3, 2, 4, 1]);
  });

  it('caps the backlog part with maxBacklog and never leases a row twice', async () => {
    const ob = await start();
    for (let i = 1; i <= 10; i++) ob.append(msg(i));
    ob.flush();
    const liveFrom = ob.nextSeq;
    for (let i = 11; i <= 13; i++) ob.append(msg(i));
    ob.flush();
    expect(ob.lease(100, { liveFrom, maxBacklog: 2 }).map((r) => r.seq)).toEqual([11, 12, 13, 1, 2]);
    expect(ob.lease(3, { liveFrom, maxBacklog: 0 })).toEqual([]);
    expect(ob.lease(3, { liveFrom }).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(ob.stats().leased).toBe(8);
  });

  it('release returns rows to the queue in their place; ack removes them', async () => {
    const ob = await start();
    for (let i = 1; i <= 6; i++) ob.append(msg(i));
    ob.flush();
    const first = ob.lease(4).map((r) => r.seq);
    expect(first).toEqual([1, 2, 3, 4]);
    ob.ack(1);
    ob.ack(3);
    ob.release([2, 4]);
    expect(ob.lease(10).map((r) => r.seq)).toEqual([2, 4, 5, 6]);
    ob.release();
    expect(ob.lease(10).map((r) => r.seq)).toEqual([2, 4, 5, 6]);
    expect(ob.stats().depth.event).toBe(4);
    expect(ob.stats().acked).toBe(2);
  });

  it('after a restart unacknowledged rows are leased again; acknowledged ones are kept for resend only', async () => {
    let ob = await start({ commit_interval_ms: 10 });
    for (let i = 1; i <= 100; i++) ob.append(msg(i));
    ob.flush();
    for (const r of ob.lease(100)) if (r.seq % 3 !== 0) ob.ack(r.seq);
    ob = await restart(ob);
    const again = ob.lease(1000).map((r) => r.seq);
    expect(again).toEqual(Array.from({ length: 33 }, (_, i) => (i + 1) * 3));
    expect(ob.stats().acked_kept).toBe(67);
    expect(ob.stats().depth.event).toBe(33);
    const resend = ob.rangeForResend(10, 14);
    expect(resend.map((r) => r.seq)).toEqual([10, 11, 12, 13, 14]);
  });

  it('a crash loses acknowledgements made after the last commit: those rows are sent again', async () => {
    const ob = await start({ commit_interval_ms: 1000, commit_rows: 100_000 });
    for (let i = 1; i <= 20; i++) ob.append(msg(i));
    ob.flush();
    for (const r of ob.lease(10)) ob.ack(r.seq); // acks only in memory
    ob.append(msg(21)); // not committed either
    ob.closeAbruptly();
    open.splice(open.indexOf(ob), 1);
    const again = await start();
    expect(again.lease(100).map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(again.nextSeq).toBe(21); // seq 21 was never committed: never sent, so it may be issued again
  });

  it('purges acknowledged rows after keep_acked_s', async () => {
    let now = 1_800_000_000_000;
    const ob = await start({ keep_acked_s: 60 }, { now: () => now });
    for (let i = 1; i <= 10; i++) ob.append(msg(i));
    ob.flush();
    for (const r of ob.lease(10)) ob.ack(r.seq);
    ob.flush();
    expect(ob.stats().acked_kept).toBe(10);
    now += 61_000 + 60_000; // keep_acked_s plus the longest growth of an acknowledged range
    ob.append(msg(11));
    ob.flush(); // housekeeping is due
    expect(ob.stats().acked_kept).toBe(0);
    expect(ob.rangeForResend(1, 10)).toEqual([]);
  });
});

describe('outbox: caps and TTL', () => {
  it('evicts acknowledged rows first, then the oldest rows of the lowest priority, counted and logged', async () => {
    const { log, lines } = capturingLogger();
    const ob = await start({ max_rows: 100 }, {}, log);
    // 10 acknowledged events, then 30 violations, 30 events, 20 statistics, 10 health = 100 rows
    for (let i = 0; i < 10; i++) ob.append(msg(i));
    ob.flush();
    for (const r of ob.lease(10)) ob.ack(r.seq);
    const add = (n: number, priority: OutboxMessage['priority']) => {
      for (let i = 0; i < n; i++) ob.append(msg(i, { priority, id: `${priority}-${i}` }));
    };
    add(30, 'violation');
    add(30, 'event');
    add(20, 'statistics');
    add(10, 'health');
    ob.flush();
    expect(ob.stats().depth_total).toBe(90);
    // 25 more events: 10 acknowledged rows go, then the 10 health rows, then the 5 oldest statistics.
    add(25, 'event');
    ob.flush();
    const s = ob.stats();
    expect(s.evicted_acked).toBe(10);
    expect(s.evicted).toEqual({ violation: 0, event: 0, statistics: 5, health: 10 });
    expect(s.depth).toEqual({ violation: 30, event: 55, statistics: 15, health: 0 });
    const stats = ob.lease(1000).filter((r) => r.priority === 'statistics');
    expect(stats[0]?.id).toBe('statistics-5');
    const warn = lines.find((l) => l.msg === 'outbox dropped rows (caps or TTL)');
    expect(warn).toMatchObject({ level: 40, evicted: { health: 10, statistics: 5 }, evicted_acked: 10 });
  });

  it('drops new rows of the lowest class when only higher classes are stored', async () => {
    const ob = await start({ max_rows: 100 });
    for (let i = 0; i < 100; i++) ob.append(msg(i, { priority: 'violation' }));
    ob.flush();
    ob.append(msg(100, { priority: 'health', topic: 'health' }));
    ob.append(msg(101, { priority: 'violation' }));
    ob.flush();
    const s = ob.stats();
    expect(s.evicted).toEqual({ violation: 1, event: 0, statistics: 0, health: 1 });
    expect(s.depth.violation).toBe(100);
    expect(ob.lease(1)[0]?.id).toBe('ev-1'); // the oldest violation went
  });

  it('respects the size cap (max_mb)', async () => {
    const ob = await start({ max_mb: 1 });
    const big = 'x'.repeat(99_990);
    for (let i = 0; i < 12; i++) ob.append(msg(i, { payload: { big } }));
    ob.flush();
    const s = ob.stats();
    expect(s.stored_mb).toBeLessThanOrEqual(1);
    expect(s.evicted.event).toBe(3);
    expect(s.depth.event).toBe(9);
    expect(ob.lease(1)[0]?.id).toBe('ev-3');
  });

  it('expires unsent rows per priority TTL', async () => {
    let now = 1_800_000_000_000;
    const ob = await start({ ttl_s: { health: 60, event: 3600 } }, { now: () => now });
    ob.append(msg(1, { priority: 'health', topic: 'health' }));
    ob.append(msg(2, { priority: 'event' }));
    ob.flush();
    now += 30_000;
    ob.append(msg(3, { priority: 'health', topic: 'health' }));
    ob.flush();
    now += 40_000; // the first health row is 70 s old, the second 40 s
    ob.append(msg(4));
    ob.flush();
    const s = ob.stats();
    expect(s.expired).toEqual({ violation: 0, event: 0, statistics: 0, health: 1 });
    expect(ob.lease(10).map((r) => r.id)).toEqual(['ev-2', 'ev-4', 'ev-3']);
    expect(s.oldest_unsent_age_s).toBe(70);
  });

  it('does not expire rows appended while the clock was unset (box without RTC, before NTP)', async () => {
    let now = 60_000; // 1970: no clock yet
    const ob = await start({ ttl_s: { event: 60 } }, { now: () => now });
    ob.append(msg(1));
    ob.flush();
    now = 1_800_000_000_000; // NTP sets the clock
    ob.append(msg(2));
    ob.flush();
    now += 61_000;
    ob.append(msg(3));
    ob.flush();
    expect(ob.stats().expired.event).toBe(1);
    expect(ob.lease(10).map((r) => r.id)).toEqual(['ev-1', 'ev-3']);
  });
});

describe('outbox: damaged database and full disk', () => {
  it('quarantines a file of garbage (behind the SQLite header) and opens a fresh outbox whose seqs stay above any issued before', async () => {
    let ob = await start();
    for (let i = 0; i < 5; i++) ob.append(msg(i));
    await ob.stop();
    open.length = 0;
    const file = join(h.dir, 'outbox.db');
    // The header marks the file as a database (a file without it is not the outbox's: never touched, see files.test.ts).
    writeFileSync(file, Buffer.concat([SQLITE_HEADER, Buffer.alloc(64 * 1024, 'garbage! ')]));
    ob = await start();
    const s = ob.stats();
    expect(s.quarantined_file).toMatch(/outbox\.db\.corrupt-\d{4}-\d\d-\d\dT/);
    expect(existsSync(s.quarantined_file as string)).toBe(true);
    expect(s.errors.last_error?.code).toBe('OUTBOX_CORRUPT');
    expect(ob.append(msg(9))).toBeGreaterThan(1_000_000_000_000); // unreadable: jumped to the epoch in ms
    ob.flush();
    expect(ob.lease(5)).toHaveLength(1);
  });

  it('quarantines a database with damaged pages (quick_check) and keeps its seq', async () => {
    let ob = await start();
    for (let i = 0; i < 3000; i++) ob.append(msg(i, { payload: { n: i, pad: 'p'.repeat(200) } }));
    await ob.stop();
    open.length = 0;
    const file = join(h.dir, 'outbox.db');
    const pages = statSync(file).size / 4096;
    expect(pages).toBeGreaterThan(20);
    const fd = openSync(file, 'r+');
    for (let p = Math.floor(pages / 2); p < Math.floor(pages / 2) + 5; p++) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, p * 4096);
    closeSync(fd);
    ob = await start();
    const s = ob.stats();
    expect(s.quarantined_file).not.toBeNull();
    expect(readdirSync(h.dir).some((f) => f.startsWith('outbox.db.corrupt-'))).toBe(true);
    expect(ob.append(msg(1))).toBeGreaterThanOrEqual(3001);
    expect(ob.flush()).toBe(true);
  });

  it('keeps rows in memory while the disk is full, bounded and counted, and writes them once space is back', async () => {
    const ob = await start({ commit_interval_ms: 10, pending_max_rows: 100 }, { pragmas: ['max_page_count = 40'] });
    const pad = 'f'.repeat(3000);
    let i = 0;
    while (ob.flush() && i < 200) ob.append(msg(i++, { priority: 'statistics', payload: { pad } }));
    let s = ob.stats();
    expect(s.errors.failing).toBe(true);
    expect(s.errors.disk_full).toBeGreaterThan(0);
    expect(s.errors.last_error?.code).toBe('OUTBOX_DISK_FULL');
    expect(s.errors.last_error?.message).toMatch(/disk full/);
    // append keeps working, memory is bounded: the oldest pending statistics go first
    for (let k = 0; k < 150; k++) ob.append(msg(1000 + k, { priority: 'violation', payload: { k } }));
    s = ob.stats();
    expect(s.pending_rows).toBeLessThanOrEqual(100);
    expect(s.evicted.statistics).toBeGreaterThan(0);
    expect(s.evicted.violation).toBe(50);
    // space comes back (another process deletes rows): the retry succeeds
    const other = new Database(join(h.dir, 'outbox.db'));
    other.prepare('DELETE FROM outbox WHERE priority = 2').run();
    other.close();
    await sleep(1500);
    s = ob.stats();
    expect(s.errors.failing).toBe(false);
    expect(s.pending_rows).toBe(0);
  });
});

describe('AckedRanges', () => {
  it('merges adjacent acks into ranges and tracks what to store', () => {
    const r = new AckedRanges(60_000);
    for (const s of [1, 2, 3, 5, 4, 10]) expect(r.add(s, 0)).toBe(true);
    expect(r.add(3, 0)).toBe(false);
    expect(r.all().map((x) => [x.lo, x.hi])).toEqual([
      [1, 5],
      [10, 10],
    ]);
    expect(r.changes().upserts).toHaveLength(2);
    r.persisted();
    r.add(9, 0); // joins [10, 10] from below: stored under lo 10, now lo 9
    expect(r.changes()).toEqual({ deletes: [10], upserts: [expect.objectContaining({ lo: 9, hi: 10 })] });
    expect(r.nextLoAfter(6)).toBe(9);
    expect(r.find(7)).toBeUndefined();
  });

  it('starts a new range once a range is older than its growth window', () => {
    const r = new AckedRanges(1000);
    r.add(1, 0);
    r.add(2, 500);
    r.add(3, 1500);
    expect(r.all().map((x) => [x.lo, x.hi])).toEqual([
      [1, 2],
      [3, 3],
    ]);
  });
});
