// Process helpers for integration tests: spawn children that cannot outlive the test process,
// look processes up by command-line marker in /proc, and poll for conditions.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Single-letter state from /proc/PID/stat (R, S, T stopped, Z zombie, …). */
  state: string;
  argv: string[];
  /** argv joined with spaces. */
  cmdline: string;
}

// ---------------------------------------------------------------------------------------------
// Cleanup at process exit

const exitHooks = new Set<() => void>();
let exitHandlerInstalled = false;

function runExitHooks(): void {
  for (const hook of [...exitHooks]) {
    try {
      hook();
    } catch {
      // best effort: the process is exiting
    }
  }
  exitHooks.clear();
}

// vitest stops its fork workers with SIGTERM, which by default kills Node without an 'exit' event: run the
// hooks, then re-raise the signal so the default action (terminate) still happens — unless someone else
// (e.g. code under test) also listens and therefore owns the signal.
function onTerminatingSignal(signal: NodeJS.Signals): void {
  runExitHooks();
  process.removeListener(signal, onTerminatingSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/**
 * Run `hook` synchronously when this process exits: normal exit, process.exit(), or SIGTERM/SIGINT/SIGHUP
 * (then re-raised). Returns a function that unregisters it. SIGKILL skips the hooks, which is why
 * `spawnGuarded` also sets PR_SET_PDEATHSIG on the child.
 */
export function onProcessExit(hook: () => void): () => void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on('exit', runExitHooks);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, onTerminatingSignal);
  }
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** True when the ChildProcess has exited (or was never started). */
export function hasExited(child: ChildProcess): boolean {
  return child.pid === undefined || child.exitCode !== null || child.signalCode !== null;
}

/**
 * spawn() through `setpriv --pdeathsig KILL`, so the child gets SIGKILL when the thread that spawned it
 * dies (even on SIGKILL of the test worker), and register a SIGKILL for it at process exit.
 * PDEATHSIG survives execve (setpriv execs the command: same pid) but is cleared when the child changes
 * credentials (e.g. mosquitto dropping to user `mosquitto`: hence `user root` in its config).
 */
export function spawnGuarded(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], options);
  const pid = child.pid;
  if (pid !== undefined) {
    const unregister = onProcessExit(() => {
      if (!hasExited(child)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
    child.once('exit', unregister);
  }
  return child;
}

/** Resolve when the child has exited; SIGKILL it if it has not after `timeout_ms`. Resolves immediately if already exited. */
export async function waitForExit(child: ChildProcess, timeout_ms = 5_000): Promise<void> {
  if (hasExited(child)) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }, timeout_ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Send `signal` (default SIGTERM), wait for exit, escalate to SIGKILL after `timeout_ms`. */
export async function terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeout_ms = 5_000): Promise<void> {
  if (hasExited(child)) return;
  const exited = waitForExit(child, timeout_ms);
  child.kill(signal);
  await exited;
}

// ---------------------------------------------------------------------------------------------
// /proc

function readProc(pid: number): ProcInfo | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // stat: "pid (comm) state ppid …"; comm may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const argv = raw.split('\0');
    if (argv.at(-1) === '') argv.pop();
    return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', argv, cmdline: argv.join(' ') };
  } catch {
    return undefined; // exited meanwhile, or not readable
  }
}

/** Every process visible in /proc. Zombies (state Z, exited but not reaped) are left out unless asked for. */
export function listProcesses(opts: { includeZombies?: boolean } = {}): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProc(Number(name));
    if (!info) continue;
    if (!opts.includeZombies && info.state === 'Z') continue;
    out.push(info);
  }
  return out;
}

/** Processes whose command line contains `marker` (a substring) or matches it (a RegExp). The caller itself is excluded. */
export function processesMatching(marker: string | RegExp, opts: { includeZombies?: boolean } = {}): ProcInfo[] {
  const test = typeof marker === 'string' ? (s: string) => s.includes(marker) : (s: string) => marker.test(s);
  return listProcesses(opts).filter((p) => p.pid !== process.pid && test(p.cmdline));
}

/** Direct children of `pid` (default: this process); with `recursive`, all descendants. */
export function listChildren(pid: number = process.pid, opts: { recursive?: boolean; includeZombies?: boolean } = {}): ProcInfo[] {
  const all = listProcesses(opts);
  const result: ProcInfo[] = [];
  let parents = new Set([pid]);
  while (parents.size > 0) {
    const next = new Set<number>();
    for (const p of all) {
      if (parents.has(p.ppid)) {
        result.push(p);
        next.add(p.pid);
      }
    }
    parents = opts.recursive ? next : new Set();
  }
  return result;
}

/** ffmpeg / ffprobe processes (by argv[0] basename), optionally only those whose command line contains `marker`. */
export function ffmpegProcesses(marker?: string | RegExp, opts: { includeZombies?: boolean } = {}): ProcInfo[] {
  return listProcesses(opts).filter((p) => {
    const exe = (p.argv[0] ?? '').split('/').pop() ?? '';
    if (exe !== 'ffmpeg' && exe !== 'ffprobe') return false;
    if (marker === undefined) return true;
    return typeof marker === 'string' ? p.cmdline.includes(marker) : marker.test(p.cmdline);
  });
}

/** True when `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const info = readProc(pid);
  return info !== undefined && info.state !== 'Z';
}

// ---------------------------------------------------------------------------------------------
// Polling

export interface WaitForOptions {
  timeout_ms?: number;
  interval_ms?: number;
  /** Included in the timeout error. */
  message?: string;
}

/**
 * Poll `predicate` until it returns a truthy value (which is returned) or `timeout_ms` passes (throws,
 * including the last error the predicate threw, if any). Defaults: 5 000 ms timeout, 25 ms interval.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<NonNullable<T>> {
  const { timeout_ms = 5_000, interval_ms = 25, message = 'condition' } = opts;
  const deadline = Date.now() + timeout_ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`waitFor(${message}) timed out after ${timeout_ms} ms${detail}`);
    }
    await sleep(interval_ms);
  }
}
