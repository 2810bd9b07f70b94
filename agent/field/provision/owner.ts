// Who owns what provision creates: the agent's user (default "roadside" when run as root and it exists).
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { ProvisionInputError } from './inputs.js';

const execFileP = promisify(execFile);

export const DEFAULT_OWNER = 'roadside';

export interface Owner {
  name: string;
  uid: number;
  gid: number;
}

/** `mkdir -p` and the mode on the last directory even if it existed (umask does not apply). */
export function mkdirMode(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
}

/** --owner USER, or the default user when running as root; undefined: leave ownership as it is. */
export async function lookupOwner(name: string | undefined): Promise<Owner | undefined> {
  const explicit = name !== undefined && name !== '';
  if (name === '') return undefined;
  const user = name ?? DEFAULT_OWNER;
  if (!explicit && process.getuid?.() !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([execFileP('id', ['-u', user]), execFileP('id', ['-g', user])]);
    return { name: user, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    if (explicit) throw new ProvisionInputError(`--owner ${user}: no such user`);
    return undefined;
  }
}
