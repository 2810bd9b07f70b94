// Spawning ffmpeg so that it cannot outlive the agent, and stopping it so that it is always reaped.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setPriority } from 'node:os';

/**
 * How the child is tied to our life:
 * - `setpriv`: run through util-linux `setpriv --pdeathsig KILL -- ffmpeg …`. setpriv sets PR_SET_PDEATHSIG
 *   and execs ffmpeg (same pid), so the kernel SIGKILLs ffmpeg when the thread that spawned it dies, also on
 *   SIGKILL of the agent. util-linux is Essential in Debian (bookworm-slim included, every architecture).
 * - `none`: plain spawn. ffmpeg still dies of SIGPIPE at its next write to the closed stdout pipe, and its
 *   socket timeout ends a stalled read; but a child that is not writing can linger until then.
 */
export type ParentDeathMode = 'setpriv' | 'none';

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv'];
let setprivPath: string | null | undefined;

/** Path of an executable setpriv, or null. Looked up once. */
export function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  for (const p of SETPRIV_CANDIDATES) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      setprivPath = p;
      break;
    } catch {
      // try the next one
    }
  }
  return setprivPath;
}

export interface SpawnedChild {
  child: ChildProcess;
  mode: ParentDeathMode;
}

/**
 * Spawns `command args` with stdin /dev/null, stdout and stderr piped, and fd 3 piped when `fd3` is true.
 * `prefer` 'setpriv' falls back to 'none' when setpriv is missing.
 */
export function spawnTied(command: string, args: readonly string[], opts: { fd3?: boolean; prefer?: ParentDeathMode } = {}): SpawnedChild {
  const stdio: Array<'ignore' | 'pipe'> = ['ignore', 'pipe', 'pipe'];
  if (opts.fd3) stdio.push('pipe');
  const setpriv = (opts.prefer ?? 'setpriv') === 'setpriv' ? findSetpriv() : null;
  if (setpriv) {
    return { child: spawn(setpriv, ['--pdeathsig', 'KILL', '--', command, ...args], { stdio }), mode: 'setpriv' };
  }
  return { child: spawn(command, args, { stdio }), mode: 'none' };
}

/** Niceness of the short-lived evidence ffmpeg runs (cutting, decoding, JPEGs): the live cameras and the detector come first. */
export const EVIDENCE_NICE = 10;

/** Lowers the child's priority to `nice`; where that is not permitted it runs at normal priority. */
export function renice(child: ChildProcess, nice: number): void {
  if (child.pid === undefined) return;
  try {
    setPriority(child.pid, nice);
  } catch {
    // not permitted here
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child) || child.pid === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited (Node reaps it: no zombie).
 * Returns false only if it still had not exited 5 s after SIGKILL (a process stuck in the kernel).
 */
export async function terminate(child: ChildProcess, graceMs: number): Promise<boolean> {
  if (hasExited(child) || child.pid === undefined) return true;
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return true;
  child.kill('SIGKILL');
  return waitExit(child, 5_000);
}
