// Evidence packages on disk: one folder per violation, `<dir>/<event id>/`, written in a temp folder and renamed
// into place when complete. Retention is bounded in MB and days; packages the center has not acknowledged are
// the last to go. A small index (packages.json) keeps the acknowledgements across restarts.
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EVENT_ID_PATTERN } from '../../contract/evidence.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';

export const PACKAGES_INDEX_FILE = 'packages.json';
const TEMP_PREFIX = '.tmp-';
const DAY_MS = 86_400_000;

export interface RetentionOptions {
  max_mb: number;
  max_days: number;
  log?: Logger;
}

interface Entry {
  id: string;
  created_ms: number;
  bytes: number;
  acked: boolean;
}

export interface PackageStoreStats {
  packages: number;
  bytes: number;
  /** Packages the center has not acknowledged yet. */
  unacknowledged: number;
  written: number;
  /** Deleted for space: acknowledged ones first, then (only when no acknowledged one is left) unacknowledged. */
  evicted_acknowledged: number;
  evicted_unacknowledged: number;
  /** Deleted for age (max_days). */
  expired: number;
}

const stores = new Map<string, PackageStore>();

/**
 * The packages of one evidence directory (cameras sharing the directory share the store: `forDir`). Builds run
 * one at a time through `exclusive` (they decode video: the box has few cores).
 */
export class PackageStore {
  private readonly entries = new Map<string, Entry>();
  private ready: Promise<void> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private persisting: Promise<void> = Promise.resolve();
  private readonly counters = { written: 0, evicted_acknowledged: 0, evicted_unacknowledged: 0, expired: 0 };

  constructor(
    readonly dir: string,
    private readonly opts: RetentionOptions,
  ) {}

  /** The store of a directory, created on first use (one per process and directory). */
  static forDir(dir: string, opts: RetentionOptions): PackageStore {
    const key = resolve(dir);
    let s = stores.get(key);
    if (!s) stores.set(key, (s = new PackageStore(key, opts)));
    return s;
  }

  /** Scans the directory once: package folders, acknowledgements from the index; removes unfinished temp folders. */
  open(): Promise<void> {
    this.ready ??= this.scan();
    return this.ready;
  }

  /** The folder a package is built in before `commit` renames it into place. */
  tempDir(id: string): string {
    return join(this.dir, `${TEMP_PREFIX}${id}`);
  }

  /** An empty temp folder for building package `id` (after the first scan, which removes unfinished ones). */
  async begin(id: string): Promise<string> {
    await this.open();
    const dir = this.tempDir(id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  packageDir(id: string): string {
    return join(this.dir, id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Runs `fn` after the builds queued before it (one at a time). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Renames the complete temp folder into place, indexes it and enforces the bounds. */
  async commit(id: string, bytes: number, created_ms: number): Promise<void> {
    await this.open();
    await rm(this.packageDir(id), { recursive: true, force: true }); // a rebuilt package replaces its older self
    await rename(this.tempDir(id), this.packageDir(id));
    this.entries.set(id, { id, created_ms, bytes, acked: false });
    this.counters.written++;
    await this.enforce(Date.now()); // persists the index
  }

  /**
   * The center has the package (it fetched it with the `evidence` command, or acknowledged it explicitly): it
   * may now be evicted before unacknowledged ones. Returns false for an unknown package.
   */
  async markAcknowledged(id: string): Promise<boolean> {
    await this.open();
    const e = this.entries.get(id);
    if (!e) return false;
    if (!e.acked) {
      e.acked = true;
      await this.persist();
    }
    return true;
  }

  /** Deletes what is beyond the bounds now (also called after every commit). */
  async enforce(now = Date.now()): Promise<void> {
    await this.open();
    const cutoff = now - this.opts.max_days * DAY_MS;
    for (const e of [...this.entries.values()]) {
      if (e.created_ms < cutoff) {
        await this.remove(e);
        this.counters.expired++;
      }
    }
    const max = this.opts.max_mb * 1024 * 1024;
    let total = this.totalBytes();
    while (total > max && this.entries.size > 0) {
      const byAge = [...this.entries.values()].sort((a, b) => a.created_ms - b.created_ms || (a.id < b.id ? -1 : 1));
      const victim = byAge.find((e) => e.acked) ?? byAge[0]!;
      await this.remove(victim);
      total -= victim.bytes;
      if (victim.acked) this.counters.evicted_acknowledged++;
      else {
        this.counters.evicted_unacknowledged++;
        this.opts.log?.warn({ package: victim.id }, 'evidence package evicted before the center acknowledged it (evidence.max_mb too small for the backlog)');
      }
    }
    await this.persist();
  }

  stats(): PackageStoreStats {
    let unacknowledged = 0;
    for (const e of this.entries.values()) if (!e.acked) unacknowledged++;
    return { packages: this.entries.size, bytes: this.totalBytes(), unacknowledged, ...this.counters };
  }

  /** Package ids, oldest first, with their acknowledgement. */
  list(): Array<{ id: string; created_ms: number; bytes: number; acknowledged: boolean }> {
    return [...this.entries.values()].sort((a, b) => a.created_ms - b.created_ms).map((e) => ({ id: e.id, created_ms: e.created_ms, bytes: e.bytes, acknowledged: e.acked }));
  }

  private totalBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  private async remove(e: Entry): Promise<void> {
    this.entries.delete(e.id);
    await rm(this.packageDir(e.id), { recursive: true, force: true }).catch((err: unknown) =>
      this.opts.log?.warn({ package: e.id, err: errorMessage(err) }, 'evidence: cannot delete a package'),
    );
  }

  private async scan(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const acked = new Set<string>();
    const created = new Map<string, number>();
    try {
      const idx = JSON.parse(await readFile(join(this.dir, PACKAGES_INDEX_FILE), 'utf8')) as { packages?: Entry[] };
      for (const e of idx.packages ?? []) {
        if (e.acked) acked.add(e.id);
        created.set(e.id, e.created_ms);
      }
    } catch {
      // no index yet (or unreadable): every package counts as unacknowledged
    }
    for (const name of await readdir(this.dir)) {
      const full = join(this.dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        await rm(full, { recursive: true, force: true }); // a build cut short by a crash or power cut
        continue;
      }
      if (!EVENT_ID_PATTERN.test(name)) continue; // package folders are named by their event id
      try {
        const st = await stat(full);
        if (!st.isDirectory()) continue;
        let bytes = 0;
        for (const f of await readdir(full)) bytes += (await stat(join(full, f))).size;
        this.entries.set(name, { id: name, created_ms: created.get(name) ?? st.mtimeMs, bytes, acked: acked.has(name) });
      } catch {
        // vanished meanwhile
      }
    }
  }

  /** packages.json by temp file, fsync, rename (acknowledgements must survive a power cut). Serialized. */
  private persist(): Promise<void> {
    const body = JSON.stringify({ version: 1, packages: [...this.entries.values()] });
    this.persisting = this.persisting.then(async () => {
      const tmp = join(this.dir, `.${PACKAGES_INDEX_FILE}.tmp`);
      try {
        const fh = await open(tmp, 'w', 0o644);
        try {
          await fh.writeFile(body);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, join(this.dir, PACKAGES_INDEX_FILE));
      } catch (err) {
        this.opts.log?.warn({ err: errorMessage(err) }, 'evidence: cannot write the package index');
      }
    });
    return this.persisting;
  }
}
