// Boxes from camera pixels (the detector maps its boxes back to them, undoing its stretch or letterbox) to the
// pixels of a picture of the same view: the full-resolution frame decoded from the recording, or the analysed
// frame at the detector's input size.
import type { Letterbox } from '../../ingest/types.js';
import type { Box } from '../tracking/types.js';

/** Margin added around a vehicle box on every side, as a fraction of its size. */
export const VEHICLE_MARGIN = 0.15;

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The box in `picture` pixels. Without `letterbox` the picture shows the whole camera view stretched to its size
 * (the recording's native frame, or a stretched detector input); with it, the view scaled by `scale` and
 * offset by the pad (letterboxed detector input).
 */
export function boxIn(box: Box, camera: { width: number; height: number }, picture: { width: number; height: number }, letterbox?: Letterbox): Box {
  if (letterbox) {
    const { scale: k, pad_x, pad_y } = letterbox;
    return [box[0] * k + pad_x, box[1] * k + pad_y, box[2] * k + pad_x, box[3] * k + pad_y];
  }
  const sx = picture.width / camera.width;
  const sy = picture.height / camera.height;
  return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
}

/** A box (picture pixels) grown by `margin` of its size per side, in whole pixels, clamped to the picture (at least 2x2). */
export function regionAround(box: Box, picture: { width: number; height: number }, margin = VEHICLE_MARGIN): Region {
  const mw = (box[2] - box[0]) * margin;
  const mh = (box[3] - box[1]) * margin;
  const x1 = Math.max(0, Math.floor(box[0] - mw));
  const y1 = Math.max(0, Math.floor(box[1] - mh));
  const x2 = Math.min(picture.width, Math.ceil(box[2] + mw));
  const y2 = Math.min(picture.height, Math.ceil(box[3] + mh));
  const left = Math.min(x1, picture.width - 2);
  const top = Math.min(y1, picture.height - 2);
  return { left, top, width: Math.max(2, x2 - left), height: Math.max(2, y2 - top) };
}
