// The outbox runs as root: pointed at a file that is not its own (a system file, a symlink, a fifo, another
// program's database), it must refuse with a typed error and leave everything exactly as it was.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { OutboxError } from '../../../buffer/errors.js';
import { Outbox } from '../../../buffer/outbox.js';
import { silentLogger } from '../../../core/log.js';
import { useOutboxHarness } from './fixtures.js';

const h = useOutboxHarness();

const PASSWD = Buffer.from('root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');

interface Snapshot {
  kind: string;
  ino: number;
  mtime_ms: number;
  size: number;
  content?: string;
  link?: string;
}

function snapshot(path: string): Snapshot {
  const st = lstatSync(path);
  const kind = st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  return {
    kind,
    ino: st.ino,
    mtime_ms: st.mtimeMs,
    size: st.size,
    ...(kind === 'file' ? { content: readFileSync(path).toString('base64') } : {}),
    ...(kind === 'symlink' ? { link: readlinkSync(path) } : {}),
  };
}

/** Every entry under `dir` with its snapshot. */
function tree(dir: string): Record<string, Snapshot> {
  const out: Record<string, Snapshot> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) out[name] = snapshot(join(dir, name));
  return out;
}

/** A decoy system directory (etc/passwd with known bytes) and a data directory beside it. */
function layout(): { etc: string; passwd: string; data: string } {
  const etc = join(h.dir, 'etc');
  const data = join(h.dir, 'data');
  mkdirSync(etc);
  mkdirSync(data);
  const passwd = join(etc, 'passwd');
  writeFileSync(passwd, PASSWD);
  return { etc, passwd, data };
}

async function refused(path: string): Promise<OutboxError> {
  const ob = new Outbox(h.config({ path }), silentLogger());
  const err = await ob.start(new AbortController().signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(ob.isOpen).toBe(false);
  expect(err).toBeInstanceOf(OutboxError);
  return err as OutboxError;
}

describe('outbox: never touches a file it does not own', () => {
  it('refuses a regular file without the SQLite header (a traversal to /etc/passwd): nothing renamed, created or written', async () => {
    const { passwd, data } = layout();
    const before = tree(h.dir);
    // The path as a configuration with "../" would give it, not normalised.
    const err = await refused(`${data}/../etc/passwd`);
    expect(err.code).toBe('OUTBOX_NOT_SQLITE');
    expect(err.message).toContain(`${data}/../etc/passwd`);
    expect(err.message).toMatch(/SQLite format 3/);
    expect(tree(h.dir)).toEqual(before);
    expect(readFileSync(passwd)).toEqual(PASSWD);
  });

  it('refuses a symlink, even to a file it could read, and leaves the link and its target as they were', async () => {
    const { passwd, data } = layout();
    const link = join(data, 'outbox.db');
    symlinkSync(passwd, link);
    const before = tree(h.dir);
    const err = await refused(link);
    expect(err.code).toBe('OUTBOX_PATH_INVALID');
    expect(err.message).toContain(link);
    expect(err.message).toMatch(/symbolic link.*expected a regular file/);
    expect(tree(h.dir)).toEqual(before);
    expect(readFileSync(passwd)).toEqual(PASSWD);
  });

  it('refuses a fifo without opening it (no hang) and a directory', async () => {
    const { data } = layout();
    const fifo = join(data, 'outbox.db');
    execFileSync('mkfifo', [fifo]);
    const dir = join(data, 'dir.db');
    mkdirSync(dir);
    const before = tree(h.dir);
    const e1 = await refused(fifo);
    expect(e1.code).toBe('OUTBOX_PATH_INVALID');
    expect(e1.message).toMatch(/is a fifo/);
    const e2 = await refused(dir);
    expect(e2.code).toBe('OUTBOX_PATH_INVALID');
    expect(e2.message).toMatch(/is a directory/);
    expect(tree(h.dir)).toEqual(before);
  });

  it('refuses a -wal side file that is a symlink (SQLite would write through it)', async () => {
    const { passwd, data } = layout();
    symlinkSync(passwd, join(data, 'outbox.db-wal'));
    const before = tree(h.dir);
    const err = await refused(join(data, 'outbox.db'));
    expect(err.code).toBe('OUTBOX_PATH_INVALID');
    expect(err.message).toContain('outbox.db-wal');
    expect(tree(h.dir)).toEqual(before);
    expect(readFileSync(passwd)).toEqual(PASSWD);
  });

  it('refuses another program’s SQLite database without writing to it', async () => {
    const { data } = layout();
    const file = join(data, 'app.db');
    const other = new Database(file);
    other.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice');");
    other.close();
    const before = tree(h.dir);
    const err = await refused(file);
    expect(err.code).toBe('OUTBOX_FOREIGN_DATABASE');
    expect(err.message).toMatch(/tables: users/);
    expect(tree(h.dir)).toEqual(before);
  });

  it('still creates a new outbox where there is no file, and opens an empty file', async () => {
    const { data } = layout();
    const fresh = await h.start({ path: join(data, 'sub', 'outbox.db') });
    expect(fresh.isOpen).toBe(true);
    writeFileSync(join(data, 'empty.db'), '');
    const empty = await h.start({ path: join(data, 'empty.db') });
    expect(empty.append({ id: 'a', topic: 'health', priority: 'health', payload: {} })).toBe(1);
    expect(empty.flush()).toBe(true);
  });
});
