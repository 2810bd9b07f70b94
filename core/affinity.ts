// CPU affinity of the calling thread. Node has no sched_setaffinity, so util-linux's taskset (Essential in Debian,
// present in the image) sets it on this thread's id, read from /proc/thread-self. Threads created afterwards by
// this one (ONNX Runtime's intra-op pool, made when the session loads) inherit the mask.
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { AgentError, errorMessage } from './errors.js';

/** The calling thread's kernel id (its /proc/PID/task entry). */
export function threadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

/** The CPUs a thread may run on, as the kernel lists them ("0-1,3"); the calling thread by default. */
export function threadCpus(tid: number | 'self' = 'self'): string {
  const status = readFileSync(tid === 'self' ? '/proc/thread-self/status' : `/proc/self/task/${tid}/status`, 'utf8');
  return /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '';
}

/** Restricts the calling thread to `cpus`; returns the list the kernel now reports. Throws AFFINITY_FAILED. */
export function pinThisThread(cpus: readonly number[]): string {
  const tid = threadId();
  try {
    execFileSync('taskset', ['--pid', '--cpu-list', cpus.join(','), String(tid)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const why = e.code === 'ENOENT' ? 'taskset (util-linux) is not installed' : (e.stderr?.toString().trim() || e.message);
    throw new AgentError('AFFINITY_FAILED', `cannot pin thread ${tid} to CPUs ${cpus.join(',')}: ${why}`, { cause: err });
  }
  return threadCpus();
}

/** pinThisThread for a thread that goes on either way: where it runs now, and why it could not be pinned. */
export function tryPinThisThread(cpus: readonly number[]): { cpus: string; error?: string } {
  try {
    return { cpus: pinThisThread(cpus) };
  } catch (err) {
    return { cpus: threadCpus(), error: errorMessage(err) };
  }
}
