import { AgentError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';

export interface StopReport {
  /** Modules whose stop threw. */
  failed: string[];
  /** True when the deadline passed before every module had stopped. */
  timed_out: boolean;
  /** Modules still stopping at the deadline. */
  pending: string[];
}

/**
 * Starts modules in order, stops them in reverse, each stop isolated, the whole stop under a deadline.
 * A stop during the start aborts the start's signal. The module being started then settles its start
 * (rejecting when it gave up) only once it has left nothing running: its stop() is not called, and the
 * stop waits for that start to settle before stopping the others (the detector lets its worker leave
 * ONNX Runtime first: terminating it there aborts the process).
 */
export class Controller {
  private readonly started: Module[] = [];
  private readonly abort = new AbortController();
  private stopping: Promise<StopReport> | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly modules: Module[],
    private readonly log: Logger,
    private readonly stopDeadlineMs = 10_000,
  ) {}

  start(): Promise<void> {
    this.starting = this.startAll();
    return this.starting;
  }

  private async startAll(): Promise<void> {
    for (const m of this.modules) {
      if (this.abort.signal.aborted) throw new AgentError('START_ABORTED', `start aborted before "${m.name}"`);
      const t0 = performance.now();
      try {
        await m.start(this.abort.signal);
      } catch (err) {
        throw new AgentError('START_FAILED', `module "${m.name}" failed to start: ${errorMessage(err)}`, { cause: err });
      }
      this.started.push(m);
      this.log.info({ component: m.name, start_ms: Math.round(performance.now() - t0) }, 'module started');
    }
  }

  /** Idempotent: concurrent callers share one stop. */
  stop(reason: string): Promise<StopReport> {
    this.abort.abort();
    this.stopping ??= this.stopAll(reason);
    return this.stopping;
  }

  private async stopAll(reason: string): Promise<StopReport> {
    this.log.info({ reason }, 'stopping');
    const failed: string[] = [];
    const pending = new Set<string>();
    const sequence = (async () => {
      // A module still starting when the stop came is stopped too, once its start has settled.
      await this.starting?.catch(() => undefined);
      for (const m of [...this.started].reverse()) {
        pending.add(m.name);
        try {
          await m.stop();
          this.log.info({ component: m.name }, 'module stopped');
        } catch (err) {
          failed.push(m.name);
          this.log.error({ component: m.name, err }, 'module failed to stop');
        } finally {
          pending.delete(m.name);
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), this.stopDeadlineMs);
    });
    const outcome = await Promise.race([sequence.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    const report: StopReport = { failed, timed_out: outcome === 'timeout', pending: [...pending] };
    if (report.timed_out) this.log.error({ pending: report.pending, deadline_ms: this.stopDeadlineMs }, 'shutdown deadline passed');
    return report;
  }
}
