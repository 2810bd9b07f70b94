// A real mosquitto broker per test (file), on free loopback ports, with optional password, TLS / mutual
// TLS and persistence. Its log (stdout+stderr, log_type all) goes to `<dir>/mosquitto.log`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestCerts } from './certs.js';
import { makeTempDir } from './tmp.js';
import { freePort, waitForPort, waitForPortFree } from './ports.js';
import { hasExited, terminate } from './processes.js';
import { ServerProcess } from './server-process.js';

const execFileP = promisify(execFile);

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  /** Require this username/password (allow_anonymous false). Applies to every listener. */
  password?: { username: string; password: string };
  /** Add a TLS listener on a second port using these certs; requireClientCert turns on require_certificate (mutual TLS). */
  tls?: { certs: TestCerts; requireClientCert?: boolean };
  /** persistence true, database in the broker's temp dir (kept across restart(); saved on SIGTERM, not on kill()). */
  persistence?: boolean;
  /** Extra lines appended to the global section of the config (e.g. 'autosave_interval 1', 'max_inflight_messages 5'). */
  extraConfig?: string[];
  /** Time allowed for the broker to accept connections (default 10 000 ms). */
  startTimeout_ms?: number;
}

export class MosquittoStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = 'MosquittoStartError';
  }
}

export class Mosquitto extends ServerProcess {
  /** Plain MQTT listener port on 127.0.0.1. */
  port: number;
  /** TLS listener port on 127.0.0.1 (only with the `tls` option). */
  tlsPort?: number;
  /** Temp dir holding the config, password file, persistence db and log. */
  readonly dir: string;
  readonly confFile: string;
  /** Wall-clock time of the last successful start (spawn → port accepting), for reporting. */
  startup_ms = 0;

  private constructor(
    private readonly opts: MosquittoOptions,
    dir: string,
    port: number,
    tlsPort: number | undefined,
  ) {
    super(path.join(dir, 'mosquitto.log'));
    this.dir = dir;
    this.port = port;
    this.tlsPort = tlsPort;
    this.confFile = path.join(dir, 'mosquitto.conf');
  }

  /** Start a broker and resolve once every listener accepts TCP connections. */
  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = makeTempDir('mosq');
    if (opts.password) {
      await execFileP('mosquitto_passwd', ['-b', '-c', path.join(dir, 'passwd'), opts.password.username, opts.password.password]);
    }
    // freePort() is racy (another worker may take the port before mosquitto binds it): retry with new ports.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const broker = new Mosquitto(opts, dir, await freePort(), opts.tls ? await freePort() : undefined);
      try {
        await broker.launch();
        return broker;
      } catch (err) {
        lastError = err;
        if (!(err instanceof MosquittoStartError && err.addressInUse)) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** mqtt://127.0.0.1:PORT */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** mqtts://127.0.0.1:TLSPORT (throws when the broker has no TLS listener). */
  get tlsUrl(): string {
    if (this.tlsPort === undefined) throw new Error('Mosquitto: started without the tls option');
    return `mqtts://127.0.0.1:${this.tlsPort}`;
  }

  /** SIGTERM and wait for exit (mosquitto saves its persistence db). Idempotent. */
  async stop(): Promise<void> {
    if (this.child) await terminate(this.child, 'SIGTERM');
  }

  /** SIGKILL and wait for exit: a crash (no persistence save, no clean disconnects). Idempotent. */
  async kill(): Promise<void> {
    if (this.child) await terminate(this.child, 'SIGKILL');
  }

  /** Stop (if running) and start again on the same port(s), same config and persistence dir. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Start again after stop()/kill() on the same port(s). */
  async start(): Promise<void> {
    if (this.running) return;
    const ports = [this.port, ...(this.tlsPort === undefined ? [] : [this.tlsPort])];
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      await Promise.all(ports.map((p) => waitForPortFree(p)));
      try {
        await this.launch();
        return;
      } catch (err) {
        lastError = err;
        if (!(err instanceof MosquittoStartError && err.addressInUse)) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private config(): string {
    const { password, tls, persistence, extraConfig = [] } = this.opts;
    const lines = [
      '# generated by testkit/mosquitto.ts',
      // As root, mosquitto would drop to user `mosquitto` and then fail to read files created by root.
      'user root',
      'per_listener_settings false',
      'log_dest stderr',
      'log_type all',
      'log_timestamp true',
      'log_timestamp_format %H:%M:%S',
      'connection_messages true',
      `allow_anonymous ${password ? 'false' : 'true'}`,
      ...(password ? [`password_file ${path.join(this.dir, 'passwd')}`] : []),
      ...(persistence
        ? ['persistence true', `persistence_location ${this.dir}/`, 'persistence_file mosquitto.db']
        : ['persistence false']),
      ...extraConfig,
      '',
      `listener ${this.port} 127.0.0.1`,
      'set_tcp_nodelay true',
    ];
    if (tls && this.tlsPort !== undefined) {
      lines.push(
        '',
        `listener ${this.tlsPort} 127.0.0.1`,
        'set_tcp_nodelay true',
        `cafile ${tls.certs.caFile}`,
        `certfile ${tls.certs.serverCert}`,
        `keyfile ${tls.certs.serverKey}`,
        `require_certificate ${tls.requireClientCert ? 'true' : 'false'}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }

  private async launch(): Promise<void> {
    fs.writeFileSync(this.confFile, this.config());
    const logOffset = this.logText().length;
    const t0 = performance.now();
    const child = this.spawnLogged(MOSQUITTO_BIN, ['-c', this.confFile]);
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    try {
      const timeout_ms = this.opts.startTimeout_ms ?? 10_000;
      const alive = (): boolean => !hasExited(child);
      const ports = [this.port, ...(this.tlsPort === undefined ? [] : [this.tlsPort])];
      await Promise.race([
        Promise.all(ports.map((port) => waitForPort(port, { timeout_ms, alive, what: 'mosquitto' }))),
        spawnError,
      ]);
    } catch (err) {
      await terminate(child, 'SIGKILL');
      const msg = err instanceof Error ? err.message : String(err);
      const log = this.logText();
      const addressInUse = /Address already in use/i.test(log.slice(logOffset));
      throw new MosquittoStartError(`${msg}\n--- mosquitto log (${this.logFile}) ---\n${log}`, addressInUse);
    }
    this.startup_ms = performance.now() - t0;
  }
}
