/**
 * A decoded picture as every stage passes it on: packed RGB, 3 bytes per pixel, rows without padding
 * (`data` holds width * height * 3 bytes). The camera's frames, the detector's input, the pixels analytics
 * takes evidence from and the status page's latest frame are all this shape.
 */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}
