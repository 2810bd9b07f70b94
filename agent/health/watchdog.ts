// systemd notification and watchdog keep-alives: the second rung of the recovery ladder.
//
// The ladder, from cheapest to harshest:
//   1. modules heal themselves (the camera source reconnects, the detector restarts its worker);
//   2. this watchdog: keep-alives stop while the main loop is unhealthy (detector stuck, event loop lagging),
//      so systemd kills and restarts the agent after WatchdogSec (unit: Type=notify, WatchdogSec=30s,
//      Restart=always, NotifyAccess=all — see SdNotifier for why "all");
//   3. repeated restarts hit StartLimitBurst / StartLimitIntervalSec with StartLimitAction=reboot;
//   4. the hardware watchdog (RuntimeWatchdogSec= in system.conf) reboots a box whose kernel or systemd hangs.
// The reason of every restart is kept by RestartLog (restarts.ts) for the birth message.
import { spawn } from 'node:child_process';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import type { LoopVerdict } from './sampler.js';

export interface SdNotifierOptions {
  /** Environment holding NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Default "systemd-notify" (Debian: package systemd, /usr/bin/systemd-notify). */
  command?: string;
  /** Kill a notification that has not completed after this long, ms. Default 5000. */
  timeoutMs?: number;
}

/**
 * sd_notify(3) for Node, which cannot send to a unix datagram socket (dgram supports udp4/udp6 only).
 * It spawns `systemd-notify --pid=<agent pid> VAR=VALUE…`, which:
 * - handles every NOTIFY_SOCKET form (path, abstract "@name", vsock);
 * - with `--pid`, attaches the agent's pid as the sender credentials when it may (root), so the default
 *   NotifyAccess=main works; unprivileged, it falls back to its own pid, which systemd accepts only with
 *   NotifyAccess=all — hence NotifyAccess=all in the unit. `--pid` also adds MAINPID=<agent pid>, the
 *   right value (never pass it from a wrapper script, it would name the wrapper);
 * - waits (BARRIER=1, systemd >= 246) until the manager has processed the message, so systemd can still
 *   resolve the short-lived sender to the service's cgroup.
 * A spawn per keep-alive (every WatchdogSec/2) costs a few ms; no native addon, no extra package.
 */
export class SdNotifier {
  private readonly env: NodeJS.ProcessEnv;
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(opts: SdNotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.command = opts.command ?? 'systemd-notify';
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /** True when started by systemd with a notification socket (Type=notify). */
  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /**
   * Keep-alive period (WATCHDOG_USEC / 2, ms) when systemd expects keep-alives from this process, else null
   * (sd_watchdog_enabled semantics: WATCHDOG_PID, when set, must be our pid).
   */
  watchdogIntervalMs(): number | null {
    if (!this.enabled) return null;
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return null;
    const pid = this.env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return null;
    return Math.max(1, Math.floor(usec / 2000));
  }

  /** Sends `VAR=VALUE` assignments in one datagram. Resolves false (never rejects) on any failure. */
  notify(assignments: readonly string[]): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    const clean = assignments.map((a) => a.replace(/[\r\n]+/g, ' '));
    return new Promise((resolve) => {
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const child = spawn(this.command, [`--pid=${process.pid}`, ...clean], { env: this.env, stdio: 'ignore' });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(false);
      }, this.timeoutMs);
      timer.unref();
      child.once('error', () => finish(false));
      child.once('exit', (code) => finish(code === 0));
    });
  }
}

export interface WatchdogOptions {
  /** The main loop's health: a boolean, or a verdict with reasons (HealthSampler.mainLoopHealthy). */
  isHealthy: () => boolean | LoopVerdict;
  log: Logger;
  /** Told why keep-alives are withheld, so the next start can report "watchdog" (RestartLog). */
  restarts?: { notePending(reason: string | undefined, detail?: string): void };
  notifier?: SdNotifier;
}

export interface WatchdogState {
  /** Running under systemd with NOTIFY_SOCKET. */
  enabled: boolean;
  /** Keep-alive period, ms; null when systemd expects none. */
  interval_ms: number | null;
  keepalives_sent: number;
  last_keepalive_at: string | null;
  /** When keep-alives began to be withheld; null while healthy. */
  withheld_since: string | null;
  reasons: string[];
}

/**
 * systemd notifications (a module: place it LAST in the start order, so READY=1 means every module started,
 * and it is stopped first, so STOPPING=1 goes out as soon as shutdown begins). Outside systemd (no
 * NOTIFY_SOCKET) it does nothing.
 */
export class Watchdog implements Module {
  readonly name = 'watchdog';
  private readonly notifier: SdNotifier;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private st: WatchdogState;

  constructor(private readonly opts: WatchdogOptions) {
    this.notifier = opts.notifier ?? new SdNotifier();
    this.log = opts.log.child({ mod: 'watchdog' });
    this.st = { enabled: false, interval_ms: null, keepalives_sent: 0, last_keepalive_at: null, withheld_since: null, reasons: [] };
  }

  async start(_signal: AbortSignal): Promise<void> {
    const interval = this.notifier.watchdogIntervalMs();
    this.st = { ...this.st, enabled: this.notifier.enabled, interval_ms: interval };
    if (!this.notifier.enabled) {
      this.log.debug('not started by systemd (no NOTIFY_SOCKET): no notifications');
      return;
    }
    const ok = await this.notifier.notify(['READY=1', 'STATUS=running']);
    if (!ok) this.log.warn('systemd-notify READY=1 failed');
    if (interval !== null) {
      this.tick();
      this.timer = setInterval(() => this.tick(), interval);
      this.log.info({ interval_ms: interval }, 'watchdog keep-alives on');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.notifier.enabled) await this.notifier.notify(['STOPPING=1', 'STATUS=stopping']);
  }

  state(): WatchdogState {
    return { ...this.st, reasons: [...this.st.reasons] };
  }

  private verdict(): LoopVerdict {
    try {
      const v = this.opts.isHealthy();
      return typeof v === 'boolean' ? { healthy: v, reasons: v ? [] : ['unhealthy'] } : v;
    } catch (err) {
      return { healthy: false, reasons: [`health check failed: ${errorMessage(err)}`] };
    }
  }

  private tick(): void {
    const v = this.verdict();
    if (!v.healthy) {
      if (this.st.withheld_since === null) {
        this.st.withheld_since = new Date().toISOString();
        this.log.error({ reasons: v.reasons }, 'main loop unhealthy: withholding watchdog keep-alives (systemd restarts the agent unless it recovers)');
        this.opts.restarts?.notePending('watchdog', v.reasons.join('; '));
        void this.notifier.notify([`STATUS=unhealthy: ${v.reasons.join('; ')}`]);
      }
      this.st.reasons = v.reasons;
      return;
    }
    if (this.st.withheld_since !== null) {
      this.log.warn({ since: this.st.withheld_since }, 'main loop healthy again: keep-alives resumed');
      this.st.withheld_since = null;
      this.st.reasons = [];
      this.opts.restarts?.notePending(undefined);
      void this.notifier.notify(['STATUS=running']);
    }
    // A keep-alive still in flight (systemd slow to answer the barrier): skip this one rather than pile up.
    if (this.inFlight) return;
    this.inFlight = true;
    void this.notifier.notify(['WATCHDOG=1']).then((ok) => {
      this.inFlight = false;
      if (ok) {
        this.st.keepalives_sent += 1;
        this.st.last_keepalive_at = new Date().toISOString();
      } else {
        this.log.warn('systemd-notify WATCHDOG=1 failed');
      }
    });
  }
}
