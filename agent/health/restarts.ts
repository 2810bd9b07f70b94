// Restart bookkeeping that survives restarts: why the previous run ended, and how often the agent restarted.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';

/**
 * Why the previous run ended:
 * - `first_start`: no state file (fresh install or data dir wiped);
 * - a reason recorded by `recordExit()` (fatal reasons, signals such as `SIGTERM`) or `stopped` for a clean
 *   stop without one; `reboot` when the run stopped cleanly and the box booted since;
 * - `watchdog`: the run did not stop cleanly while it was withholding systemd watchdog keep-alives;
 * - `crash`: no clean stop, same boot (killed, out of memory, native crash);
 * - `power_loss`: no clean stop and the box booted since (power cut, hard reset, kernel panic);
 * - `crash_or_power_loss`: no clean stop, boot id unknown;
 * - `unknown`: the state file was unreadable.
 */
export type RestartReason = 'first_start' | 'stopped' | 'reboot' | 'watchdog' | 'crash' | 'power_loss' | 'crash_or_power_loss' | 'unknown' | (string & {});

export interface RestartInfo {
  reason: RestartReason;
  /** ISO time of this start (when the restart happened). */
  at: string;
  /** Restarts since the state file was created (starts minus one). */
  count: number;
  /** Runs that ended without a clean stop (crash, power loss, watchdog), all time. */
  unclean: number;
  /** More about the reason (the watchdog's complaint, the signal that stopped a rebooting box). */
  detail?: string;
  /** When the previous run recorded its exit, if it did. */
  previous_exit_at?: string;
}

interface RunRecord {
  pid: number;
  started_at: string;
  boot_id: string | null;
  exit?: { reason: string; at: string; clean: boolean };
  pending?: { reason: string; detail?: string; at: string };
}

interface StateFile {
  version: 1;
  starts: number;
  unclean: number;
  last_restart: RestartInfo;
  run: RunRecord;
}

export interface RestartLogOptions {
  /** device.data_dir; the state goes to `<dataDir>/restart-state.json`. */
  dataDir: string;
  log: Logger;
  /** Default: /proc/sys/kernel/random/boot_id. */
  bootId?: () => string | null;
  now?: () => Date;
}

const PLAIN_STOPS = new Set(['stopped', 'SIGTERM', 'SIGINT']);

function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}


/**
 * Restart bookkeeping (a module: place it FIRST in the start order, so it is stopped last and a clean stop
 * is only recorded once every other module has stopped).
 *
 * start() reads the previous run's record, infers why it ended, counts, and marks this run as running.
 * `recordExit(reason)` (the controller's fatal and signal paths) persists the reason at once; stop() marks
 * the run clean. A run that never reached either ended in a crash, a power loss or a watchdog kill.
 */
export class RestartLog implements Module {
  readonly name = 'restarts';
  readonly file: string;
  private readonly log: Logger;
  private state: StateFile | undefined;
  private started = false;

  constructor(private readonly opts: RestartLogOptions) {
    this.file = join(opts.dataDir, 'restart-state.json');
    this.log = opts.log.child({ mod: 'restarts' });
  }

  start(_signal: AbortSignal): Promise<void> {
    mkdirSync(this.opts.dataDir, { recursive: true });
    const state = this.load();
    this.started = true;
    this.write(state);
    const r = state.last_restart;
    this.log.info({ reason: r.reason, detail: r.detail, count: r.count, unclean: r.unclean }, 'agent (re)started');
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (!this.started || !this.state) return Promise.resolve();
    const run = this.state.run;
    run.exit = { reason: run.exit?.reason ?? 'stopped', at: this.now().toISOString(), clean: true };
    delete run.pending;
    this.write(this.state);
    this.started = false;
    return Promise.resolve();
  }

  /** Why and when the agent last (re)started, and how often; for the birth message. */
  lastRestart(): RestartInfo {
    return { ...this.load().last_restart };
  }

  /**
   * Records why this run is ending (fatal reason, signal name), synchronously and at once, so it survives
   * even if the stop never completes. The first reason recorded wins (it is the cause; later ones follow).
   */
  recordExit(reason: string): void {
    const state = this.load();
    if (state.run.exit) return;
    state.run.exit = { reason, at: this.now().toISOString(), clean: false };
    this.write(state);
  }

  /**
   * The watchdog notes why it withholds keep-alives (a kill by systemd follows unless health recovers), or
   * clears the note with `undefined`. Written only on change.
   */
  notePending(reason: string | undefined, detail?: string): void {
    const state = this.load();
    const cur = state.run.pending;
    if (reason === undefined) {
      if (!cur) return;
      delete state.run.pending;
    } else {
      if (cur?.reason === reason && cur.detail === detail) return;
      state.run.pending = { reason, at: this.now().toISOString(), ...(detail === undefined ? {} : { detail }) };
    }
    this.write(state);
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /** Reads the previous record and derives this run's state (once; idempotent). */
  private load(): StateFile {
    if (this.state) return this.state;
    const at = this.now().toISOString();
    const bootId = (this.opts.bootId ?? readBootId)();
    const run: RunRecord = { pid: process.pid, started_at: at, boot_id: bootId };
    let prev: Partial<StateFile> | undefined;
    let unreadable = false;
    try {
      prev = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<StateFile>;
      if (typeof prev !== 'object' || prev === null || prev.version !== 1) throw new Error('not a version 1 restart state');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        unreadable = true;
        this.log.warn({ file: this.file, err: errorMessage(err) }, 'restart state unreadable; starting the count again');
      }
      prev = undefined;
    }
    const starts = (typeof prev?.starts === 'number' ? prev.starts : 0) + 1;
    let unclean = typeof prev?.unclean === 'number' ? prev.unclean : 0;
    let info: RestartInfo;
    if (!prev?.run) {
      info = { reason: unreadable ? 'unknown' : 'first_start', at, count: starts - 1, unclean };
    } else {
      const p = prev.run;
      const rebooted = bootId !== null && p.boot_id !== null && p.boot_id !== undefined ? bootId !== p.boot_id : null;
      if (p.exit) {
        const reason = p.exit.clean && rebooted === true && PLAIN_STOPS.has(p.exit.reason) ? 'reboot' : p.exit.reason;
        info = { reason, at, count: starts - 1, unclean, previous_exit_at: p.exit.at };
        if (reason === 'reboot') info.detail = p.exit.reason;
      } else {
        unclean += 1;
        const reason = p.pending ? 'watchdog' : rebooted === null ? 'crash_or_power_loss' : rebooted ? 'power_loss' : 'crash';
        info = { reason, at, count: starts - 1, unclean };
        if (p.pending) info.detail = p.pending.detail ?? p.pending.reason;
      }
    }
    this.state = { version: 1, starts, unclean, last_restart: info, run };
    return this.state;
  }

  private write(state: StateFile): void {
    if (!this.started) return;
    try {
      writeFileAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`);
    } catch (err) {
      this.log.error({ file: this.file, err: errorMessage(err) }, 'cannot write the restart state');
    }
  }
}
