// File permissions: config and secrets.env not world-readable, the TLS key 0600, and everything the agent needs
// readable / writable by the user it runs as (systemd User=, default `roadside`), not by whoever runs doctor.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { Config } from '../../../../config/schema/index.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

const execFileP = promisify(execFile);

/** The user the service runs as (firmware-scripts/lib.sh AGENT_USER). */
export const DEFAULT_AGENT_USER = 'roadside';

export interface AgentUser {
  name: string;
  uid: number;
  /** Primary and supplementary groups. */
  gids: number[];
}

/**
 * The user whose access counts: `name` if given (it must exist), else `roadside` when that user exists, else the
 * user running doctor (a box run by hand, a test).
 */
export async function resolveAgentUser(name?: string): Promise<AgentUser> {
  const lookup = async (n: string): Promise<AgentUser | undefined> => {
    try {
      const [u, g] = await Promise.all([execFileP('id', ['-u', n]), execFileP('id', ['-G', n])]);
      return { name: n, uid: Number(u.stdout.trim()), gids: g.stdout.trim().split(/\s+/).map(Number) };
    } catch {
      return undefined;
    }
  };
  if (name !== undefined) {
    const u = await lookup(name);
    if (!u) throw new Error(`no such user: ${name}`);
    return u;
  }
  const u = await lookup(DEFAULT_AGENT_USER);
  if (u) return u;
  const me = userInfo();
  return (await lookup(me.username)) ?? { name: me.username, uid: me.uid, gids: [me.gid, ...(process.getgroups?.() ?? [])] };
}

type Access = 'r' | 'w' | 'x';
const BITS: Record<Access, number> = { r: 4, w: 2, x: 1 };

/** Whether `user` may r/w/x `st` by its mode bits (root may read and write anything). */
function allowed(st: Stats, user: AgentUser, what: Access): boolean {
  if (user.uid === 0) return what !== 'x' || (st.mode & 0o111) !== 0 || st.isDirectory();
  const shift = st.uid === user.uid ? 6 : user.gids.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & BITS[what]) !== 0;
}

/** Why `user` cannot `what` the path (a directory on the way it cannot enter, the file's bits), or null if it can. */
export function accessProblem(path: string, user: AgentUser, what: Access): string | null {
  const full = resolve(path);
  for (let dir = dirname(full); ; dir = dirname(dir)) {
    try {
      if (!allowed(statSync(dir), user, 'x')) return `${user.name} cannot enter ${dir}`;
    } catch {
      return `${dir} does not exist`;
    }
    if (dirname(dir) === dir) break;
  }
  let st: Stats;
  try {
    st = statSync(full);
  } catch {
    return `${full} does not exist`;
  }
  return allowed(st, user, what) ? null : `${user.name} cannot ${what === 'r' ? 'read' : what === 'w' ? 'write' : 'enter'} ${full}`;
}

const mode = (st: Stats): string => `0${(st.mode & 0o777).toString(8)}`;
const owner = (st: Stats): string => `${st.uid}:${st.gid}`;

/** Secrets written in the config file itself (not from the environment). */
function secretsInFile(file: string): string[] {
  try {
    const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
    const found: string[] = [];
    const mqtt = doc?.mqtt as Record<string, unknown> | undefined;
    const status = doc?.status as Record<string, unknown> | undefined;
    if (mqtt?.password !== undefined) found.push('mqtt.password');
    if (status?.token !== undefined) found.push('status.token');
    const cams = Array.isArray(doc?.cameras) ? (doc.cameras as unknown[]) : [];
    cams.forEach((c, i) => {
      if (typeof c === 'object' && c !== null && (c as Record<string, unknown>).password !== undefined) found.push(`cameras[${i}].password`);
    });
    return found;
  } catch {
    return [];
  }
}

export function checkConfigFile(file: string, user: AgentUser): CheckOutcome {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    return fail(`cannot stat ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'check the --config path', { path: file });
  }
  const figures = { path: file, mode: mode(st), owner: owner(st), agent_user: user.name };
  if (st.mode & 0o002) return fail(`${file} is world-writable (${mode(st)}): anyone on the box can redirect the agent`, `chmod 0640 ${file}`, figures);
  const unreadable = accessProblem(file, user, 'r');
  if (unreadable) return fail(`the agent cannot read its config: ${unreadable}`, `chgrp ${user.name} ${file} && chmod 0640 ${file}`, figures);
  const secrets = secretsInFile(file);
  if (st.mode & 0o004 && secrets.length > 0) {
    return fail(
      `${file} is world-readable (${mode(st)}) and holds ${secrets.join(', ')}`,
      `move them to secrets.env (ROADSIDE_* variables, mode 0600), or chmod 0640 ${file}`,
      { ...figures, secrets_in_file: secrets },
    );
  }
  return pass(`${mode(st)}, readable by ${user.name}${secrets.length === 0 ? ', no secrets in it' : `; holds ${secrets.join(', ')} but is not world-readable`}`, { ...figures, secrets_in_file: secrets });
}

export function checkSecretsFile(file: string): CheckOutcome {
  let st: Stats;
  try {
    st = statSync(file);
  } catch {
    return pass(`no ${file} (secrets, if any, come from the environment)`, { path: file, exists: false });
  }
  const figures = { path: file, exists: true, mode: mode(st), owner: owner(st) };
  if (st.mode & 0o006) {
    return fail(`${file} is world-${st.mode & 0o004 ? 'readable' : 'writable'} (${mode(st)}): it holds the passwords`, `chmod 0600 ${file} (systemd reads it as root)`, figures);
  }
  return pass(`${mode(st)}, not world-readable`, figures);
}

/** `pending`: the client certificate is still being signed, so it is not looked for (the config check says so). */
export function checkTlsFiles(config: Config, user: AgentUser, pending?: { cert: string }): CheckOutcome | null {
  const tls = config.mqtt.tls;
  if (!tls) return null;
  const figures: Record<string, unknown> = { agent_user: user.name, ...(pending ? { cert_pending: true } : {}) };
  for (const k of ['ca', 'cert'] as const) {
    const f = tls[k];
    if (!f || (k === 'cert' && pending?.cert === f)) continue;
    const p = accessProblem(f, user, 'r');
    if (p) return fail(`the agent cannot read mqtt.tls.${k}: ${p}`, `chmod 0644 ${f} (and let ${user.name} enter its directory)`, figures);
  }
  if (!tls.key) return pass(`CA${tls.cert ? ' and certificate' : ''} readable by ${user.name}; no client key`, figures);
  let st: Stats;
  try {
    st = statSync(tls.key);
  } catch (err) {
    return fail(`cannot stat mqtt.tls.key ${tls.key} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'check mqtt.tls.key', figures);
  }
  Object.assign(figures, { key: tls.key, key_mode: mode(st), key_owner: owner(st) });
  if (st.mode & 0o007) return fail(`the TLS key ${tls.key} is open to everyone (${mode(st)})`, `chmod 0600 ${tls.key}, and ask for a new certificate if others may have copied it`, figures);
  const p = accessProblem(tls.key, user, 'r');
  if (p) return fail(`the agent cannot read its TLS key: ${p}`, `chown ${user.name} ${tls.key} && chmod 0600 ${tls.key}`, figures);
  if (st.mode & 0o070) return warn(`the TLS key ${tls.key} is readable by its group (${mode(st)})`, `chmod 0600 ${tls.key}`, figures);
  return pass(`key ${mode(st)}, readable by ${user.name}`, figures);
}

export function checkDataDir(config: Config, user: AgentUser): CheckOutcome {
  const dir = config.device.data_dir;
  const figures: Record<string, unknown> = { path: dir, agent_user: user.name };
  let st: Stats;
  try {
    st = statSync(dir);
  } catch {
    return fail(`data dir ${dir} does not exist`, `mkdir -p ${dir} && chown ${user.name}: ${dir} && chmod 0750 ${dir} (or run provision)`, figures);
  }
  if (!st.isDirectory()) return fail(`${dir} is not a directory`, 'set device.data_dir to a directory', figures);
  Object.assign(figures, { mode: mode(st), owner: owner(st) });
  // The agent writes the data dir, the outbox (and its -wal/-shm) and the evidence dir.
  const paths = [dir, ...[config.outbox.path, `${config.outbox.path}-wal`, `${config.outbox.path}-shm`, config.analytics.evidence.dir].filter((p) => existsSync(p))];
  for (const p of paths) {
    const problem = accessProblem(p, user, 'w') ?? (statSync(p).isDirectory() ? accessProblem(p, user, 'x') : null);
    if (problem) return fail(`the agent cannot write: ${problem}`, `chown -R ${user.name}: ${dir}`, figures);
  }
  if (st.mode & 0o002) return warn(`${dir} is world-writable (${mode(st)})`, `chmod 0750 ${dir}`, figures);
  return pass(`${dir} writable by ${user.name} (${mode(st)})`, figures);
}
