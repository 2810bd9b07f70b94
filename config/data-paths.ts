// Own only what is ours: every path the agent writes (the outbox and its SQLite side files, the evidence
// directory, the restart state) must lead, after symlinks, into device.data_dir, unless the config opts out
// for that path explicitly; and nothing the agent would write over may be a device, a pipe, a directory or a
// symlink. `config check` refuses the rest, so a typo or a hostile config cannot aim the agent at /etc/passwd.
import { statSync } from 'node:fs';
import type { Config } from './schema/index.js';
import { fileKind, isInside, lstatOrUndefined, pseudoFilesystem, realpathLoose } from './fs-checks.js';
import type { Path } from './yaml.js';

export interface PathProblem {
  path: Path;
  message: string;
}

/** Files the agent keeps directly in the data dir (agent/health/restarts.ts). */
const STATE_FILES = ['restart-state.json'];
/** What SQLite creates beside the outbox file. */
const SQLITE_SIDE_FILES = ['-wal', '-shm', '-journal'];

interface Target {
  path: Path;
  file: string;
  kind: 'file' | 'dir';
  optIn: boolean;
  optName: string;
}

/** Problems with where the agent would write; paths in `config` are already absolute. */
export function dataPathProblems(config: Config): PathProblem[] {
  const out: PathProblem[] = [];
  const dataDir = config.device.data_dir;
  const at: Path = ['device', 'data_dir'];
  const pseudo = pseudoFilesystem(dataDir);
  if (pseudo) return [{ path: at, message: `${dataDir} is on ${pseudo}, a kernel pseudo-filesystem: the data dir needs a real disk` }];
  const data = realpathLoose(dataDir);
  if (data.dangling) return [{ path: at, message: `${data.dangling} is a symbolic link to nothing: point device.data_dir at a real directory` }];
  const dirStat = stat(dataDir);
  if (dirStat && !dirStat.isDirectory()) return [{ path: at, message: `${dataDir} is ${fileKind(dirStat)}, not a directory` }];
  const existing = stat(data.existing);
  if (existing && !existing.isDirectory()) return [{ path: at, message: `${data.existing} is ${fileKind(existing)}, not a directory` }];

  for (const name of STATE_FILES) {
    const problem = notOverwritable(`${data.real}/${name}`, 'file');
    if (problem) out.push({ path: at, message: `${name} in the data dir: ${problem}` });
  }
  const targets: Target[] = [
    { path: ['outbox', 'path'], file: config.outbox.path, kind: 'file', optIn: config.outbox.allow_outside_data_dir, optName: 'outbox.allow_outside_data_dir' },
    {
      path: ['analytics', 'evidence', 'dir'],
      file: config.analytics.evidence.dir,
      kind: 'dir',
      optIn: config.analytics.evidence.allow_outside_data_dir,
      optName: 'analytics.evidence.allow_outside_data_dir',
    },
  ];
  for (const t of targets) {
    const problem = targetProblem(t, data.real);
    if (problem) out.push({ path: t.path, message: problem });
  }
  return out;
}

function targetProblem(t: Target, dataReal: string): string | undefined {
  const where = realpathLoose(t.file);
  if (where.dangling) return `${where.dangling} is a symbolic link to nothing: the agent would write wherever it points`;
  const pseudo = pseudoFilesystem(t.file);
  if (pseudo) return `${t.file} is on ${pseudo}, a kernel pseudo-filesystem`;
  if (!t.optIn && !isInside(where.real, dataReal, t.kind === 'dir')) {
    return `resolves to ${where.real}, outside device.data_dir (${dataReal}): use a path inside the data dir, or set ${t.optName}: true`;
  }
  const parent = stat(where.existing);
  if (where.existing !== where.real && parent && !parent.isDirectory()) return `${where.existing} is ${fileKind(parent)}, not a directory`;
  const own = notOverwritable(t.file, t.kind);
  if (own) return own;
  if (t.kind === 'file') {
    for (const suffix of SQLITE_SIDE_FILES) {
      const side = notOverwritable(`${t.file}${suffix}`, 'file');
      if (side) return side;
    }
  }
  return undefined;
}

/** Why an existing path cannot be what the agent writes there (a file, or a directory it fills); undefined if fine or absent. */
function notOverwritable(p: string, kind: 'file' | 'dir'): string | undefined {
  const st = lstatOrUndefined(p);
  if (!st) return undefined;
  if (kind === 'file' && !st.isFile()) return `${p} exists and is ${fileKind(st)}: the agent writes only regular files of its own there`;
  if (kind === 'dir') {
    // A directory may be a symlink to one (evidence on another disk); its target was checked above.
    const target = st.isSymbolicLink() ? stat(p) : st;
    if (!target?.isDirectory()) return `${p} exists and is ${target ? fileKind(target) : 'a broken symbolic link'}, not a directory`;
  }
  return undefined;
}

function stat(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}
