// The outbox's fsyncs and checkpoints in a worker thread: rows become leasable (and announced) only once the
// worker has synced the WAL, a flush is durable when it returns, a lost worker hands syncing back to the main
// connection without losing a row, and the inline mode stays available.
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Outbox } from '../../../buffer/outbox.js';
import { msg, useOutboxHarness } from './fixtures.js';

const h = useOutboxHarness();

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

const workerSyncing = (ob: Outbox) => until(() => ob.stats().wal_sync.sync_in_worker);

describe('outbox: WAL sync in a worker thread', () => {
  it('leases rows only once the worker has synced their commit, and tells the listeners then', async () => {
    const ob = await h.start({ commit_interval_ms: 1000, commit_rows: 100_000, pending_max_rows: 100 });
    await workerSyncing(ob);
    const heard: number[] = [];
    const durable = new Promise<void>((resolve) =>
      ob.onCommit(() => {
        heard.push(ob.lease(1000).length);
        resolve();
      }),
    );
    // The 101st row is over pending_max_rows: append() commits at once, on this thread, without an fsync.
    for (let i = 1; i <= 101; i++) ob.append(msg(i));
    expect(ob.stats().pending_rows).toBe(0);
    expect(ob.lease(1000)).toEqual([]); // committed, not yet durable: the worker's fsync is pending
    await durable;
    expect(heard).toEqual([101]);
    const s = ob.stats().wal_sync;
    expect(s.fsyncs).toBeGreaterThanOrEqual(1);
    expect(s.fsync_ms.max).toBeGreaterThanOrEqual(0);
  });

  it('a flush is durable when it returns, worker or not', async () => {
    const ob = await h.start({ commit_interval_ms: 1000 });
    await workerSyncing(ob);
    for (let i = 1; i <= 5; i++) ob.append(msg(i));
    expect(ob.flush()).toBe(true);
    expect(ob.lease(10).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('checkpoints in the worker: the database file takes the rows (the main connection checkpoints no more)', async () => {
    const ob = await h.start({ commit_interval_ms: 5 });
    await workerSyncing(ob);
    const db = join(h.dir, 'outbox.db');
    const before = statSync(db).size;
    const pad = 'x'.repeat(500);
    for (let i = 1; i <= 400; i++) ob.append(msg(i, { payload: { pad } }));
    await until(() => ob.stats().wal_sync.checkpoints >= 1 && ob.lease(1000).length > 0);
    expect(statSync(db).size).toBeGreaterThan(before + 100_000);
  });

  it('when the worker dies, commits sync on the main thread again and every row is delivered', async () => {
    const ob = await h.start({ commit_interval_ms: 10 });
    await workerSyncing(ob);
    for (let i = 1; i <= 3; i++) ob.append(msg(i));
    // A real fault: the thread is terminated (what an uncaught error in it would do).
    const sync = (ob as unknown as { writer: { sync: { worker: { terminate(): Promise<number> } } } }).writer.sync;
    await sync.worker.terminate();
    await until(() => !ob.stats().wal_sync.sync_in_worker);
    for (let i = 4; i <= 6; i++) ob.append(msg(i));
    await until(() => ob.stats().pending_rows === 0);
    expect(ob.lease(10).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const again = await h.restart(ob);
    expect(again.lease(10).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('syncInWorker: false keeps the fsync inside each commit (SQLite FULL)', async () => {
    const ob = await h.start({ commit_interval_ms: 10 }, { syncInWorker: false });
    for (let i = 1; i <= 3; i++) ob.append(msg(i));
    await until(() => ob.lease(10).length === 3); // durable as soon as committed
    await sleep(50);
    expect(ob.stats().wal_sync).toMatchObject({ sync_in_worker: false, fsyncs: 0 });
  });

  it('an open outbox does not keep the process alive: its sync worker is unreferenced', () => {
    const script = join(h.dir, 'open-outbox.mts');
    const root = resolve(import.meta.dirname, '../../..');
    writeFileSync(
      script,
      `import { Outbox } from ${JSON.stringify(join(root, 'buffer/outbox.ts'))};
import { OutboxSchema } from ${JSON.stringify(join(root, 'config/schema/outbox.ts'))};
import { silentLogger } from ${JSON.stringify(join(root, 'core/log.ts'))};
const ob = new Outbox(OutboxSchema.parse({ path: ${JSON.stringify(join(h.dir, 'child.db'))} }), silentLogger());
await ob.start();
while (!ob.stats().wal_sync.sync_in_worker) await new Promise((r) => setTimeout(r, 5));
ob.append({ id: 'a', topic: 'events/cam1', priority: 'event', payload: {} });
await new Promise((r) => setTimeout(r, 300));
console.log(ob.stats().wal_sync.fsyncs);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect(r.status).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(1); // the worker did sync
  });
});
