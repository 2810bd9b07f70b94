// File-system facts the config checks and provision rely on: where a path really leads (symlinks resolved,
// even for a file that does not exist yet), whether it stays inside a directory, what kind of file is
// there, and whether it is on a kernel pseudo-filesystem (/proc, /sys, /dev) where reads can block forever.
import { lstatSync, realpathSync, statfsSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** What is at a path, in words for a message ("a directory", "a named pipe"…). */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

export interface RealPath {
  /** The path with every existing component's symlinks resolved; the missing tail appended as written. */
  real: string;
  /** The deepest part of the path that exists (resolved). */
  existing: string;
  /** A component that is a symlink to nothing: where the agent would create a file is decided by its target. */
  dangling?: string;
}

/** realpath of the nearest existing ancestor plus the rest: where a file created at `p` would really be. */
export function realpathLoose(p: string): RealPath {
  const abs = resolve(p);
  for (let cur = abs; ; cur = dirname(cur)) {
    try {
      const real = realpathSync(cur);
      return { real: join(real, relative(cur, abs)), existing: real };
    } catch {
      if (lstatOrUndefined(cur)?.isSymbolicLink()) return { real: abs, existing: cur, dangling: cur };
      if (dirname(cur) === cur) return { real: abs, existing: cur };
    }
  }
}

/** True when `child` is `parent` itself (if allowed) or below it. Both absolute and already resolved. */
export function isInside(child: string, parent: string, allowEqual: boolean): boolean {
  if (child === parent) return allowEqual;
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/** statfs magic numbers of kernel pseudo-filesystems (linux/magic.h). devtmpfs reports tmpfs: /dev is matched by path. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x1cd1, 'devpts'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0xde5e81e4, 'efivarfs'],
]);
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/**
 * The pseudo-filesystem a path is on ("/proc", "sysfs"…), or undefined for a real one. Checked on the
 * resolved path (a symlink into /proc counts) and by the filesystem type of its nearest existing part.
 */
export function pseudoFilesystem(p: string): string | undefined {
  const { real, existing } = realpathLoose(p);
  const root = PSEUDO_ROOTS.find((r) => real === r || real.startsWith(`${r}/`));
  if (root) return root;
  try {
    return PSEUDO_FS.get(Number(statfsSync(existing).type));
  } catch {
    return undefined;
  }
}
