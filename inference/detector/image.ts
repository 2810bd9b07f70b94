import type { DetectorConfig } from '../../config/schema/detector.js';
import { letterboxGeometry } from '../../ingest/ffmpeg-args.js';
import type { DetectorFrame } from './types.js';

/** Letterbox band grey, as the camera source pads (YOLO convention). */
const PAD = 114;

/**
 * Decodes an image file (JPEG, PNG…) with sharp, honouring EXIF orientation, and fits it to the model input the
 * way ffmpeg would: stretched, or letterboxed (scaled to fit, centred, grey bands).
 */
export async function loadImageFrame(
  path: string,
  size: { width: number; height: number },
  resize: DetectorConfig['resize'] = 'stretch',
): Promise<DetectorFrame> {
  const sharp = (await import('sharp')).default;
  const src = await sharp(path).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const sw = src.info.width;
  const sh = src.info.height;
  const raw = { raw: { width: sw, height: sh, channels: src.info.channels } };
  const { width: w, height: h } = size;
  if (resize === 'stretch') {
    const data = await sharp(src.data, raw).resize(w, h, { fit: 'fill' }).raw().toBuffer();
    return { data: new Uint8Array(data), width: w, height: h, source_width: sw, source_height: sh };
  }
  // The same geometry as the camera source's ffmpeg letterbox, grey 114 bands.
  const { scale, pad_x, pad_y, scaled_width: rw, scaled_height: rh } = letterboxGeometry(sw, sh, w, h);
  const data = await sharp(src.data, raw)
    .resize(rw, rh, { fit: 'fill' })
    .extend({ left: pad_x, right: w - rw - pad_x, top: pad_y, bottom: h - rh - pad_y, background: { r: PAD, g: PAD, b: PAD } })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data), width: w, height: h, source_width: sw, source_height: sh, letterbox: { scale, pad_x, pad_y } };
}
