// Where health reports go. Normally into the outbox (priority health: sent last, evicted first). While the disk is
// full the outbox cannot write and gives health up first, which would leave the center with nothing: each report
// is then also published directly (QoS 1, when connected), the report carries a disk_low reason, and the retained
// status carries the disk_full condition until space returns.
import type { OutboxMessage, OutboxStats } from '../../buffer/outbox.js';
import { uuidv7 } from '../../contract/event.js';
import type { HealthPayload, HealthReason } from '../../contract/health.js';
import type { StatusCondition } from '../../contract/status.js';
import { relativeTopic } from '../../contract/topics.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';

export interface HealthPublisherDeps {
  health: {
    onSample(cb: (p: HealthPayload) => void): () => void;
    setCondition(key: string, reason: HealthReason | undefined): void;
    refresh(): Promise<HealthPayload>;
  };
  outbox: { readonly isOpen: boolean; append(msg: OutboxMessage): number; stats(): Pick<OutboxStats, 'disk_full' | 'disk_full_since'> };
  uplink: { publishNow(topic: string, payload: object): boolean; setStatusConditions(conditions: readonly StatusCondition[]): void };
  log: Logger;
  /** How often the outbox's disk-full state is checked, ms. Default 1000. */
  checkMs?: number;
}

export interface HealthPublisherStats {
  disk_full: boolean;
  /** Reports published directly (outside the outbox) because the disk was full. */
  published_direct: number;
  /** Reports that could not go out directly because the uplink was offline (still in the outbox's memory). */
  direct_dropped_offline: number;
}

const CONDITION_KEY = 'outbox_disk_full';

export class HealthPublisher implements Module {
  readonly name = 'health-publisher';
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private diskFull = false;
  private readonly counters = { published_direct: 0, direct_dropped_offline: 0 };

  constructor(private readonly d: HealthPublisherDeps) {}

  /** Before the health sampler starts, so its first report is published too. */
  start(_signal?: AbortSignal): Promise<void> {
    this.unsubscribe ??= this.d.health.onSample((p) => this.publish(p));
    this.check();
    this.timer ??= setInterval(() => this.check(), this.d.checkMs ?? 1000);
    this.timer.unref();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    return Promise.resolve();
  }

  stats(): HealthPublisherStats {
    return { disk_full: this.diskFull, ...this.counters };
  }

  /** Follows the outbox's disk-full state; on a change, updates the status and health conditions and reports at once. */
  check(): void {
    let since: string | null = null;
    let full = false;
    try {
      if (this.d.outbox.isOpen) {
        const s = this.d.outbox.stats();
        full = s.disk_full;
        since = s.disk_full_since;
      }
    } catch (err) {
      this.d.log.warn({ err }, 'outbox figures unavailable for the disk-full check');
      return;
    }
    if (full === this.diskFull) return;
    this.diskFull = full;
    this.d.uplink.setStatusConditions(full ? ['disk_full'] : []);
    this.d.health.setCondition(
      CONDITION_KEY,
      full ? { code: 'disk_low', severity: 'error', message: `disk full since ${since ?? 'now'}: the outbox cannot write; events wait in memory, health is sent directly` } : undefined,
    );
    if (full) this.d.log.error({ disk_full_since: since }, 'disk full: health reports bypass the outbox; status carries disk_full');
    else this.d.log.info('disk space is back: health goes through the outbox again; disk_full cleared');
    this.d.health.refresh().catch((err: unknown) => this.d.log.warn({ err }, 'health report after a disk-full change failed'));
  }

  private publish(p: HealthPayload): void {
    if (!this.d.outbox.isOpen) return;
    this.check(); // the disk may have filled since the last check (a refresh from here joins this very sample)
    const id = uuidv7();
    let seq: number;
    try {
      seq = this.d.outbox.append({ id, topic: relativeTopic.health, priority: 'health', payload: p });
    } catch (err) {
      this.d.log.error({ err }, 'health report not queued');
      return;
    }
    if (!this.diskFull) return;
    // The outbox keeps the row in memory and may send it later: same id and seq, so the center sees a duplicate.
    const sent = this.d.uplink.publishNow(relativeTopic.health, { ...p, id, seq, sent_at: new Date().toISOString(), replayed: false });
    if (sent) this.counters.published_direct++;
    else this.counters.direct_dropped_offline++;
  }
}
