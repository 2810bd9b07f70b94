// Row shapes and priority classes shared by the parts of the outbox.
import { OUTBOX_PRIORITIES, type OutboxPriority } from '../config/schema/outbox.js';

/** What the pipeline hands to the outbox. */
export interface OutboxMessage {
  /** Unique message id (event id): the center drops duplicates by it. */
  id: string;
  /** Topic relative to the device base topic, e.g. `events/cam1`. */
  topic: string;
  priority: OutboxPriority;
  /**
   * JSON object. Its `id` is set to the message id; `seq`, `sent_at` and `replayed` are reserved (added by the
   * uplink when sending) and dropped here.
   */
  payload: object;
}

/** A stored row, as leased to the uplink. */
export interface OutboxRow {
  seq: number;
  id: string;
  topic: string;
  priority: OutboxPriority;
  /** Wall-clock time of append(), ms since epoch. */
  created_at: number;
  /** JSON object text, without seq/sent_at/replayed. */
  payload: string;
  /** UTF-8 size of `payload`. */
  bytes: number;
}

export type PerPriority = Record<OutboxPriority, number>;

/** Row as read with .raw(): [seq, id, topic, priority, created_at, payload, bytes]. */
export type RawRow = [number, string, string, number, number, string, number];

/** A row appended and not yet committed; `priority` is the class index. */
export interface PendingRow {
  seq: number;
  id: string;
  topic: string;
  priority: number;
  created_at: number;
  payload: string;
  bytes: number;
}

/** Number of priority classes; rows store the class index (0 = violation ... P-1 = health). */
export const P = OUTBOX_PRIORITIES.length;
export const PRIO_INDEX = Object.fromEntries(OUTBOX_PRIORITIES.map((p, i) => [p, i])) as Record<OutboxPriority, number>;
export const HEALTH = PRIO_INDEX.health;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
export const COLS = 'seq, id, topic, priority, created_at, payload, bytes';

export const zeros = (): number[] => new Array<number>(P).fill(0);

export const inc = (a: number[], i: number, by = 1): void => {
  a[i] = (a[i] ?? 0) + by;
};

export const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);

export const perPriority = (values: readonly number[]): PerPriority =>
  Object.fromEntries(OUTBOX_PRIORITIES.map((p, i) => [p, values[i] ?? 0])) as PerPriority;

export function toRow(r: RawRow): OutboxRow {
  return { seq: r[0], id: r[1], topic: r[2], priority: OUTBOX_PRIORITIES[r[3]] ?? 'health', created_at: r[4], payload: r[5], bytes: r[6] };
}

export function round(x: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
