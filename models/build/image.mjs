// Small image helpers shared by convert.mjs and check-detections.mjs (JPEG decode, resize, NCHW).
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';

/** Decodes a JPEG file to { width, height, data: Uint8Array RGBA }. */
export function readJpeg(path) {
  const img = jpeg.decode(readFileSync(path), { useTArray: true, formatAsRGBA: true });
  return { width: img.width, height: img.height, data: img.data };
}

/**
 * Bilinear resize (half-pixel centres, like tf.image.resizeBilinear with halfPixelCenters=true)
 * of an RGBA image straight to the model input: float32 NCHW [1,3,size,size], RGB / 255.
 * The image is stretched (no letterbox): box x scales by width/size, y by height/size.
 */
export function toModelInput(img, size = 416) {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  const sx = w / size;
  const sy = h / size;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      const i00 = (y0 * w + x0) * 4;
      const i01 = (y0 * w + x1) * 4;
      const i10 = (y1 * w + x0) * 4;
      const i11 = (y1 * w + x1) * 4;
      for (let c = 0; c < 3; c++) {
        const top = data[i00 + c] * (1 - wx) + data[i01 + c] * wx;
        const bottom = data[i10 + c] * (1 - wx) + data[i11 + c] * wx;
        out[c * plane + y * size + x] = (top * (1 - wy) + bottom * wy) / 255;
      }
    }
  }
  return out;
}

/** Same as toModelInput for a raw RGB24 frame (e.g. from ffmpeg -pix_fmt rgb24). */
export function rgb24ToModelInput(buf, width, height, size = 416) {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < width * height; i++, j += 3) {
    rgba[i * 4] = buf[j];
    rgba[i * 4 + 1] = buf[j + 1];
    rgba[i * 4 + 2] = buf[j + 2];
    rgba[i * 4 + 3] = 255;
  }
  return toModelInput({ width, height, data: rgba }, size);
}
