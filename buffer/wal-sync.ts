// The outbox's disk waits, off the main thread: a worker thread fsyncs the WAL after group commits and runs the
// checkpoints, so an SD card that takes 100 ms to sync never stalls the agent's event loop (frames, MQTT).
//
// The main connection then commits with synchronous = NORMAL (no fsync: the transaction only reaches the page
// cache) and wal_autocheckpoint = 0. A commit with rows counts as durable, and its rows may be sent, only once the
// worker's fsync of the WAL file has returned: exactly what synchronous = FULL would have waited for. Checkpoints
// (copying the WAL into the database, which syncs both files) run on the worker's own connection, PASSIVE: they
// never block the main connection's writers or readers.
//
// The worker is a few lines of plain JS evaluated in the thread (as the doctor's outbox check does): no loader,
// the same code under dist/ and under tests, ~2 MB of memory.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/log.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.module);
const wal = workerData.file + '-wal';
let db;
let fd;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  // Never wait for a lock: a checkpoint that finds one busy is simply retried with a later commit.
  db.pragma('busy_timeout = 0');
  // Checkpoints sync the WAL before copying it and the database after.
  db.pragma('synchronous = FULL');
  parentPort.postMessage({ type: 'ready' });
} catch (err) {
  parentPort.postMessage({ type: 'failed', message: String(err && err.message || err) });
  process.exit(0);
}
function fsyncWal() {
  // The WAL keeps its inode while any connection is open (this one is), so one descriptor serves throughout.
  if (fd === undefined) {
    try { fd = fs.openSync(wal, 'r'); } catch (err) { if (err.code === 'ENOENT') return; throw err; }
  }
  fs.fsyncSync(fd);
}
parentPort.on('message', (m) => {
  if (m.type === 'close') {
    try { db.close(); } catch {}
    try { if (fd !== undefined) fs.closeSync(fd); } catch {}
    process.exit(0);
  }
  const reply = { type: 'done', id: m.id, ok: true };
  const t0 = performance.now();
  if (m.fsync) {
    try { fsyncWal(); } catch (err) { reply.ok = false; reply.error = { code: err.code || 'EIO', message: String(err.message || err) }; }
  }
  reply.fsync_ms = performance.now() - t0;
  if (m.checkpoint && reply.ok) {
    try { reply.checkpoint = db.pragma('wal_checkpoint(PASSIVE)')[0]; } catch (err) { reply.checkpoint_error = String(err.message || err); }
  }
  parentPort.postMessage(reply);
});
`;

/** How long a closing worker may take to finish an fsync or checkpoint before it is terminated. */
const CLOSE_GRACE_MS = 5_000;

export interface SyncRequest {
  /** fsync the WAL (a commit with rows under synchronous = FULL). */
  fsync: boolean;
  /** Run a PASSIVE checkpoint afterwards. */
  checkpoint: boolean;
}

/** Called when the request (and every request merged into it) is done; an Error when the fsync failed. */
export type SyncDone = (err: Error | undefined) => void;

interface Batch extends SyncRequest {
  done: SyncDone[];
}

interface Reply {
  type: 'ready' | 'failed' | 'done';
  id?: number;
  ok?: boolean;
  error?: { code: string; message: string };
  message?: string;
  fsync_ms?: number;
  checkpoint_error?: string;
}

export interface WalSyncHooks {
  /** The worker has its connection: the main connection may stop syncing and checkpointing. */
  ready: () => void;
  /** The worker failed to start or died: the main connection must sync and checkpoint itself again. */
  lost: (err: Error) => void;
}

/** Stats of the syncing worker. */
export interface WalSyncStats {
  /** True while fsyncs and checkpoints run in the worker thread. */
  sync_in_worker: boolean;
  fsyncs: number;
  /** Duration of the worker's WAL fsyncs, ms (avg: moving average). */
  fsync_ms: { last: number; avg: number; max: number };
  checkpoints: number;
}

/**
 * The worker thread and its requests: at most one in the worker at a time; requests made meanwhile are merged
 * into the next one, so one fsync covers every commit made while the previous fsync ran (group commit of the
 * syncs). Callbacks run on the main thread.
 */
export class WalSync {
  private worker: Worker | undefined;
  private ready = false;
  private closed = false;
  private inflight: (Batch & { id: number }) | undefined;
  private next: Batch | undefined;
  private seq = 0;
  private fsyncs = 0;
  private fsyncMs = { last: 0, avg: 0, max: 0 };
  private checkpoints = 0;

  constructor(
    private readonly file: string,
    private readonly hooks: WalSyncHooks,
    private readonly log: Logger,
  ) {}

  /** True while requests go to the worker. */
  get active(): boolean {
    return this.ready && !this.closed;
  }

  /** Spawns the worker; `hooks.ready` follows once it has opened its connection. */
  start(): void {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.file, module }, name: 'outbox-sync' });
    this.worker = w;
    w.on('message', (m: Reply) => this.onMessage(m));
    w.on('error', (err) => this.lose(err));
    w.on('exit', (code) => this.lose(new Error(`outbox sync worker exited (${code})`)));
    // After the listeners (adding a 'message' listener refs the port again): an open outbox alone never keeps
    // the process alive, as before.
    w.unref();
  }

  /** Queues a request; `done` runs once the worker has served it (merged with others that came meanwhile). */
  request(req: SyncRequest, done: SyncDone): void {
    if (!this.active) return done(new Error('outbox sync worker is not running'));
    const n = (this.next ??= { fsync: false, checkpoint: false, done: [] });
    n.fsync ||= req.fsync;
    n.checkpoint ||= req.checkpoint;
    n.done.push(done);
    this.post();
  }

  /** Lets the worker finish what it is doing, close its connection and exit; terminated after a grace. */
  async stop(): Promise<void> {
    const w = this.worker;
    if (!w || this.closed) return;
    this.closed = true;
    this.fail(new Error('outbox closing'));
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([exited.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    if (!inTime) await w.terminate();
  }

  /** Terminates the worker at once (closeAbruptly: a simulated crash). Pending requests are dropped. */
  kill(): void {
    this.closed = true;
    this.inflight = undefined;
    this.next = undefined;
    void this.worker?.terminate();
  }

  stats(): WalSyncStats {
    const r = (v: number) => Math.round(v * 1000) / 1000;
    return { sync_in_worker: this.active, fsyncs: this.fsyncs, fsync_ms: { last: r(this.fsyncMs.last), avg: r(this.fsyncMs.avg), max: r(this.fsyncMs.max) }, checkpoints: this.checkpoints };
  }

  private post(): void {
    if (this.inflight || !this.next || !this.worker) return;
    this.inflight = { ...this.next, id: ++this.seq };
    this.next = undefined;
    this.worker.postMessage({ type: 'sync', id: this.inflight.id, fsync: this.inflight.fsync, checkpoint: this.inflight.checkpoint });
  }

  private onMessage(m: Reply): void {
    if (this.closed) return;
    if (m.type === 'ready') {
      this.ready = true;
      this.hooks.ready();
      return;
    }
    if (m.type === 'failed') return this.lose(new Error(`outbox sync worker could not open ${this.file}: ${m.message}`));
    const b = this.inflight;
    if (!b || b.id !== m.id) return;
    this.inflight = undefined;
    if (b.fsync && m.ok) {
      const ms = m.fsync_ms ?? 0;
      this.fsyncs++;
      this.fsyncMs = { last: ms, avg: this.fsyncs === 1 ? ms : this.fsyncMs.avg * 0.9 + ms * 0.1, max: Math.max(this.fsyncMs.max, ms) };
    }
    if (b.checkpoint) {
      if (m.checkpoint_error) this.log.warn({ err: m.checkpoint_error }, 'outbox checkpoint failed; retried with a later commit');
      else this.checkpoints++;
    }
    const err = m.ok ? undefined : Object.assign(new Error(`fsync of ${this.file}-wal failed: ${m.error?.message}`), { code: m.error?.code });
    for (const done of b.done) done(err);
    this.post();
  }

  /** The worker is gone: requests fail, and the outbox syncs on the main thread again. */
  private lose(err: Error): void {
    if (this.closed) return;
    const wasReady = this.ready;
    this.closed = true;
    this.ready = false;
    this.fail(err);
    if (wasReady) this.log.error({ err }, 'outbox sync worker lost; syncing on the main thread');
    else this.log.warn({ err }, 'outbox sync worker did not start; syncing on the main thread');
    this.hooks.lost(err);
  }

  private fail(err: Error): void {
    const pending = [...(this.inflight?.done ?? []), ...(this.next?.done ?? [])];
    this.inflight = undefined;
    this.next = undefined;
    for (const done of pending) done(err);
  }
}
