// The memory batch: rows appended and not yet committed, one queue per priority class (each in seq order).
// It hands out the per-device seqs: a row gets its seq when it enters the batch.
import { P, type PendingRow } from './rows.js';

export class PendingBatch {
  private queues: PendingRow[][] = Array.from({ length: P }, () => []);
  private rowCount = 0;
  private byteCount = 0;
  private next = 1;

  /** The seq the next row will get. */
  get nextSeq(): number {
    return this.next;
  }

  /** Continues the seqs of the stored outbox (at open). */
  continueFrom(nextSeq: number): void {
    this.next = nextSeq;
  }

  get size(): number {
    return this.rowCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Adds a row of class `priority` with the next seq; returns the seq. */
  push(id: string, topic: string, priority: number, created_at: number, payload: string, bytes: number): number {
    const seq = this.next++;
    (this.queues[priority] as PendingRow[]).push({ seq, id, topic, priority, created_at, payload, bytes });
    this.rowCount++;
    this.byteCount += bytes;
    return seq;
  }

  /** Rows of class p, oldest first. */
  of(p: number): readonly PendingRow[] {
    return this.queues[p] ?? [];
  }

  /** Drops up to `n` rows of class p, oldest first, never the newest `keep`; returns how many went. */
  dropOldest(p: number, n: number, keep = 0): number {
    const q = this.queues[p] ?? [];
    const k = Math.max(0, Math.min(n, q.length - keep));
    if (k === 0) return 0;
    for (const r of q.splice(0, k)) this.byteCount -= r.bytes;
    this.rowCount -= k;
    return k;
  }

  /** Empties the batch (after a commit wrote it, or on close). */
  clear(): void {
    this.queues = Array.from({ length: P }, () => []);
    this.rowCount = 0;
    this.byteCount = 0;
  }
}
