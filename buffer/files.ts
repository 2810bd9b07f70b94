// The outbox's files on disk: which ones it may touch, and moving a damaged database aside.
//
// The outbox runs as root on the box and renames and creates files at a configured path, so it touches a file
// only when it is plainly its own: absent, empty, or a regular file (not a symlink, device, fifo or directory)
// that starts with the SQLite header. Anything else is refused with nothing renamed, created or written.
import { closeSync, constants, existsSync, fsyncSync, fstatSync, lstatSync, openSync, readSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { OutboxError } from './errors.js';

/** The first 16 bytes of every SQLite 3 database file. */
export const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Files SQLite keeps beside a database. */
const SIDE_FILES = ['-wal', '-shm', '-journal'] as const;

export type OutboxFileState = 'absent' | 'empty' | 'sqlite';

function describe(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a fifo';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function lstatIfAny(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OutboxError('OUTBOX_OPEN_FAILED', `cannot inspect ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function requireRegular(path: string, st: Stats, what: string): void {
  if (st.isFile()) return;
  throw new OutboxError(
    'OUTBOX_PATH_INVALID',
    `${what} ${path} is ${describe(st)}; expected a regular file or no file at all. Nothing was opened, moved or written: point outbox.path at a new file in the data directory`,
  );
}

/** True when the regular file at `path` starts with the SQLite header (read without following a symlink). */
function hasSqliteHeader(path: string): boolean {
  let fd: number;
  try {
    // O_NOFOLLOW and O_NONBLOCK: should the path change into a symlink or a fifo since lstat, open fails or returns at once.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new OutboxError('OUTBOX_PATH_INVALID', `cannot read the header of ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); expected a regular file`, {
      cause: err,
    });
  }
  try {
    const st = fstatSync(fd);
    requireRegular(path, st, 'the outbox file');
    const head = Buffer.alloc(SQLITE_HEADER.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.equals(SQLITE_HEADER);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks the outbox file before anything opens, creates or renames it. Throws OUTBOX_PATH_INVALID when the
 * file or one of its SQLite side files (-wal, -shm, -journal) is not a regular file, OUTBOX_NOT_SQLITE when it
 * is a non-empty file without the SQLite header.
 */
export function inspectOutboxFile(file: string): OutboxFileState {
  for (const suffix of SIDE_FILES) {
    const side = lstatIfAny(`${file}${suffix}`);
    if (side) requireRegular(`${file}${suffix}`, side, `the SQLite ${suffix} file beside the outbox,`);
  }
  const st = lstatIfAny(file);
  if (!st) return 'absent';
  requireRegular(file, st, 'the outbox file');
  if (st.size === 0) return 'empty';
  if (!hasSqliteHeader(file)) {
    throw new OutboxError(
      'OUTBOX_NOT_SQLITE',
      `${file} is not an SQLite database (its first 16 bytes are not "SQLite format 3\\0"); expected an outbox database or no file. Nothing was moved or written: point outbox.path at a new file in the data directory`,
    );
  }
  return 'sqlite';
}

/**
 * Moves a damaged database and its -wal/-shm aside as `<file>.corrupt-<timestamp>[-wal|-shm]`. Checks again
 * that the file is an SQLite database first: this is the one place that renames a file it did not create.
 */
export function quarantine(file: string, now_ms: number): string {
  if (inspectOutboxFile(file) !== 'sqlite') {
    throw new OutboxError('OUTBOX_NOT_SQLITE', `refusing to quarantine ${file}: not an SQLite database`);
  }
  const stamp = new Date(now_ms).toISOString().replace(/[:.]/g, '-');
  let target = `${file}.corrupt-${stamp}`;
  for (let i = 1; existsSync(target); i++) target = `${file}.corrupt-${stamp}-${i}`;
  renameSync(file, target);
  for (const suffix of ['-wal', '-shm']) {
    if (lstatIfAny(`${file}${suffix}`)?.isFile()) renameSync(`${file}${suffix}`, `${target}${suffix}`);
  }
  fsyncDir(dirname(file));
  return target;
}

/** Removes a temporary file of the outbox's own (and its side files); refuses anything but a regular file. */
export function removeOwnFile(path: string): void {
  for (const p of [path, ...SIDE_FILES.map((s) => `${path}${s}`)]) {
    const st = lstatIfAny(p);
    if (!st) continue;
    requireRegular(p, st, 'the outbox temporary file');
    rmSync(p);
  }
}

export function exists(path: string): boolean {
  return lstatIfAny(path) !== undefined;
}

/** Makes renames in `dir` durable (best effort: not every filesystem supports a directory fsync). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // the rename itself is atomic
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
