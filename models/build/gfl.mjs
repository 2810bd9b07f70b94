// A small reference decoder of the model's GFL heads (not the agent's: the agent has its own in
// inference/detector/decoders) and the int8-vs-fp32 detection comparison used by quantize.mjs.
export const SIZE = 416;
const STRIDES = [8, 16, 32];
const BINS = 11; // reg_max + 1

/**
 * GFL decode: sigmoid scores are already in cls_*; reg_* holds 4 x 11 distance logits per cell. Boxes in input pixels.
 * A candidate model (candidates.mjs, fed all 80 classes) returns the same rows for its anchors_* only.
 */
export function decode(outputs, threshold) {
  const boxes = [];
  for (const stride of STRIDES) {
    const g = SIZE / stride;
    const sparse = outputs[`anchors_s${stride}`];
    const cls = (sparse ? outputs[`scores_s${stride}`] : outputs[`cls_s${stride}`]).data;
    const reg = (sparse ? outputs[`dists_s${stride}`] : outputs[`reg_s${stride}`]).data;
    const rows = sparse ? sparse.data.length : g * g;
    for (let r = 0; r < rows; r++) {
      const i = sparse ? sparse.data[r] : r;
      let best = -1;
      let score = threshold;
      for (let c = 0; c < 80; c++) {
        const s = cls[r * 80 + c];
        if (s >= score) {
          score = s;
          best = c;
        }
      }
      if (best < 0) continue;
      const d = [0, 0, 0, 0];
      for (let side = 0; side < 4; side++) {
        const o = r * 44 + side * BINS;
        let max = -Infinity;
        for (let k = 0; k < BINS; k++) max = Math.max(max, reg[o + k]);
        let sum = 0;
        let acc = 0;
        for (let k = 0; k < BINS; k++) {
          const e = Math.exp(reg[o + k] - max);
          sum += e;
          acc += e * k;
        }
        d[side] = (acc / sum) * stride;
      }
      const cx = ((i % g) + 0.5) * stride;
      const cy = (Math.floor(i / g) + 0.5) * stride;
      boxes.push({
        cls: best,
        score,
        box: [Math.max(cx - d[0], 0), Math.max(cy - d[1], 0), Math.min(cx + d[2], SIZE), Math.min(cy + d[3], SIZE)],
        stride,
      });
    }
  }
  return boxes;
}

export function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Per-class NMS, best score first. */
export function nms(boxes, iouThreshold) {
  const kept = [];
  for (const b of [...boxes].sort((x, y) => y.score - x.score)) {
    if (kept.every((k) => k.cls !== b.cls || iou(k.box, b.box) < iouThreshold)) kept.push(b);
  }
  return kept;
}

/**
 * Pairs a test model's detections (int8) with a reference model's (fp32) on one frame. Both lists are decoded
 * at `threshold - margin` (margin = the allowed mean score drop), so an object near the threshold is still
 * paired when its score moves a little.
 * - every reference detection scoring >= threshold is paired with the test detection of the same class that
 *   overlaps it most: `found` when that IoU is >= 0.5 (same object), else `lost`;
 * - every test detection scoring >= threshold that overlaps no reference detection of its class by >= 0.5 is
 *   `extra` (an object the reference does not see).
 */
export function compareDetections(ref, test, { threshold = 0.3 } = {}) {
  const pairs = [];
  const lost = [];
  const extra = [];
  for (const r of ref.filter((d) => d.score >= threshold)) {
    let best;
    let bestIou = 0;
    for (const t of test) {
      if (t.cls !== r.cls) continue;
      const v = iou(r.box, t.box);
      if (v > bestIou) [best, bestIou] = [t, v];
    }
    if (best && bestIou >= 0.5) pairs.push({ cls: r.cls, iou: bestIou, drop: r.score - best.score, ref: r, test: best });
    else lost.push({ ref: r, iou: bestIou });
  }
  for (const t of test.filter((d) => d.score >= threshold)) {
    if (!ref.some((r) => r.cls === t.cls && iou(r.box, t.box) >= 0.5)) extra.push({ test: t });
  }
  return { pairs, lost, extra, nTest: test.filter((d) => d.score >= threshold).length };
}

/** Totals over frames. */
export function summarize(results, classNames = []) {
  const pairs = results.flatMap((r) => r.pairs);
  const ious = pairs.map((p) => p.iou).sort((a, b) => a - b);
  const drops = pairs.map((p) => p.drop);
  const mean = (a) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : NaN);
  const nRef = pairs.length + results.reduce((s, r) => s + r.lost.length, 0);
  const nTest = results.reduce((s, r) => s + r.nTest, 0);
  const classes = {};
  for (const p of pairs) classes[classNames[p.cls] ?? p.cls] = (classes[classNames[p.cls] ?? p.cls] ?? 0) + 1;
  return {
    frames: results.length,
    reference: nRef,
    pairs: pairs.length,
    lost: results.flatMap((r) => r.lost.map((l) => ({ frame: r.tag, ...l }))),
    extra: results.flatMap((r) => r.extra.map((e) => ({ frame: r.tag, ...e }))),
    found_rate: nRef ? pairs.length / nRef : 1,
    extra_rate: nTest ? results.reduce((s, r) => s + r.extra.length, 0) / nTest : 0,
    iou_min: ious[0] ?? NaN,
    iou_p5: ious[Math.floor(ious.length * 0.05)] ?? NaN,
    iou_mean: mean(ious),
    iou_ge_09: ious.length ? ious.filter((v) => v >= 0.9).length / ious.length : NaN,
    score_drop_mean: mean(drops),
    score_abs_diff_mean: mean(drops.map(Math.abs)),
    score_drop_max: Math.max(...drops),
    classes,
  };
}

/**
 * The int8 accuracy gate (also in tests/integration/inference/model-int8.test.ts).
 * - Photos, object by object: every confident fp32 object (score >= threshold + margin: an object nearer the
 *   threshold may drop under it within the allowed score drop) found with IoU >= 0.9; no confident extra int8
 *   object; mean score drop <= 0.05.
 * - All frames (photos and clip), statistically: >= 98 % of the fp32 objects (>= threshold) found, <= 2 %
 *   extra, >= 95 % of the pairs at IoU >= 0.9, mean IoU >= 0.9, mean score drop <= 0.05.
 * Object by object on the clip would fail even for fp32 against itself: +-1 grey level of noise on the input
 * already loses or moves a few of its ~2,800 small, overlapping, near-threshold people (README.md).
 */
export const GATE = { threshold: 0.3, margin: 0.05, nmsIou: 0.5, minIou: 0.9, minFound: 0.98, maxExtra: 0.02, minIouShare: 0.95, maxMeanDrop: 0.05 };

/** Photo rule on one frame's compareDetections() result: the confident objects that fail it. */
export function photoFailures(res) {
  const confident = GATE.threshold + GATE.margin;
  const pairs = res.pairs.filter((p) => p.ref.score >= confident);
  return [
    ...res.lost.filter((l) => l.ref.score >= confident).map((l) => ({ kind: 'lost', cls: l.ref.cls, score: l.ref.score, iou: l.iou })),
    ...pairs.filter((p) => p.iou < GATE.minIou).map((p) => ({ kind: 'moved', cls: p.cls, score: p.ref.score, iou: p.iou })),
    ...res.extra.filter((e) => e.test.score >= confident).map((e) => ({ kind: 'extra', cls: e.test.cls, score: e.test.score })),
  ];
}

/** `all`: summarize() over every frame; `photos`: [{ name, result: compareDetections() }]. Returns the violations. */
export function gateViolations(all, photos, classNames = []) {
  const v = [];
  for (const { name, result } of photos) {
    for (const f of photoFailures(result)) v.push(`${name}: ${f.kind} ${classNames[f.cls] ?? f.cls} ${f.score.toFixed(3)}${f.iou !== undefined ? ` (IoU ${f.iou.toFixed(3)})` : ''}`);
    const drop = summarize([result]).score_drop_mean;
    if (drop > GATE.maxMeanDrop) v.push(`${name}: mean score drop ${drop.toFixed(3)} > ${GATE.maxMeanDrop}`);
  }
  if (all.found_rate < GATE.minFound) v.push(`found ${(100 * all.found_rate).toFixed(1)} % of the fp32 objects (< ${100 * GATE.minFound} %)`);
  if (all.extra_rate > GATE.maxExtra) v.push(`${(100 * all.extra_rate).toFixed(1)} % extra objects (> ${100 * GATE.maxExtra} %)`);
  if (!(all.iou_ge_09 >= GATE.minIouShare)) v.push(`${(100 * all.iou_ge_09).toFixed(1)} % of the pairs with IoU >= 0.9 (< ${100 * GATE.minIouShare} %)`);
  if (!(all.iou_mean >= GATE.minIou)) v.push(`mean IoU ${all.iou_mean.toFixed(3)} < ${GATE.minIou}`);
  if (!(all.score_drop_mean <= GATE.maxMeanDrop)) v.push(`mean score drop ${all.score_drop_mean.toFixed(3)} > ${GATE.maxMeanDrop}`);
  return v;
}
