// What the test servers (mosquitto, NATS, PostgreSQL) share: one child process at a time, started with its
// stdout and stderr appended to a log file that survives restarts, and that log for failure messages.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import { hasExited, spawnGuarded } from './processes.js';

export abstract class ServerProcess {
  protected child: ChildProcess | undefined;

  constructor(readonly logFile: string) {}

  get pid(): number | undefined {
    return this.child && !hasExited(this.child) ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && !hasExited(this.child);
  }

  /** The server's log so far (all restarts appended), for failure messages. */
  logText(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Spawns the server (killed with this process) with its output appended to the log; it becomes `child`. */
  protected spawnLogged(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const logFd = fs.openSync(this.logFile, 'a');
    try {
      this.child = spawnGuarded(command, args, { ...options, stdio: ['ignore', logFd, logFd] });
    } finally {
      fs.closeSync(logFd);
    }
    return this.child;
  }
}
