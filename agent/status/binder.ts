// Keeps the status server bound: a failed listen (port taken, address not up yet) is retried with backoff and
// reported in health, never fatal: the page is a convenience, the agent's job goes on without it.
import type { Server } from 'node:http';
import type { HealthReason } from '../../contract/health.js';
import type { Logger } from '../../core/log.js';
import { Backoff, type BackoffOptions } from '../../core/time.js';

/** Where the listening socket stands. */
export interface BindState {
  state: 'binding' | 'listening' | 'retrying' | 'stopped';
  /** The configured `host:port`. */
  address: string;
  /** Failed bind attempts since start(). */
  failures: number;
  /** The last bind error (e.g. EADDRINUSE), while not listening. */
  last_error?: string;
}

export interface BinderOptions {
  host: string;
  port: number;
  log: Logger;
  /** Sets (a reason) or clears (undefined) the health condition of a failed bind. */
  report: (reason: HealthReason | undefined) => void;
  /** Delays between attempts. Default 1 s doubling to 30 s, jittered. */
  backoff?: BackoffOptions;
  /** Added to the "listening" log line. */
  logFields?: Record<string, unknown>;
}

const DEFAULT_BACKOFF: BackoffOptions = { initial_ms: 1000, max_ms: 30_000, jitter: 0.5 };

export class Binder {
  private status: BindState['state'] = 'binding';
  private failures = 0;
  private lastError: string | undefined;
  private attempt: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private backoff: Backoff | undefined;

  constructor(
    private readonly server: Server,
    private readonly opts: BinderOptions,
  ) {}

  /** The first attempt; resolves bound or not (a failure schedules the next attempt). Never rejects. */
  start(): Promise<void> {
    this.stopped = false;
    this.failures = 0;
    this.lastError = undefined;
    this.backoff = new Backoff(this.opts.backoff ?? DEFAULT_BACKOFF);
    this.server.on('error', (err) => {
      if (this.status === 'listening') this.opts.log.error({ err }, 'status server error');
    });
    return this.bind();
  }

  /** No more attempts; waits for one in progress, so the caller's close() releases its port. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.attempt;
    this.status = 'stopped';
    this.opts.report(undefined);
  }

  state(): BindState {
    return {
      state: this.status,
      address: `${this.opts.host}:${this.opts.port}`,
      failures: this.failures,
      ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
    };
  }

  private bind(): Promise<void> {
    const server = this.server;
    this.retryTimer = undefined;
    this.status = 'binding';
    const attempt = new Promise<void>((resolve) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        this.failed(err);
        resolve();
      };
      const onListening = (): void => {
        server.off('error', onError);
        this.listening();
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      try {
        server.listen({ host: this.opts.host, port: this.opts.port, exclusive: true });
      } catch (err) {
        server.off('error', onError);
        onError(err as NodeJS.ErrnoException);
      }
    });
    this.attempt = attempt.finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  private listening(): void {
    this.status = 'listening';
    this.lastError = undefined;
    this.backoff?.reset();
    this.opts.report(undefined);
    const a = this.server.address();
    const port = a && typeof a === 'object' ? a.port : this.opts.port;
    const after = this.failures > 0 ? { failed_attempts: this.failures } : {};
    this.opts.log.info({ bind: this.opts.host, port, ...this.opts.logFields, ...after }, 'status server listening');
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.stopped) return;
    const { host, port } = this.opts;
    this.failures++;
    this.lastError = err.code ?? err.message;
    this.status = 'retrying';
    const delay_ms = this.backoff?.next() ?? 0;
    this.opts.report({
      code: 'status_server_unbound',
      severity: 'warn',
      message: `status page unavailable: cannot listen on ${host}:${port} (${this.lastError}); retrying (${this.failures} failed attempts)`,
    });
    // The first failure is news; the retries after it are not (health carries the count).
    const fields = { bind: host, port, err: this.lastError, attempt: this.failures, retry_in_ms: delay_ms };
    if (this.failures === 1) this.opts.log.warn(fields, 'status server cannot listen; retrying in the background');
    else this.opts.log.debug(fields, 'status server bind retry failed');
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) void this.bind();
    }, delay_ms);
    this.retryTimer.unref();
  }
}
