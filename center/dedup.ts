// Duplicate detection for one device. Delivery is at-least-once and resends repeat messages, so a copy is
// recognised by its seq (the SeqTracker, when seqs are tracked) and by its id (a window of recent ids, which also
// catches a message sent again under a new seq, and two ids on one seq: seq reuse on the box).
import type { Gap, SeqTracker } from './seq-tracker.js';

export interface Admission {
  /** First copy of this message: process it. */
  fresh: boolean;
  /** The hole the seq fell in (repair bookkeeping) and whether it was the hole's last seq. */
  gap: Gap | null;
  closed: boolean;
  /** The id received earlier under this seq, when it differs from this one. */
  conflicting_id?: string;
}

const DUPLICATE: Admission = { fresh: false, gap: null, closed: false };

export class Dedup {
  /** New seqs carrying an id already received under another seq. */
  duplicate_ids = 0;
  /** A seq received twice with different ids. */
  seq_conflicts = 0;
  /** Copies recognised by id alone (seqs not tracked). */
  private untracked_duplicates = 0;
  /** id → seq and seq → id of recent messages, each bounded by `window` (insertion order = age). */
  private readonly idSeq = new Map<string, number>();
  private readonly seqId = new Map<number, string>();

  /** `tracker` null: seqs are not tracked (gap mode off), duplicates are found by id only. */
  constructor(
    private readonly tracker: SeqTracker | null,
    private readonly window: number,
  ) {}

  /** Copies of a seq already received. */
  get duplicates(): number {
    return (this.tracker?.duplicates ?? 0) + this.untracked_duplicates;
  }

  admit(id: string, seq: number, now: number): Admission {
    const prevSeqOfId = this.idSeq.get(id);
    if (!this.tracker) {
      if (prevSeqOfId === undefined) {
        this.remember(id, seq);
        return { fresh: true, gap: null, closed: false };
      }
      if (prevSeqOfId === seq) this.untracked_duplicates++;
      else this.duplicate_ids++;
      return DUPLICATE;
    }
    const obs = this.tracker.observe(seq, now);
    if (obs.kind === 'duplicate') {
      const prevId = this.seqId.get(seq);
      if (prevId === undefined || prevId === id) return DUPLICATE;
      this.seq_conflicts++;
      return { ...DUPLICATE, conflicting_id: prevId };
    }
    this.remember(id, seq);
    // A new seq with a known id still fills its place in the seq space (transported), but is not processed again.
    if (prevSeqOfId !== undefined) this.duplicate_ids++;
    return { fresh: prevSeqOfId === undefined, gap: obs.gap, closed: obs.closed };
  }

  private remember(id: string, seq: number): void {
    this.idSeq.set(id, seq);
    this.seqId.set(seq, id);
    if (this.idSeq.size > this.window) this.idSeq.delete(this.idSeq.keys().next().value as string);
    if (this.seqId.size > this.window) this.seqId.delete(this.seqId.keys().next().value as number);
  }
}
