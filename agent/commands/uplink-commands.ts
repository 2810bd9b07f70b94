// The uplink's own commands: ping, rebirth, resend and set-log-level. Every Uplink registers them, so a box
// (or a test) with only an uplink answers them.
import type { LogLevel } from '../../core/log.js';
import type { AgentCommands } from './registry.js';

/** What these commands need from the uplink (kept narrow: agent/commands never imports agent/uplink). */
export interface UplinkControl {
  uptimeS(): number;
  session(): number;
  /** Last seq assigned by the outbox (0: none yet). */
  lastSeq(): number;
  /** Publishes birth, online and the retained states again; returns how many retained states went out. */
  rebirth(): Promise<number>;
  /** Queues the kept rows from..to for sending again; throws BUSY while a large resend is still queued. */
  resend(from: number, to: number): { queued: number; missing: number };
  /** Applies a log level; returns the previous one. */
  setLogLevel(level: LogLevel): string;
}

export function registerUplinkCommands(commands: AgentCommands, u: UplinkControl): void {
  commands.register('ping', () => ({ uptime_s: u.uptimeS(), session: u.session(), seq: u.lastSeq(), ts: new Date().toISOString() }));
  commands.register('rebirth', async () => {
    const session = u.session();
    return { session, retained: await u.rebirth() };
  });
  commands.register('resend', ({ from, to }) => u.resend(from, to));
  commands.register('set-log-level', ({ level }) => ({ level, previous: u.setLogLevel(level) }));
}
