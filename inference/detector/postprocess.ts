import type { Candidates } from './decoders/types.js';
import { pointInPolygon, type PolygonPoints } from './geometry.js';
import type { Detection, DetectorFrame } from './types.js';

export interface PostprocessOptions {
  /** Name per class id; ids beyond it are named `class_<id>`. */
  classNames: readonly string[];
  /** Boxes of one class overlapping a better one by more than this IoU are suppressed. */
  nmsIou: number;
  /** In camera pixels squared. */
  minAreaPx: number;
  /** Most detections returned per frame (best first). */
  maxDetections: number;
}

export type FrameGeometry = Pick<DetectorFrame, 'width' | 'height' | 'source_width' | 'source_height' | 'letterbox'>;

/** Candidates beyond this many (best first) never reach NMS: bounds its quadratic cost on a pathological frame. */
const MAX_NMS_INPUT = 2000;

/** Reusable scratch space so a frame's post-processing allocates only its result. */
export class PostprocessScratch {
  x1 = new Float64Array(0);
  y1 = new Float64Array(0);
  x2 = new Float64Array(0);
  y2 = new Float64Array(0);
  suppressed = new Uint8Array(0);

  ensure(n: number): void {
    if (this.x1.length >= n) return;
    const size = Math.max(n, this.x1.length * 2, 256);
    this.x1 = new Float64Array(size);
    this.y1 = new Float64Array(size);
    this.x2 = new Float64Array(size);
    this.y2 = new Float64Array(size);
    this.suppressed = new Uint8Array(size);
  }
}

/**
 * Candidates (model input pixels) → detections in camera pixels: undo the stretch or letterbox, clip to the
 * frame, drop boxes under `minAreaPx` and those whose centre is outside `roi`, then class-aware NMS, best first.
 */
export function postprocess(
  c: Candidates,
  frame: FrameGeometry,
  roi: PolygonPoints | undefined,
  opts: PostprocessOptions,
  scratch: PostprocessScratch = new PostprocessScratch(),
): Detection[] {
  const sw = frame.source_width;
  const sh = frame.source_height;
  let kx: number, ky: number, ox: number, oy: number;
  if (frame.letterbox) {
    const { scale, pad_x, pad_y } = frame.letterbox;
    kx = ky = 1 / scale;
    ox = -pad_x / scale;
    oy = -pad_y / scale;
  } else {
    kx = sw / frame.width;
    ky = sh / frame.height;
    ox = oy = 0;
  }
  scratch.ensure(c.count);
  const { x1, y1, x2, y2, suppressed } = scratch;
  const order: number[] = [];
  for (let i = 0; i < c.count; i++) {
    const a = clamp(c.x1[i]! * kx + ox, sw);
    const b = clamp(c.y1[i]! * ky + oy, sh);
    const e = clamp(c.x2[i]! * kx + ox, sw);
    const f = clamp(c.y2[i]! * ky + oy, sh);
    const area = (e - a) * (f - b);
    if (!(area > 0) || area < opts.minAreaPx) continue;
    if (roi && !pointInPolygon((a + e) / 2, (b + f) / 2, roi)) continue;
    x1[i] = a;
    y1[i] = b;
    x2[i] = e;
    y2[i] = f;
    suppressed[i] = 0;
    order.push(i);
  }
  const score = c.score;
  order.sort((p, q) => score[q]! - score[p]! || p - q);
  if (order.length > MAX_NMS_INPUT) order.length = MAX_NMS_INPUT;

  const out: Detection[] = [];
  const cls = c.cls;
  for (let oi = 0; oi < order.length && out.length < opts.maxDetections; oi++) {
    const i = order[oi]!;
    if (suppressed[i]) continue;
    const ci = cls[i]!;
    out.push({
      box: [round2(x1[i]!), round2(y1[i]!), round2(x2[i]!), round2(y2[i]!)],
      score: Math.round(score[i]! * 1e4) / 1e4,
      class_id: ci,
      class_name: opts.classNames[ci] ?? `class_${ci}`,
    });
    const ai = (x2[i]! - x1[i]!) * (y2[i]! - y1[i]!);
    for (let oj = oi + 1; oj < order.length; oj++) {
      const j = order[oj]!;
      if (suppressed[j] || cls[j] !== ci) continue;
      const iw = Math.min(x2[i]!, x2[j]!) - Math.max(x1[i]!, x1[j]!);
      if (iw <= 0) continue;
      const ih = Math.min(y2[i]!, y2[j]!) - Math.max(y1[i]!, y1[j]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const aj = (x2[j]! - x1[j]!) * (y2[j]! - y1[j]!);
      if (inter / (ai + aj - inter) > opts.nmsIou) suppressed[j] = 1;
    }
  }
  return out;
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
