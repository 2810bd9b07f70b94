// Motion gating: a small grey thumbnail of each frame compared with the one of the last frame let through.

export interface MotionOptions {
  /** Fraction of thumbnail pixels that must change for motion, 0-1. */
  threshold: number;
  /** Grey-level change (0-255) above which a thumbnail pixel counts as changed. */
  pixel_delta: number;
  /** Let a frame through at least this often, ms. */
  force_interval_ms: number;
}

export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const THUMB_W = 64;
export const THUMB_H = 48;

/**
 * Decides per frame whether the detector should see it. The reference is the thumbnail of the last frame
 * let through (not simply the previous frame), so slow movement accumulates until it counts. Costs one pass
 * over 64×48 cells of 2×2 RGB samples: a few microseconds per frame.
 */
export class MotionGate {
  private readonly offsets: Int32Array;
  private readonly stride: number;
  private ref: Uint8Array;
  private cur: Uint8Array;
  private hasRef = false;
  private lastPassMs = Number.NEGATIVE_INFINITY;
  /** Changed fraction measured on the last check (0 when forced without a reference). */
  lastChanged = 0;
  lastForced = false;

  constructor(
    private readonly opts: MotionOptions,
    frameWidth: number,
    frameHeight: number,
    region: Region = { x: 0, y: 0, width: frameWidth, height: frameHeight },
  ) {
    // Byte offset of the top-left of each cell's 2×2 sample block, inside `region` (letterbox: the picture).
    const stride = frameWidth * 3;
    this.offsets = new Int32Array(THUMB_W * THUMB_H);
    for (let gy = 0; gy < THUMB_H; gy++) {
      const y = Math.min(frameHeight - 2, region.y + Math.floor(((gy + 0.5) * region.height) / THUMB_H));
      for (let gx = 0; gx < THUMB_W; gx++) {
        const x = Math.min(frameWidth - 2, region.x + Math.floor(((gx + 0.5) * region.width) / THUMB_W));
        this.offsets[gy * THUMB_W + gx] = Math.max(0, y) * stride + Math.max(0, x) * 3;
      }
    }
    this.stride = stride;
    this.ref = new Uint8Array(THUMB_W * THUMB_H);
    this.cur = new Uint8Array(THUMB_W * THUMB_H);
  }

  /** True when the frame should go to the detector (motion, first frame, or forced by the interval). */
  check(rgb: Uint8Array, nowMs: number): boolean {
    const { offsets, cur, ref, stride } = this;
    const n = offsets.length;
    const delta = this.opts.pixel_delta;
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const o = offsets[i]!;
      const p = o + stride;
      // BT.601 luma in 8.8 fixed point, summed over 2×2 pixels: (77 R + 150 G + 29 B) / 256 / 4.
      const sum =
        77 * (rgb[o]! + rgb[o + 3]! + rgb[p]! + rgb[p + 3]!) +
        150 * (rgb[o + 1]! + rgb[o + 4]! + rgb[p + 1]! + rgb[p + 4]!) +
        29 * (rgb[o + 2]! + rgb[o + 5]! + rgb[p + 2]! + rgb[p + 5]!);
      const g = sum >> 10;
      cur[i] = g;
      const d = g - ref[i]!;
      if (d > delta || d < -delta) changed++;
    }
    this.lastChanged = this.hasRef ? changed / n : 1;
    const forced = nowMs - this.lastPassMs >= this.opts.force_interval_ms;
    const pass = !this.hasRef || forced || this.lastChanged > this.opts.threshold;
    this.lastForced = pass && forced && this.hasRef && this.lastChanged <= this.opts.threshold;
    if (pass) {
      this.ref = cur;
      this.cur = ref;
      this.hasRef = true;
      this.lastPassMs = nowMs;
    }
    return pass;
  }
}
