// A damaged outbox is set aside only after its readable unsent rows were copied, seq and id kept, into the
// fresh outbox; what could not be read is counted, and the counts add up.
import { closeSync, existsSync, openSync, readdirSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { OutboxMessage, OutboxRow } from '../../../buffer/outbox.js';
import { capturingLogger, useOutboxHarness } from './fixtures.js';

const h = useOutboxHarness();
const PAGE = 4096;
const CLASSES: OutboxMessage['priority'][] = ['violation', 'event', 'statistics', 'health'];

type StoredRow = Omit<OutboxRow, 'priority'> & { priority: number };

/** Writes n rows of every class and topic, `acked` of them delivered; returns the file and the delivered seqs. */
async function fill(n: number, acked = 0): Promise<{ file: string; delivered: Set<number> }> {
  let now = 1_800_000_000_000;
  const ob = await h.start({}, { now: () => (now += 7) });
  for (let i = 1; i <= n; i++) {
    const priority = CLASSES[i % 4] as OutboxMessage['priority'];
    ob.append({ id: `id-${i}`, topic: priority === 'health' ? 'health' : `events/cam${i % 3}`, priority, payload: { n: i, pad: 'p'.repeat(150 + (i % 50)) } });
  }
  ob.flush();
  const delivered = new Set<number>();
  for (const r of ob.lease(acked)) {
    ob.ack(r.seq);
    delivered.add(r.seq);
  }
  await ob.stop();
  h.open.length = 0;
  return { file: join(h.dir, 'outbox.db'), delivered };
}

function readAll(file: string): Map<number, StoredRow> {
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT seq, id, topic, priority, created_at, payload, bytes FROM outbox').all() as StoredRow[];
  db.close();
  return new Map(rows.map((r) => [r.seq, r]));
}

/** Page numbers of the leaves of table `outbox` (not its index), in file order. */
function tableLeaves(file: string): number[] {
  const db = new Database(file, { readonly: true });
  const pages = db.prepare("SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' ORDER BY pageno").pluck().all() as number[];
  db.close();
  return pages;
}

function damage(file: string, pages: number[]): void {
  const fd = openSync(file, 'r+');
  for (const p of pages) writeSync(fd, Buffer.alloc(PAGE, 0xa5), 0, PAGE, (p - 1) * PAGE);
  closeSync(fd);
}

describe('outbox: salvage of a damaged database', () => {
  it('copies every readable unsent row with its seq, id, topic, priority, payload and time; counts the rest; the numbers add up', async () => {
    const N = 1500;
    const ACKED = 100;
    const { file, delivered } = await fill(N, ACKED);
    const original = readAll(file);
    const leaves = tableLeaves(file);
    expect(leaves.length).toBeGreaterThan(20);
    const mid = Math.floor(leaves.length / 2);
    // Two stretches of table pages in the middle, the index intact: lost rows are counted exactly.
    damage(file, [leaves[mid - 5], leaves[mid - 4], leaves[mid + 3]] as number[]);

    const { log, lines } = capturingLogger();
    const ob = await h.start({}, {}, log);
    const s = ob.stats();
    expect(s.quarantined_file).toMatch(/outbox\.db\.corrupt-/);
    expect(existsSync(s.quarantined_file as string)).toBe(true);
    expect(s.errors.last_error?.code).toBe('OUTBOX_CORRUPT');
    expect(s.salvage_lost_rows).toBeGreaterThan(0);
    expect(s.salvaged_rows).toBeGreaterThan((N - ACKED) * 0.9);
    expect(s.salvaged_rows + s.salvage_lost_rows).toBe(N - ACKED);
    expect(s.depth_total).toBe(s.salvaged_rows);

    const rows = ob.lease(N);
    expect(rows).toHaveLength(s.salvaged_rows);
    for (const r of rows) {
      const o = original.get(r.seq);
      expect(o, `seq ${r.seq}`).toBeDefined();
      expect({ ...r, priority: CLASSES.indexOf(r.priority) }).toEqual(o);
      expect(delivered.has(r.seq)).toBe(false); // delivered rows are not sent again
    }
    // Seqs continue above the old file's.
    expect(ob.append({ id: 'after', topic: 'health', priority: 'health', payload: {} })).toBe(N + 1);

    const line = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('outbox database is corrupt'));
    expect(line).toMatchObject({ level: 50, salvaged_rows: s.salvaged_rows, lost_rows: s.salvage_lost_rows, lost_counted_by: 'index' });
    expect(readdirSync(h.dir).filter((f) => f.includes('salvage'))).toEqual([]);
  });

  it('adds up too when the index is damaged as well (pages in the middle of the file)', async () => {
    const N = 3000;
    const { file } = await fill(N);
    const pages = statSync(file).size / PAGE;
    const first = Math.floor(pages / 2);
    damage(file, [first, first + 1, first + 2, first + 3, first + 4]);
    const ob = await h.start();
    const s = ob.stats();
    expect(s.quarantined_file).not.toBeNull();
    expect(s.salvaged_rows).toBeGreaterThan(N / 2);
    expect(s.salvaged_rows + s.salvage_lost_rows).toBe(N);
    expect(ob.append({ id: 'after', topic: 'health', priority: 'health', payload: {} })).toBe(N + 1);
  });

  it('finishes a replacement interrupted between moving the damaged file aside and renaming the copy', async () => {
    const { file } = await fill(10);
    renameSync(file, `${file}.salvaged`); // the copy, complete; the damaged file already aside
    writeFileSync(`${file}.salvage-tmp`, 'half a copy of an earlier attempt');
    const ob = await h.start();
    expect(ob.lease(100).map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => `id-${i + 1}`).sort((a, b) => CLASSES.indexOf(rowClass(a)) - CLASSES.indexOf(rowClass(b))));
    expect(readdirSync(h.dir).sort()).toEqual(['outbox.db', 'outbox.db-shm', 'outbox.db-wal']);
  });
});

/** The class `fill` gave row `id-<i>`. */
function rowClass(id: string): OutboxMessage['priority'] {
  return CLASSES[Number(id.slice(3)) % 4] as OutboxMessage['priority'];
}
