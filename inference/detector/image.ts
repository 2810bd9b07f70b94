import type { DetectorConfig } from '../../config/schema/detector.js';
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
  // The camera source's letterbox (inference/camera/ffmpeg-args.ts letterboxGeometry, ffmpeg's
  // scale=…:force_original_aspect_ratio=decrease,pad=…): scaled size rounded, offsets truncated, grey 114 bands.
  const scale = Math.min(w / sw, h / sh);
  const rw = Math.min(w, Math.round((h * sw) / sh));
  const rh = Math.min(h, Math.round((w * sh) / sw));
  const pad_x = Math.trunc((w - rw) / 2);
  const pad_y = Math.trunc((h - rh) / 2);
  const data = await sharp(src.data, raw)
    .resize(rw, rh, { fit: 'fill' })
    .extend({ left: pad_x, right: w - rw - pad_x, top: pad_y, bottom: h - rh - pad_y, background: { r: PAD, g: PAD, b: PAD } })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data), width: w, height: h, source_width: sw, source_height: sh, letterbox: { scale, pad_x, pad_y } };
}
