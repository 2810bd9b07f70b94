// Evidence package retention: folders renamed into place, bounded in MB (acknowledged packages go first,
// unacknowledged ones last) and days, acknowledgements kept across restarts, unfinished builds removed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../../contract/event.js';
import { PACKAGES_INDEX_FILE, PackageStore } from '../../../inference/evidence/store.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const KB = 1024;
const DAY = 86_400_000;

/** Builds a package of `bytes` in the temp folder and commits it, `age_ms` old. */
async function add(store: PackageStore, bytes: number, age_ms = 0): Promise<string> {
  const id = uuidv7();
  fs.writeFileSync(path.join(await store.begin(id), 'clip.mp4'), Buffer.alloc(bytes));
  await store.commit(id, bytes, Date.now() - age_ms);
  return id;
}

describe('evidence package store', () => {
  it('renames complete packages into place and evicts acknowledged ones first, unacknowledged last', async () => {
    const dir = tempDir();
    const store = new PackageStore(dir, { max_mb: 1, max_days: 30 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await add(store, 200 * KB, (10 - i) * 1000));
    expect(fs.existsSync(path.join(dir, ids[0]!, 'clip.mp4'))).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    // The two newest are acknowledged: space pressure takes them before the older, unacknowledged ones.
    expect(await store.markAcknowledged(ids[2]!)).toBe(true);
    expect(await store.markAcknowledged(ids[3]!)).toBe(true);
    expect(await store.markAcknowledged(uuidv7())).toBe(false);
    ids.push(await add(store, 300 * KB)); // 1100 KiB > 1 MiB
    expect(store.has(ids[2]!)).toBe(false);
    expect(fs.existsSync(path.join(dir, ids[2]!))).toBe(false);
    expect([ids[0], ids[1], ids[3], ids[4]].every((id) => store.has(id!))).toBe(true);
    expect(store.stats()).toMatchObject({ packages: 4, evicted_acknowledged: 1, evicted_unacknowledged: 0, unacknowledged: 3 });
    ids.push(await add(store, 400 * KB)); // the last acknowledged one goes, then the oldest unacknowledged
    expect(store.has(ids[3]!)).toBe(false);
    expect(store.has(ids[0]!)).toBe(false);
    expect(store.has(ids[1]!)).toBe(true);
    expect(store.stats()).toMatchObject({ evicted_acknowledged: 2, evicted_unacknowledged: 1, written: 6 });
    expect(store.stats().bytes).toBeLessThanOrEqual(1024 * KB);
  });

  it('deletes packages older than max_days, acknowledged or not', async () => {
    const store = new PackageStore(tempDir(), { max_mb: 100, max_days: 7 });
    const old = await add(store, KB, 8 * DAY);
    const recent = await add(store, KB, 6 * DAY);
    expect(store.has(old)).toBe(false);
    expect(store.has(recent)).toBe(true);
    await store.enforce(Date.now() + 2 * DAY);
    expect(store.has(recent)).toBe(false);
    expect(store.stats()).toMatchObject({ expired: 2, packages: 0 });
  });

  it('keeps acknowledgements across a restart and removes builds cut short', async () => {
    const dir = tempDir();
    const a = new PackageStore(dir, { max_mb: 100, max_days: 30 });
    const acked = await add(a, KB);
    const open = await add(a, KB);
    await a.markAcknowledged(acked);
    fs.mkdirSync(path.join(dir, `.tmp-${uuidv7()}`)); // a build the power cut interrupted
    fs.writeFileSync(path.join(dir, 'README.txt'), 'not a package');
    const index = JSON.parse(fs.readFileSync(path.join(dir, PACKAGES_INDEX_FILE), 'utf8')) as { packages: Array<{ id: string; acked: boolean }> };
    expect(index.packages.find((p) => p.id === acked)?.acked).toBe(true);

    const b = new PackageStore(dir, { max_mb: 100, max_days: 30 });
    await b.open();
    expect(b.list().map((p) => [p.id, p.acknowledged])).toEqual([
      [acked, true],
      [open, false],
    ]);
    expect(b.stats()).toMatchObject({ packages: 2, unacknowledged: 1 });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'README.txt'))).toBe(true);
  });

  it('runs builds one at a time', async () => {
    const store = new PackageStore(tempDir(), { max_mb: 100, max_days: 30 });
    const order: string[] = [];
    const job = (name: string, ms: number) =>
      store.exclusive(async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}-`);
      });
    await Promise.all([job('a', 30), job('b', 1), job('c', 1)]);
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });
});
