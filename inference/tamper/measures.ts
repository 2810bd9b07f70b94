// What one tamper check measures on a frame: a small grey thumbnail (exposure, detail, registration), sharpness
// as fine over coarse Laplacian energy at the frame's own resolution, and raw samples to tell a frozen picture.
// One pass over precomputed sample offsets: no allocation per check.
import type { RgbFrame } from '../../ingest/frame.js';

/** Thumbnail size: a 4:3 grid over the picture (any aspect is stretched onto it). */
export const THUMB_W = 64;
export const THUMB_H = 48;
/** Distance of the coarse Laplacian's neighbours, frame pixels (the fine one uses 1). */
export const COARSE_STEP = 4;

/** The picture inside a frame (letterbox: without the grey bands), frame pixels. */
export interface PictureRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The numbers of one check. Luminance is BT.601 luma 0-255. */
export interface FrameMeasures {
  luma_mean: number;
  /** 5th and 95th percentile of the thumbnail's luma. */
  luma_p5: number;
  luma_p95: number;
  /** Mean absolute gradient of the thumbnail, grey levels per thumbnail pixel. */
  detail: number;
  /** Fine over coarse Laplacian energy: falls when the picture is blurred, unchanged by brightness or contrast. */
  sharpness: number;
  /** Mean absolute difference of the raw samples to the previous check's, grey levels; NaN on the first check. */
  frame_diff: number;
}

/**
 * Samples frames of one geometry. `sample` fills `thumb` (THUMB_W × THUMB_H luma, row-major) and `raw` (one
 * green byte per cell, unfiltered: sensor noise stays in it) and returns the measures.
 */
export class FrameSampler {
  readonly thumb = new Float32Array(THUMB_W * THUMB_H);
  readonly raw = new Uint8Array(THUMB_W * THUMB_H);
  private readonly prevRaw = new Uint8Array(THUMB_W * THUMB_H);
  private hasPrev = false;
  /** Per cell: byte offsets of 2×2 luma samples spread over the cell, then of the cell centre. */
  private readonly offsets: Int32Array;
  private readonly centres: Int32Array;
  private readonly stride: number;
  private readonly hist = new Uint32Array(256);

  constructor(
    readonly frameWidth: number,
    readonly frameHeight: number,
    readonly region: PictureRegion = { x: 0, y: 0, width: frameWidth, height: frameHeight },
  ) {
    const n = THUMB_W * THUMB_H;
    this.stride = frameWidth * 3;
    this.offsets = new Int32Array(n * 4);
    this.centres = new Int32Array(n);
    const m = COARSE_STEP;
    const clampX = (x: number) => Math.min(frameWidth - 1 - m, Math.max(m, Math.round(x)));
    const clampY = (y: number) => Math.min(frameHeight - 1 - m, Math.max(m, Math.round(y)));
    const cw = region.width / THUMB_W;
    const ch = region.height / THUMB_H;
    for (let gy = 0; gy < THUMB_H; gy++) {
      for (let gx = 0; gx < THUMB_W; gx++) {
        const i = gy * THUMB_W + gx;
        const x0 = region.x + gx * cw;
        const y0 = region.y + gy * ch;
        for (let k = 0; k < 4; k++) {
          const x = clampX(x0 + cw * (k & 1 ? 0.75 : 0.25));
          const y = clampY(y0 + ch * (k & 2 ? 0.75 : 0.25));
          this.offsets[i * 4 + k] = y * this.stride + x * 3;
        }
        this.centres[i] = clampY(y0 + ch / 2) * this.stride + clampX(x0 + cw / 2) * 3;
      }
    }
  }

  /** Measures `frame` (of this sampler's size). */
  sample(frame: RgbFrame): FrameMeasures {
    if (frame.width !== this.frameWidth || frame.height !== this.frameHeight) {
      throw new RangeError(`frame is ${frame.width}x${frame.height}, the sampler was made for ${this.frameWidth}x${this.frameHeight}`);
    }
    const rgb = frame.data;
    const { offsets, centres, thumb, raw, prevRaw, hist, stride } = this;
    const n = THUMB_W * THUMB_H;
    const s = COARSE_STEP * 3;
    const sv = COARSE_STEP * stride;
    hist.fill(0);
    let lumaSum = 0;
    let fine = 0;
    let coarse = 0;
    let diff = 0;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) {
        const o = offsets[i * 4 + k]!;
        // BT.601 luma in 8.8 fixed point.
        sum += 77 * rgb[o]! + 150 * rgb[o + 1]! + 29 * rgb[o + 2]!;
      }
      const g = sum / 1024;
      thumb[i] = g;
      lumaSum += g;
      hist[g | 0]! += 1;
      // Laplacians on the green channel at the cell centre: fine (1 px) and coarse (COARSE_STEP px).
      const c = centres[i]! + 1;
      const v = rgb[c]!;
      fine += Math.abs(4 * v - rgb[c - 3]! - rgb[c + 3]! - rgb[c - stride]! - rgb[c + stride]!);
      coarse += Math.abs(4 * v - rgb[c - s]! - rgb[c + s]! - rgb[c - sv]! - rgb[c + sv]!);
      diff += Math.abs(v - prevRaw[i]!);
      raw[i] = v;
    }
    const frame_diff = this.hasPrev ? diff / n : Number.NaN;
    prevRaw.set(raw);
    this.hasPrev = true;
    return {
      luma_mean: lumaSum / n,
      luma_p5: percentileOfHistogram(hist, n, 0.05),
      luma_p95: percentileOfHistogram(hist, n, 0.95),
      detail: meanGradient(thumb, THUMB_W, THUMB_H),
      // Flat picture (no coarse structure at all): as sharp as it can be, the detail measure speaks instead.
      sharpness: coarse > 0 ? fine / coarse : 1,
      frame_diff,
    };
  }

  /** Forgets the previous frame (after a gap in the frames, a frozen-picture comparison would mean nothing). */
  resetDiff(): void {
    this.hasPrev = false;
  }
}

/** The grey level below which `q` of the `n` counted values lie. */
export function percentileOfHistogram(hist: Uint32Array, n: number, q: number): number {
  const target = q * n;
  let acc = 0;
  for (let v = 0; v < hist.length; v++) {
    acc += hist[v]!;
    if (acc > target) return v;
  }
  return hist.length - 1;
}

/** Mean of |dx| + |dy| (forward differences) over an image. */
export function meanGradient(img: Float32Array, w: number, h: number): number {
  let sum = 0;
  for (let y = 0; y < h - 1; y++) {
    const row = y * w;
    for (let x = 0; x < w - 1; x++) {
      const v = img[row + x]!;
      sum += Math.abs(img[row + x + 1]! - v) + Math.abs(img[row + w + x]! - v);
    }
  }
  return sum / ((w - 1) * (h - 1));
}
