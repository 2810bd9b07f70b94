/**
 * Pixels to model inputs, in PaddleOCR's conventions: planar float32, channels in BGR order (PaddleOCR reads
 * images with OpenCV, and its models were trained that way), bilinear sampling.
 */
import type { RgbFrame } from '../../../ingest/frame.js';

export type Point = [number, number];

/** A text region in crop pixels: top-left corner and the ends of its top and left edges (any rotation). */
export interface Quad {
  tl: Point;
  tr: Point;
  bl: Point;
}

export interface DetInput {
  data: Float32Array;
  width: number;
  height: number;
  /** Input pixels per crop pixel, horizontally and vertically. */
  sx: number;
  sy: number;
}

/** PaddleOCR DB detector normalisation (ImageNet mean and std, listed in the BGR channel order it feeds). */
const DET_MEAN = [0.485, 0.456, 0.406] as const;
const DET_STD = [0.229, 0.224, 0.225] as const;
/** RGB byte offset of tensor channel c (tensor is BGR). */
const SRC_CHANNEL = [2, 1, 0] as const;

/** Bilinear sample of channel `ch` at (x, y) in pixel-centre coordinates, clamped to the edges. */
function sample(img: RgbFrame, x: number, y: number, ch: number): number {
  const { data, width: w, height: h } = img;
  const cx = Math.min(Math.max(x, 0), w - 1);
  const cy = Math.min(Math.max(y, 0), h - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, w - 1);
  const y1 = Math.min(y0 + 1, h - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const r0 = y0 * w;
  const r1 = y1 * w;
  const a = data[(r0 + x0) * 3 + ch]!;
  const b = data[(r0 + x1) * 3 + ch]!;
  const c = data[(r1 + x0) * 3 + ch]!;
  const d = data[(r1 + x1) * 3 + ch]!;
  return a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy;
}

/**
 * The crop scaled so its longer side is `side` pixels (enlarged at most `max_upscale` times), each side rounded
 * to a multiple of 32 (the DB network's stride), ImageNet-normalised.
 */
export function detInput(crop: RgbFrame, side: number, maxUpscale: number): DetInput {
  const scale = Math.min(side / Math.max(crop.width, crop.height), maxUpscale);
  const width = Math.max(32, Math.round((crop.width * scale) / 32) * 32);
  const height = Math.max(32, Math.round((crop.height * scale) / 32) * 32);
  const sx = width / crop.width;
  const sy = height / crop.height;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    const srcY = (y + 0.5) / sy - 0.5;
    for (let x = 0; x < width; x++) {
      const srcX = (x + 0.5) / sx - 0.5;
      const o = y * width + x;
      for (let c = 0; c < 3; c++) data[c * plane + o] = (sample(crop, srcX, srcY, SRC_CHANNEL[c]!) / 255 - DET_MEAN[c]!) / DET_STD[c]!;
    }
  }
  return { data, width, height, sx, sy };
}

export const REC_HEIGHT = 48;
const REC_MIN_WIDTH = 48;
const REC_MAX_WIDTH = 640;

const dist = (a: Point, b: Point) => Math.hypot(b[0] - a[0], b[1] - a[1]);

/** Recogniser input width for a region: its aspect ratio at 48 px high, a multiple of 8, 48-640 px. */
export function recWidth(q: Quad): number {
  const ratio = dist(q.tl, q.tr) / Math.max(1, dist(q.tl, q.bl));
  return Math.min(REC_MAX_WIDTH, Math.max(REC_MIN_WIDTH, Math.ceil((REC_HEIGHT * ratio) / 8) * 8));
}

/**
 * The regions warped upright to 48 px high and batched, each left-aligned and padded on the right with 0 (mid
 * grey after normalisation, as PaddleOCR pads). Normalised to (v / 255 - 0.5) / 0.5.
 */
export function recInput(crop: RgbFrame, quads: readonly Quad[]): { data: Float32Array; width: number; widths: number[] } {
  const widths = quads.map(recWidth);
  const width = Math.max(...widths);
  const plane = REC_HEIGHT * width;
  const data = new Float32Array(quads.length * 3 * plane);
  quads.forEach((q, n) => {
    const w = widths[n]!;
    const ux = (q.tr[0] - q.tl[0]) / w;
    const uy = (q.tr[1] - q.tl[1]) / w;
    const vx = (q.bl[0] - q.tl[0]) / REC_HEIGHT;
    const vy = (q.bl[1] - q.tl[1]) / REC_HEIGHT;
    const base = n * 3 * plane;
    for (let y = 0; y < REC_HEIGHT; y++) {
      for (let x = 0; x < w; x++) {
        // Corner coordinates to pixel-centre coordinates: the quad's corners are pixel edges.
        const sx = q.tl[0] + (x + 0.5) * ux + (y + 0.5) * vx - 0.5;
        const sy = q.tl[1] + (x + 0.5) * uy + (y + 0.5) * vy - 0.5;
        const o = y * width + x;
        for (let c = 0; c < 3; c++) data[base + c * plane + o] = sample(crop, sx, sy, SRC_CHANNEL[c]!) / 127.5 - 1;
      }
    }
  });
  return { data, width, widths };
}
