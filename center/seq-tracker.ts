// Per-device bookkeeping of the seqs a center received: the span [first, last] seen and the holes in it.
// One seq space per device covers events AND health (both come out of the agent's single outbox counter), so
// a tracker is fed by every outbox topic of its device. Holes carry the repair state (tries, request) so the
// receiver can ask the box to resend them; arrivals shrink or split them.
import { RESEND_MAX_ROWS } from '../contract/commands.js';

export interface Gap {
  /** First and last missing seq (inclusive). */
  lo: number;
  hi: number;
  /** When the hole was first seen (ms since epoch). Pieces of a split hole keep it. */
  opened_at: number;
  /** resend requests sent for it so far. */
  tries: number;
  /** The request this hole is waiting on, if any (set by the receiver). */
  request: string | null;
  /** When the current wait (request sent, or confirmation deadline) ends, ms since epoch. */
  wait_until: number;
  /**
   * A hole larger than MAX_REPAIRABLE_SEQS: a jump of the seq counter (the box quarantined a corrupt outbox and
   * restarted its seqs far above), not something a resend can fill. Reported as lost without asking.
   */
  jump: boolean;
  /** Given up on (reported lost). Kept, so a late arrival is still recognised as new (and un-lost). */
  lost: boolean;
  /** Why it was given up on. */
  reason: string | null;
  /** The seq range of the last resend request that covered it (for reports). */
  req_from: number;
  req_to: number;
}

/** A hole as a store keeps it (the part of Gap that outlives a receiver; a pending request does not). */
export type SavedGap = Pick<Gap, 'lo' | 'hi' | 'opened_at' | 'tries' | 'jump' | 'lost' | 'reason' | 'req_from' | 'req_to'>;

/** The tracker's state as a store keeps it, so a restarted receiver resumes where the previous one stopped. */
export interface SeqSnapshot {
  first: number;
  last: number;
  received: number;
  duplicates: number;
  gaps: SavedGap[];
}

export type Observation =
  /** A seq not seen before. `gap`: the hole it fell in (its repair state), `closed`: it was the hole's last seq. */
  | { kind: 'new'; gap: Gap | null; closed: boolean }
  | { kind: 'duplicate' };

/** Hole sizes above this are split into several holes, each repairable with one resend request. */
export const GAP_CHUNK = RESEND_MAX_ROWS;
/** Larger holes are seq jumps, not repairable losses (100 resend requests' worth). */
export const MAX_REPAIRABLE_SEQS = 100 * GAP_CHUNK;

export class SeqTracker {
  /** Lowest and highest seq seen; 0 before the first. */
  first = 0;
  last = 0;
  /** Distinct seqs received. */
  received = 0;
  duplicates = 0;
  /** Holes inside [first, last], sorted by lo, disjoint. */
  readonly gaps: Gap[] = [];

  /** Seqs missing inside [first, last] and still expected (not given up on). */
  get missing(): number {
    let n = 0;
    for (const g of this.gaps) if (!g.lost) n += g.hi - g.lo + 1;
    return n;
  }

  /** Seqs given up on (reported lost) that never arrived since. */
  get lost(): number {
    let n = 0;
    for (const g of this.gaps) if (g.lost) n += g.hi - g.lo + 1;
    return n;
  }

  /** Holes still expected. */
  get openGaps(): number {
    let n = 0;
    for (const g of this.gaps) if (!g.lost) n++;
    return n;
  }

  /** Highest seq up to which nothing is still expected: the last seq before the first open hole, or `last`. */
  get contiguous(): number {
    for (const g of this.gaps) if (!g.lost) return g.lo - 1;
    return this.last;
  }

  snapshot(): SeqSnapshot {
    const gaps = this.gaps.map(({ lo, hi, opened_at, tries, jump, lost, reason, req_from, req_to }) => ({ lo, hi, opened_at, tries, jump, lost, reason, req_from, req_to }));
    return { first: this.first, last: this.last, received: this.received, duplicates: this.duplicates, gaps };
  }

  /**
   * Takes over a saved state (before the first arrival). Requests of the receiver that saved it died with it:
   * holes wait for nothing, their tries still count.
   */
  restore(s: SeqSnapshot): void {
    this.first = s.first;
    this.last = s.last;
    this.received = s.received;
    this.duplicates = s.duplicates;
    const gaps = [...s.gaps].sort((a, b) => a.lo - b.lo).map((g) => ({ ...g, request: null, wait_until: 0 }));
    this.gaps.splice(0, this.gaps.length, ...gaps);
  }

  /** Records one arrival. */
  observe(seq: number, now: number): Observation {
    if (this.last === 0) {
      this.first = seq;
      this.last = seq;
      this.received++;
      return { kind: 'new', gap: null, closed: false };
    }
    if (seq > this.last) {
      if (seq > this.last + 1) this.addGap(this.last + 1, seq - 1, now, this.gaps.length);
      this.last = seq;
      this.received++;
      return { kind: 'new', gap: null, closed: false };
    }
    if (seq < this.first) {
      if (seq < this.first - 1) this.addGap(seq + 1, this.first - 1, now, 0);
      this.first = seq;
      this.received++;
      return { kind: 'new', gap: null, closed: false };
    }
    const i = this.find(seq);
    if (i < 0) {
      this.duplicates++;
      return { kind: 'duplicate' };
    }
    this.received++;
    const g = this.gaps[i] as Gap;
    if (g.lo === g.hi) {
      this.gaps.splice(i, 1);
      return { kind: 'new', gap: g, closed: true };
    }
    if (seq === g.lo) g.lo++;
    else if (seq === g.hi) g.hi--;
    else {
      const right: Gap = { ...g, lo: seq + 1 };
      g.hi = seq - 1;
      this.gaps.splice(i + 1, 0, right);
    }
    return { kind: 'new', gap: g, closed: false };
  }

  /** True when seq lies inside [first, last] and is not missing. */
  has(seq: number): boolean {
    return this.last !== 0 && seq >= this.first && seq <= this.last && this.find(seq) < 0;
  }

  /** Index of the hole containing seq, or -1. */
  private find(seq: number): number {
    let lo = 0;
    let hi = this.gaps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const g = this.gaps[mid] as Gap;
      if (seq < g.lo) hi = mid - 1;
      else if (seq > g.hi) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private addGap(lo: number, hi: number, now: number, at: number): void {
    const pieces: Gap[] = [];
    const gap = (a: number, b: number, jump: boolean): Gap => ({ lo: a, hi: b, opened_at: now, tries: 0, request: null, wait_until: 0, jump, lost: false, reason: null, req_from: a, req_to: b });
    if (hi - lo + 1 > MAX_REPAIRABLE_SEQS) pieces.push(gap(lo, hi, true));
    else for (let a = lo; a <= hi; a += GAP_CHUNK) pieces.push(gap(a, Math.min(hi, a + GAP_CHUNK - 1), false));
    this.gaps.splice(at, 0, ...pieces);
  }
}
