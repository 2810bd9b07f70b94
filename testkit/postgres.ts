// A real PostgreSQL server per test file (Debian's postgresql 15): initdb in a temp dir, postgres on a free
// loopback port, trust authentication for user "postgres", cleaned up at exit like testkit/mosquitto.ts.
// PostgreSQL refuses to run as root: as root the server runs as the system user "postgres" (from the Debian
// package), through setpriv, which also keeps the parent-death signal (spawnGuarded) across the user change.
// Its log goes to `<dir>/postgres.log`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, waitForPortFree } from './ports.js';
import { hasExited, terminate } from './processes.js';
import { makeTempDir } from './tmp.js';
import { ServerProcess } from './server-process.js';

const execFileP = promisify(execFile);

export const PG_BIN_DIR = process.env.ROADSIDE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const SERVER_USER = 'postgres';

export interface PostgresOptions {
  /**
   * Keep PostgreSQL's durability settings (fsync, synchronous_commit, full_page_writes on), for measurements.
   * Default false: tests run with them off, which is faster and loses nothing unless the machine crashes.
   */
  durable?: boolean;
  /** Time allowed for the server to accept queries. Default 20 000 ms. */
  startTimeout_ms?: number;
}

/** Command and arguments that run a server binary as the server user (directly when not root). */
function asServerUser(bin: string, args: string[]): { command: string; args: string[] } {
  const exe = path.join(PG_BIN_DIR, bin);
  if (process.getuid?.() !== 0) return { command: exe, args };
  return { command: '/usr/bin/setpriv', args: [`--reuid=${SERVER_USER}`, `--regid=${SERVER_USER}`, '--init-groups', '--pdeathsig', 'KILL', '--', exe, ...args] };
}

export class Postgres extends ServerProcess {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  private databases = 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly opts: PostgresOptions,
  ) {
    super(path.join(dir, 'postgres.log'));
    this.url = `postgres://${SERVER_USER}@127.0.0.1:${port}/postgres`;
  }

  /** initdb, start, and resolve once the server answers queries. */
  static async start(opts: PostgresOptions = {}): Promise<Postgres> {
    if (!fs.existsSync(path.join(PG_BIN_DIR, 'initdb'))) {
      throw new Error(`PostgreSQL binaries not found in ${PG_BIN_DIR}: apt-get install postgresql (or set ROADSIDE_PG_BIN)`);
    }
    const dir = makeTempDir('pg');
    if (process.getuid?.() === 0) {
      const { stdout } = await execFileP('id', ['-u', SERVER_USER]).catch(() => ({ stdout: '' }));
      if (!stdout.trim()) throw new Error(`running as root, PostgreSQL needs the system user "${SERVER_USER}" (created by the postgresql package)`);
      await execFileP('chown', [`${SERVER_USER}:${SERVER_USER}`, dir]);
    }
    const init = asServerUser('initdb', ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', SERVER_USER, '-E', 'UTF8', '--locale=C', '--no-sync']);
    await execFileP(init.command, init.args, { cwd: os.tmpdir() }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`initdb failed: ${err.stderr ?? err.message}`);
    });
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new Postgres(dir, await freePort(), opts);
      try {
        await server.launch();
        return server;
      } catch (err) {
        lastError = err;
        if (!/could not bind|Address already in use/i.test(server.logText())) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** A new empty database on this server; resolves to its URL. */
  async createDatabase(prefix = 'test'): Promise<string> {
    const name = `${prefix}_${process.pid}_${++this.databases}`;
    await this.query(`CREATE DATABASE ${name}`);
    return this.url.replace(/\/postgres$/, `/${name}`);
  }

  /** One statement on the `postgres` database (or `url`) through a short-lived connection. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = [], url = this.url): Promise<R[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** Fast shutdown (SIGINT) and wait for exit. Idempotent. */
  async stop(): Promise<void> {
    if (this.child) await terminate(this.child, 'SIGINT', 10_000);
  }

  /** Start again after stop(), same port and data. */
  async start(): Promise<void> {
    if (this.running) return;
    await waitForPortFree(this.port);
    await this.launch();
  }

  private async launch(): Promise<void> {
    const settings = ['listen_addresses=127.0.0.1', `port=${this.port}`, `unix_socket_directories=${this.dir}`, 'max_connections=50', 'shared_buffers=64MB'];
    if (!this.opts.durable) settings.push('fsync=off', 'synchronous_commit=off', 'full_page_writes=off');
    const cmd = asServerUser('postgres', ['-D', path.join(this.dir, 'data'), ...settings.flatMap((s) => ['-c', s])]);
    const child = this.spawnLogged(cmd.command, cmd.args, { cwd: os.tmpdir() });
    const deadline = Date.now() + (this.opts.startTimeout_ms ?? 20_000);
    for (;;) {
      if (hasExited(child)) throw new Error(`postgres exited at start\n--- ${this.logFile} ---\n${this.logText()}`);
      try {
        await this.query('SELECT 1');
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          await terminate(child, 'SIGKILL');
          throw new Error(`postgres not answering on 127.0.0.1:${this.port}: ${(err as Error).message}\n--- ${this.logFile} ---\n${this.logText()}`, { cause: err });
        }
      }
      await sleep(50);
    }
  }
}
