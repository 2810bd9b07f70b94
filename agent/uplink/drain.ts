// The drain of the outbox: at most `window` unacknowledged messages on the wire (the configured window capped
// by the broker's Receive Maximum), live rows first, then resend requests and the backlog under the
// drain_rate_per_s token bucket. A row is acknowledged in the outbox only after its PUBACK.
import type { MqttClient } from 'mqtt';
import type { Outbox, OutboxRow } from '../../buffer/outbox.js';
import type { MqttConfig } from '../../config/schema/index.js';
import { RESEND_MAX_ROWS } from '../../contract/commands.js';
import type { Topics } from '../../contract/topics.js';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { UplinkError } from './errors.js';

export interface DrainStats {
  /** Unacknowledged outbox messages on the wire / the window allowed (config, capped by the broker's Receive Maximum). */
  inflight: number;
  window: number;
  /** Outbox messages acknowledged by the broker: all, live, replayed (backlog and resend). */
  published: number;
  published_live: number;
  published_replayed: number;
  /** Outbox messages acknowledged per second, averaged since the previous stats() call (at least 1 s). */
  publish_rate_per_s: number;
  /** Negative PUBACKs (MQTT 5) and messages dropped because the broker refuses them for good. */
  publish_refused: number;
  publish_dropped: number;
  resend_queue: number;
}

export interface DrainDeps {
  config: Pick<MqttConfig, 'inflight_window' | 'drain_rate_per_s'>;
  outbox: Outbox;
  topics: Topics;
  log: Logger;
  /** A publish refused by the broker (the uplink's last_error). */
  onError: (e: UplinkError) => void;
}

interface Sending {
  row: OutboxRow;
  replayed: boolean;
  resend: boolean;
}

/** One connection as the drain sees it; callbacks of an older connection are recognised by identity. */
interface Conn {
  client: MqttClient;
}

interface Cork {
  stream: MqttClient['stream'];
  held: number;
}

const REFUSED_PAUSE_MS = 5_000;
const FINISH_POLL_MS = 10;
/** MQTT 5 reason codes that will never succeed on retry: the message is dropped (logged and counted). */
const PERMANENT_REFUSALS = new Set([0x90, 0x95, 0x99]);

export class Drain {
  private conn: Conn | undefined;
  /** Sending allowed (connected, birth published, not stopping). */
  private flowing = false;
  private liveFrom = 0;
  private window: number;
  private readonly readQueue: Sending[] = [];
  private readonly inflight = new Map<number, Sending>();
  private inflightKey = 0;
  private resendQueue: OutboxRow[] = [];
  private tokens = 0;
  private tokensAt = 0;
  private pausedUntil = 0;
  private pumpTimer: NodeJS.Timeout | undefined;
  /** Publishes held in the socket buffer (see send()). */
  private cork: Cork | undefined;
  private sentAtMs = 0;
  private sentAtIso = '';
  private rate = { at: 0, published: 0, value: 0 };
  private readonly counters = { published: 0, published_live: 0, published_replayed: 0, publish_refused: 0, publish_dropped: 0 };

  constructor(private readonly d: DrainDeps) {
    this.window = d.config.inflight_window;
  }

  /** A new connection (CONNACK): rows appended from now on are live; the window is capped by the broker's Receive Maximum. */
  connected(client: MqttClient, receiveMaximum: number | undefined): void {
    this.conn = { client };
    this.liveFrom = this.d.outbox.nextSeq;
    this.window = Math.max(1, Math.min(this.d.config.inflight_window, receiveMaximum ?? Infinity));
  }

  /** Birth and online are out: start sending. */
  start(): void {
    if (!this.conn) return;
    this.flowing = true;
    this.tokens = this.bucketSize();
    this.tokensAt = Date.now();
    this.pump();
  }

  /**
   * Clean shutdown: keeps sending until every committed row is acknowledged, at most `ms`, then stops sending
   * and lets what is still in flight be acknowledged within the same bound. Rows left over (time up, broker
   * refusing, rows the disk could not take) stay in the outbox for the next start. Returns the unsent rows
   * the outbox still holds (committed or not).
   */
  async finish(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.flowing && Date.now() < deadline && !this.delivered()) {
      this.pump();
      await new Promise((r) => setTimeout(r, FINISH_POLL_MS));
    }
    this.flowing = false;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, FINISH_POLL_MS));
    return this.d.outbox.isOpen ? this.d.outbox.stats().depth_total : 0;
  }

  /** Nothing in flight or read ahead, and no committed row unacknowledged. */
  private delivered(): boolean {
    if (this.inflight.size > 0 || this.readQueue.length > 0) return false;
    if (!this.d.outbox.isOpen) return true;
    const s = this.d.outbox.stats();
    return s.depth_total - s.pending_rows <= 0;
  }

  /** The connection is gone: forgets the in-flight state and returns every leased row to the outbox. */
  disconnected(): void {
    this.conn = undefined;
    this.flowing = false;
    this.cork = undefined;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    const resends: OutboxRow[] = [];
    const seqs: number[] = [];
    for (const s of [...this.inflight.values(), ...this.readQueue]) {
      if (s.resend) resends.push(s.row);
      else seqs.push(s.row.seq);
    }
    this.inflight.clear();
    this.readQueue.length = 0;
    this.resendQueue = [...resends, ...this.resendQueue];
    if (this.d.outbox.isOpen) this.d.outbox.release(seqs);
  }

  /** Queues the kept rows from..to for sending again (the `resend` command). */
  resend(from: number, to: number): { queued: number; missing: number } {
    if (this.resendQueue.length >= RESEND_MAX_ROWS) throw new AgentError('BUSY', `a resend of ${this.resendQueue.length} rows is still queued; retry later`);
    const rows = this.d.outbox.rangeForResend(from, to, RESEND_MAX_ROWS);
    this.resendQueue.push(...rows);
    setImmediate(() => this.pump());
    return { queued: rows.length, missing: to - from + 1 - rows.length };
  }

  stats(): DrainStats {
    const c = this.counters;
    const now = Date.now();
    if (this.rate.at === 0) this.rate = { at: now, published: c.published, value: 0 };
    else if (now - this.rate.at >= 1000) {
      this.rate = { at: now, published: c.published, value: Math.round(((c.published - this.rate.published) * 1000) / (now - this.rate.at)) };
    }
    return {
      inflight: this.inflight.size,
      window: this.window,
      published: c.published,
      published_live: c.published_live,
      published_replayed: c.published_replayed,
      publish_rate_per_s: this.rate.value,
      publish_refused: c.publish_refused,
      publish_dropped: c.publish_dropped,
      resend_queue: this.resendQueue.length,
    };
  }

  /** First seq of this connection's live rows (for the online log line). */
  get liveFromSeq(): number {
    return this.liveFrom;
  }

  /** Sends as much as the window, the outbox and the backlog rate allow. Called on every outbox commit. */
  pump(): void {
    const conn = this.conn;
    if (!this.flowing || !conn || !this.d.outbox.isOpen) return;
    if (Date.now() < this.pausedUntil) return;
    let limited = false;
    while (this.inflight.size < this.window) {
      let next = this.readQueue.shift();
      if (!next) {
        limited = this.refill() || limited;
        next = this.readQueue.shift();
        if (!next) break;
      }
      this.send(conn, next);
    }
    if (limited && !this.pumpTimer && this.inflight.size < this.window) {
      this.pumpTimer = setTimeout(
        () => {
          this.pumpTimer = undefined;
          this.pump();
        },
        Math.max(5, Math.ceil(1000 / this.d.config.drain_rate_per_s)),
      );
    }
  }

  private bucketSize(): number {
    const rate = this.d.config.drain_rate_per_s;
    return rate > 0 ? Math.max(1, rate / 10) : Infinity;
  }

  /** Backlog messages allowed now by drain_rate_per_s (token bucket, 100 ms burst). */
  private backlogBudget(): number {
    const rate = this.d.config.drain_rate_per_s;
    if (rate <= 0) return Infinity;
    const now = Date.now();
    this.tokens = Math.min(this.bucketSize(), this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    return Math.floor(this.tokens);
  }

  /** Leases the next rows into the read queue. Returns true when the drain rate held back the backlog. */
  private refill(): boolean {
    const outbox = this.d.outbox;
    const want = Math.max(this.window, 128);
    for (const row of outbox.lease(want, { liveFrom: this.liveFrom, maxBacklog: 0 })) {
      this.readQueue.push({ row, replayed: false, resend: false });
    }
    let room = want - this.readQueue.length;
    if (room <= 0) return false;
    let budget = this.backlogBudget();
    // Resend requests are backlog too: they go before the stored backlog, under the same rate.
    while (room > 0 && budget > 0 && this.resendQueue.length > 0) {
      this.readQueue.push({ row: this.resendQueue.shift() as OutboxRow, replayed: true, resend: true });
      room--;
      budget--;
      this.tokens--;
    }
    const n = Math.min(room, budget);
    if (n > 0) {
      const rows = outbox.lease(n, { liveFrom: this.liveFrom, maxBacklog: n });
      for (const row of rows) this.readQueue.push({ row, replayed: row.seq < this.liveFrom, resend: false });
      this.tokens -= rows.length;
      budget -= rows.length;
    }
    return Number.isFinite(budget) && budget <= 0;
  }

  private send(conn: Conn, s: Sending): void {
    // Write coalescing: mqtt.js handles each PUBACK of a TCP read in its own tick, and each publish it triggers
    // would be one write syscall. Publishes are held (cork) until the end of this turn of the event loop or
    // until a quarter of the window is held, whichever comes first: far fewer syscalls, and the window keeps
    // flowing instead of moving in lock-step.
    const stream = conn.client.stream;
    let cork = this.cork;
    if (cork?.stream !== stream) {
      if (typeof stream.cork !== 'function') return this.publishRow(conn, s);
      stream.cork();
      const c = { stream, held: 0 };
      cork = this.cork = c;
      setImmediate(() => this.uncork(c));
    }
    cork.held++;
    this.publishRow(conn, s);
    if (cork.held >= Math.max(1, this.window >> 2)) this.uncork(cork);
  }

  private publishRow(conn: Conn, s: Sending): void {
    const key = ++this.inflightKey;
    this.inflight.set(key, s);
    const payload = splice(s.row.payload, s.row.seq, this.sentAt(), s.replayed);
    conn.client.publish(this.d.topics.resolve(s.row.topic), payload, { qos: 1 }, (err) => this.onPuback(conn, key, s, err));
  }

  private uncork(c: Cork): void {
    if (this.cork !== c) return;
    this.cork = undefined;
    c.stream.uncork();
  }

  private onPuback(conn: Conn, key: number, s: Sending, err: Error | undefined): void {
    const outbox = this.d.outbox;
    if (conn !== this.conn || !outbox.isOpen) return; // connection gone: disconnected() already returned the row
    this.inflight.delete(key);
    if (err) {
      const reason = (err as { code?: unknown }).code;
      if (typeof reason !== 'number') return; // connection closed: the session handles it
      this.counters.publish_refused++;
      const e = new UplinkError('PUBLISH_REFUSED', `broker refused message seq ${s.row.seq} on ${s.row.topic} (reason ${reason}: ${err.message})`, reason, { cause: err });
      this.d.onError(e);
      if (PERMANENT_REFUSALS.has(reason)) {
        // Retrying would fail forever and block the queue: drop it, loudly.
        this.counters.publish_dropped++;
        this.d.log.error({ seq: s.row.seq, id: s.row.id, topic: s.row.topic, reason_code: reason, bytes: s.row.bytes }, `${e.message}; message dropped`);
        if (!s.resend) outbox.ack(s.row.seq);
      } else {
        this.d.log.warn({ seq: s.row.seq, reason_code: reason, pause_ms: REFUSED_PAUSE_MS }, `${e.message}; retrying later`);
        if (s.resend) this.resendQueue.unshift(s.row);
        else outbox.release([s.row.seq]);
        this.pause(REFUSED_PAUSE_MS);
        return;
      }
    } else {
      outbox.ack(s.row.seq);
      this.counters.published++;
      if (s.replayed) this.counters.published_replayed++;
      else this.counters.published_live++;
    }
    this.pump();
  }

  private pause(ms: number): void {
    this.pausedUntil = Date.now() + ms;
    // Rows already read ahead go back to the outbox so that order is kept after the pause.
    const seqs = this.readQueue.filter((s) => !s.resend).map((s) => s.row.seq);
    this.resendQueue = [...this.readQueue.filter((s) => s.resend).map((s) => s.row), ...this.resendQueue];
    this.readQueue.length = 0;
    this.d.outbox.release(seqs);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, ms);
  }

  private sentAt(): string {
    const now = Date.now();
    if (now !== this.sentAtMs) {
      this.sentAtMs = now;
      this.sentAtIso = new Date(now).toISOString();
    }
    return this.sentAtIso;
  }
}

/** Adds seq, sent_at and replayed to a stored JSON object text (ours come last, so they win over any same key). */
export function splice(payload: string, seq: number, sentAt: string, replayed: boolean): string {
  const tail = `"seq":${seq},"sent_at":"${sentAt}","replayed":${replayed}}`;
  return payload.length <= 2 ? `{${tail}` : `${payload.slice(0, -1)},${tail}`;
}
