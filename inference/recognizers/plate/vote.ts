/**
 * Several reads of one track's plate voted into one. Whole-string vote first: each distinct text scores the
 * sum of its reads' confidences; reads that fit the format outvote any that do not (invalid reads count only
 * when no read is valid). When no text was read twice, a per-position vote over the reads of the commonest
 * shape (same length, `-` and `.` at the same places) can mend single-character misreads that differ between
 * frames; its result is used only if it fits the format, else the whole-string winner stands.
 */
import { normalizePlate } from './format.js';

/** One read of a plate, as the reader reports it. */
export interface PlateVoteInput {
  text: string;
  confidence: number;
  valid_format: boolean;
}

export interface PlateVerdict {
  text: string;
  /** The winner's share of the voting weight times the mean confidence of the reads behind it, 0-1. */
  confidence: number;
  valid_format: boolean;
  /** Reads that gave exactly this text. */
  votes: number;
  /** Reads taken into account. */
  reads: number;
  method: 'string' | 'position';
}

const shapeOf = (t: string): string => `${t.length}:${t.replace(/[^.-]/g, '_')}`;

export class PlateVote {
  private readonly all: PlateVoteInput[] = [];

  /** Reads below `min_confidence` are ignored. */
  constructor(private readonly minConfidence = 0) {}

  add(read: PlateVoteInput): void {
    if (read.text.length === 0 || !(read.confidence >= this.minConfidence)) return;
    this.all.push({ text: read.text, confidence: Math.min(1, Math.max(0, read.confidence)), valid_format: read.valid_format });
  }

  get size(): number {
    return this.all.length;
  }

  best(): PlateVerdict | null {
    const valid = this.all.filter((r) => r.valid_format);
    const pool = valid.length > 0 ? valid : this.all;
    if (pool.length === 0) return null;
    const total = pool.reduce((s, r) => s + r.confidence, 0) || 1;
    // Ties: more reads, then the text seen first (Map keeps insertion order).
    const byText = new Map<string, { weight: number; votes: number }>();
    for (const r of pool) {
      const e = byText.get(r.text) ?? { weight: 0, votes: 0 };
      e.weight += r.confidence;
      e.votes++;
      byText.set(r.text, e);
    }
    let winner: [string, { weight: number; votes: number }] | undefined;
    for (const entry of byText) if (!winner || entry[1].weight > winner[1].weight || (entry[1].weight === winner[1].weight && entry[1].votes > winner[1].votes)) winner = entry;
    const [text, w] = winner!;
    const stringVerdict: PlateVerdict = {
      text,
      confidence: (w.weight / total) * (w.weight / w.votes),
      valid_format: pool[0]!.valid_format,
      votes: w.votes,
      reads: pool.length,
      method: 'string',
    };
    if (w.votes > 1 || pool.length < 3) return stringVerdict;
    return this.byPosition(pool) ?? stringVerdict;
  }

  /** Per-position weighted vote over the reads of the heaviest shape; null when it gives no valid plate. */
  private byPosition(pool: readonly PlateVoteInput[]): PlateVerdict | null {
    const shapes = new Map<string, PlateVoteInput[]>();
    for (const r of pool) shapes.set(shapeOf(r.text), [...(shapes.get(shapeOf(r.text)) ?? []), r]);
    const weight = (rs: readonly PlateVoteInput[]) => rs.reduce((s, r) => s + r.confidence, 0);
    const group = [...shapes.values()].reduce((a, b) => (weight(b) > weight(a) ? b : a));
    if (group.length < 3) return null;
    const total = weight(group) || 1;
    let text = '';
    let agreement = 0;
    for (let i = 0; i < group[0]!.text.length; i++) {
      const votes = new Map<string, number>();
      for (const r of group) votes.set(r.text[i]!, (votes.get(r.text[i]!) ?? 0) + r.confidence);
      const [ch, v] = [...votes].reduce((a, b) => (b[1] > a[1] ? b : a));
      text += ch;
      agreement += v / total;
    }
    const f = normalizePlate(text);
    if (!f.valid_format || f.text !== text) return null;
    const meanConf = total / group.length;
    return {
      text,
      confidence: (agreement / text.length) * meanConf * (group.length / pool.length),
      valid_format: true,
      votes: group.filter((r) => r.text === text).length,
      reads: pool.length,
      method: 'position',
    };
  }
}
