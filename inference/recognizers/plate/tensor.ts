/**
 * Pixels to model inputs, in PaddleOCR's conventions: planar float32, channels in BGR order (PaddleOCR reads
 * images with OpenCV, and its models were trained that way), bilinear sampling.
 */
import type { Sharp } from 'sharp';
import { loadSharp } from '../../../core/sharp.js';
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

/**
 * The crop scaled so its longer side is `side` pixels (enlarged at most `max_upscale` times), each side rounded
 * to a multiple of 32 (the DB network's stride), ImageNet-normalised.
 *
 * libvips does the per-pixel work: the agent runs under V8's lite mode (core/runtime-env.ts), where the same
 * loops in JavaScript took ~85 ms a crop, against ~4 ms here (docs/performance.md). A linear resize with an
 * opaque alpha band added, then per tensor channel a recombination matrix that scales its source channel and
 * adds the offset through the alpha band (sharp's linear() would round its result back to bytes; recomb keeps
 * floats), and that band extracted as float32.
 */
export async function detInput(crop: RgbFrame, side: number, maxUpscale: number): Promise<DetInput> {
  const scale = Math.min(side / Math.max(crop.width, crop.height), maxUpscale);
  const width = Math.max(32, Math.round((crop.width * scale) / 32) * 32);
  const height = Math.max(32, Math.round((crop.height * scale) / 32) * 32);
  const sharp = await loadSharp();
  const rgba = await sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .ensureAlpha(1)
    .raw()
    .toBuffer();
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  const planes = await Promise.all(
    SRC_CHANNEL.map((ch, c) => {
      const rows = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
      rows[ch]![ch] = 1 / (255 * DET_STD[c]!);
      rows[ch]![3] = -DET_MEAN[c]! / DET_STD[c]! / 255; // times the alpha band's 255
      return sharp(rgba, { raw: { width, height, channels: 4 } })
        .recomb(rows as Parameters<Sharp['recomb']>[0])
        .extractChannel(ch)
        .raw({ depth: 'float' })
        .toBuffer();
    }),
  );
  // A Buffer may sit at any offset of a shared pool: copy its bytes rather than view them as floats.
  planes.forEach((b, c) => new Uint8Array(data.buffer, c * plane * 4, plane * 4).set(b.subarray(0, plane * 4)));
  return { data, width, height, sx: width / crop.width, sy: height / crop.height };
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
 * grey after normalisation, as PaddleOCR pads). Normalised to (v / 255 - 0.5) / 0.5; bilinear, edges clamped.
 *
 * One flat loop with no calls, all three channels from the same four neighbours: under V8's lite mode (no
 * inlining) a sampling function per channel cost ~17 ms a crop.
 */
export function recInput(crop: RgbFrame, quads: readonly Quad[]): { data: Float32Array; width: number; widths: number[] } {
  const { data: src, width: cw, height: ch } = crop;
  const widths = quads.map(recWidth);
  const width = Math.max(...widths);
  const plane = REC_HEIGHT * width;
  const data = new Float32Array(quads.length * 3 * plane);
  const xMax = cw - 1;
  const yMax = ch - 1;
  const k = 1 / 127.5;
  for (let n = 0; n < quads.length; n++) {
    const q = quads[n]!;
    const w = widths[n]!;
    const ux = (q.tr[0] - q.tl[0]) / w;
    const uy = (q.tr[1] - q.tl[1]) / w;
    const vx = (q.bl[0] - q.tl[0]) / REC_HEIGHT;
    const vy = (q.bl[1] - q.tl[1]) / REC_HEIGHT;
    // Tensor channels are BGR: B plane first.
    const bBase = n * 3 * plane;
    const gBase = bBase + plane;
    const rBase = gBase + plane;
    for (let y = 0; y < REC_HEIGHT; y++) {
      // Corner coordinates to pixel-centre coordinates: the quad's corners are pixel edges.
      const rowX = q.tl[0] + 0.5 * ux + (y + 0.5) * vx - 0.5;
      const rowY = q.tl[1] + 0.5 * uy + (y + 0.5) * vy - 0.5;
      const out = y * width;
      for (let x = 0; x < w; x++) {
        let sx = rowX + x * ux;
        let sy = rowY + x * uy;
        sx = sx < 0 ? 0 : sx > xMax ? xMax : sx;
        sy = sy < 0 ? 0 : sy > yMax ? yMax : sy;
        const x0 = sx | 0; // sx >= 0 here: truncation is floor, and cheaper than a call
        const y0 = sy | 0;
        const fx = sx - x0;
        const fy = sy - y0;
        const dx = x0 < xMax ? 3 : 0;
        const dy = y0 < yMax ? cw * 3 : 0;
        const a = (y0 * cw + x0) * 3;
        const b = a + dx;
        const c = a + dy;
        const d = c + dx;
        const wa = (1 - fx) * (1 - fy);
        const wb = fx * (1 - fy);
        const wc = (1 - fx) * fy;
        const wd = fx * fy;
        const o = out + x;
        data[rBase + o] = (src[a]! * wa + src[b]! * wb + src[c]! * wc + src[d]! * wd) * k - 1;
        data[gBase + o] = (src[a + 1]! * wa + src[b + 1]! * wb + src[c + 1]! * wc + src[d + 1]! * wd) * k - 1;
        data[bBase + o] = (src[a + 2]! * wa + src[b + 2]! * wb + src[c + 2]! * wc + src[d + 2]! * wd) * k - 1;
      }
    }
  }
  return { data, width, widths };
}
