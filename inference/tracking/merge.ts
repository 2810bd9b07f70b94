// One object, one detection: boxes of different classes of one class group on the same object merge.
import { iou } from './associate.js';
import type { ClassScore, Detection } from './types.js';

/**
 * The detector's NMS is per class, so one pickup can come out as a `truck` box and a `car` box at once; two
 * boxes would start two tracks and count the vehicle twice. Here boxes of one class group (`groupOf`) but
 * different classes that overlap by at least `mergeIou` (IoU) become one detection: the box and score of
 * the best, and `class_scores` with the best score of each class, for the track's class vote. Boxes of the
 * same class are left alone: the detector's NMS already decided they are two objects (two motorbikes side by
 * side). Greedy, best score first, like NMS. Returns `dets` itself when nothing merged.
 */
export function mergeDetections(dets: readonly Detection[], groupOf: (class_name: string) => string, mergeIou: number): readonly Detection[] {
  const n = dets.length;
  if (n < 2 || mergeIou >= 1) return dets;
  const first = dets[0]!.class_name;
  if (dets.every((d) => d.class_name === first)) return dets;
  // Candidate pairs first (a sweep over the boxes by left edge): usually none, and then nothing else to do.
  const byX = Array.from({ length: n }, (_, i) => i).sort((a, b) => dets[a]!.box[0] - dets[b]!.box[0]);
  const groups = dets.map((d) => groupOf(d.class_name));
  let partners: Map<number, number[]> | undefined;
  for (let p = 0; p < n; p++) {
    const i = byX[p]!;
    const a = dets[i]!;
    for (let q = p + 1; q < n; q++) {
      const j = byX[q]!;
      const b = dets[j]!;
      if (b.box[0] >= a.box[2]) break;
      if (groups[i] !== groups[j] || a.class_name === b.class_name || b.box[1] >= a.box[3] || a.box[1] >= b.box[3]) continue;
      if (iou(a.box, b.box) < mergeIou) continue;
      partners ??= new Map();
      for (const [x, y] of [
        [i, j],
        [j, i],
      ] as const) {
        const list = partners.get(x);
        if (list) list.push(y);
        else partners.set(x, [y]);
      }
    }
  }
  if (!partners) return dets;
  // Greedy, best score first, like NMS: a box merges into a kept partner that has not got its class yet.
  const order = [...partners.keys()].sort((a, b) => dets[b]!.score - dets[a]!.score);
  const into = new Map<number, number>();
  const scores = new Map<number, ClassScore[]>();
  const own = (d: Detection): readonly ClassScore[] => d.class_scores ?? [{ class_name: d.class_name, class_id: d.class_id, score: d.score }];
  for (const i of order) {
    const d = dets[i]!;
    const k = partners.get(i)!.find((c) => !into.has(c) && scores.has(c) && !scores.get(c)!.some((x) => x.class_name === d.class_name));
    if (k === undefined) {
      scores.set(i, own(d).map((c) => ({ ...c })));
      continue;
    }
    into.set(i, k);
    const cls = scores.get(k)!;
    for (const c of own(d)) {
      const have = cls.find((x) => x.class_name === c.class_name);
      if (!have) cls.push({ ...c });
      else if (c.score > have.score) have.score = c.score;
    }
  }
  const out: Detection[] = [];
  for (let i = 0; i < n; i++) {
    if (into.has(i)) continue;
    const cls = scores.get(i);
    out.push(cls && cls.length > 1 ? { ...dets[i]!, class_scores: cls } : dets[i]!);
  }
  return out.length === n ? dets : out;
}
