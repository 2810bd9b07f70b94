import type { RgbFrame } from '../../ingest/frame.js';

/**
 * The part of `frame` under `box` ([x1, y1, x2, y2] in the frame's own pixels), grown by `margin` of the box
 * size on every side and clipped to the frame: a recognizer's input. A copy; null when nothing is left.
 */
export function cropRgb(frame: RgbFrame, box: readonly [number, number, number, number], margin = 0.1): RgbFrame | null {
  const [x1, y1, x2, y2] = box;
  const mx = (x2 - x1) * margin;
  const my = (y2 - y1) * margin;
  const left = Math.max(0, Math.floor(x1 - mx));
  const top = Math.max(0, Math.floor(y1 - my));
  const right = Math.min(frame.width, Math.ceil(x2 + mx));
  const bottom = Math.min(frame.height, Math.ceil(y2 + my));
  const width = right - left;
  const height = bottom - top;
  if (!(width > 0 && height > 0)) return null;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const src = ((top + y) * frame.width + left) * 3;
    data.set(frame.data.subarray(src, src + width * 3), y * width * 3);
  }
  return { data, width, height };
}
