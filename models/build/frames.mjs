// Model inputs for calibration and the int8 accuracy gate, decoded with ffmpeg exactly as the agent's camera
// source scales frames (inference/camera/ffmpeg-args.ts filterChain: bilinear scale to 416x416, rgb24; letterbox
// = scale to fit + grey 114 bands) and converted like inference/detector/preprocess.ts (RGB / 255, NCHW).
// Every list is in a fixed order (frame number, then file name), so calibration is deterministic.
import { execFileSync } from 'node:child_process';
import { basename, join } from 'node:path';

export const SIZE = 416;
const FRAME_BYTES = SIZE * SIZE * 3;
const PAD = '0x727272'; // 114, as LETTERBOX_PAD_RGB in inference/camera

/** The ffmpeg -vf chain of the camera source for one resize mode (plus optional extra filters first). */
export function filterChain(resize, extra = []) {
  const fit =
    resize === 'letterbox'
      ? [`scale=${SIZE}:${SIZE}:force_original_aspect_ratio=decrease:flags=bilinear`, 'format=rgb24', `pad=${SIZE}:${SIZE}:(ow-iw)/2:(oh-ih)/2:color=${PAD}`]
      : [`scale=${SIZE}:${SIZE}:flags=bilinear`, 'format=rgb24'];
  return [...extra, ...fit].join(',');
}

/** Decodes a file (clip or photo) to 416x416 RGB24 frames; `select` keeps frame numbers n where select(n). */
export function decodeFrames(file, { resize = 'stretch', hflip = false, select = () => true } = {}) {
  const buf = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-i', file, '-map', '0:v:0', '-vf', filterChain(resize, hflip ? ['hflip'] : []), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    { maxBuffer: 1 << 30 },
  );
  if (buf.length % FRAME_BYTES !== 0) throw new Error(`${file}: ffmpeg returned ${buf.length} bytes, not a whole number of ${SIZE}x${SIZE} frames`);
  const frames = [];
  for (let n = 0; n * FRAME_BYTES < buf.length; n++) {
    if (!select(n)) continue;
    const rgb = new Uint8Array(buf.buffer, buf.byteOffset + n * FRAME_BYTES, FRAME_BYTES);
    const tag = `${basename(file)}${hflip ? ' hflip' : ''} ${resize}${/\.(mp4|avi|mkv|ts)$/.test(file) ? ` #${n}` : ''}`;
    frames.push({ tag, rgb });
  }
  return frames;
}

/** Packed HWC RGB uint8 -> planar CHW float32 in 0..1 (inference/detector/preprocess.ts hwcToChw). */
export function toInput(rgb) {
  const plane = SIZE * SIZE;
  const out = new Float32Array(3 * plane);
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = rgb[p] / 255;
    out[plane + i] = rgb[p + 1] / 255;
    out[2 * plane + i] = rgb[p + 2] / 255;
  }
  return out;
}

/**
 * A session's feed for one 416x416 RGB24 frame, in the type its input takes: uint8 [1,H,W,3] bytes as they are
 * (nanodet-int8.onnx, byte-input.mjs) or float32 [1,3,H,W] RGB / 255 (nanodet.onnx); a candidate model
 * (candidates.mjs) also gets every class and `minScore`.
 */
export function feedsFor(ort, session, rgb, { minScore = 0.25 } = {}) {
  const m = session.inputMetadata[0];
  const image = m.type === 'uint8' ? new ort.Tensor('uint8', rgb.slice(), [1, SIZE, SIZE, 3]) : new ort.Tensor('float32', toInput(rgb), [1, 3, SIZE, SIZE]);
  return { [m.name]: image, ...candidateFeeds(ort, session, minScore) };
}

/** The extra feeds of a candidate model: `classes` (default all 80) and `minScore`. Empty for a dense model. */
export function candidateFeeds(ort, session, minScore, classes = Array.from({ length: 80 }, (_, i) => i)) {
  if (!session.inputNames.includes('classes')) return {};
  return {
    classes: new ort.Tensor('int64', BigInt64Array.from(classes, BigInt), [classes.length]),
    min_score: new ort.Tensor('float32', Float32Array.of(minScore), []),
  };
}

export function fixtures(repoRoot) {
  const photos = ['dog.jpg', 'person.jpg'].map((f) => join(repoRoot, 'tests', 'fixtures', 'photos', f));
  const clip = join(repoRoot, 'tests', 'fixtures', 'clips', 'vtest-20s.mp4');
  return { photos, clip };
}

/**
 * The calibration set (308 frames): the clip's 200 frames stretched, its even frames letterboxed (100), and the
 * two photos stretched and letterboxed, each also mirrored (8).
 */
export function calibrationFrames(repoRoot) {
  const { photos, clip } = fixtures(repoRoot);
  const frames = [...decodeFrames(clip), ...decodeFrames(clip, { resize: 'letterbox', select: (n) => n % 2 === 0 })];
  for (const p of photos) {
    for (const resize of ['stretch', 'letterbox']) {
      for (const hflip of [false, true]) frames.push(...decodeFrames(p, { resize, hflip }));
    }
  }
  return frames;
}

/**
 * The accuracy-gate set (304 frames): the photos stretched and letterboxed (4), the clip's 200 frames stretched
 * (also calibration frames) and its odd frames letterboxed (100, not seen by the calibration).
 */
export function evaluationFrames(repoRoot) {
  const { photos, clip } = fixtures(repoRoot);
  const frames = photos.flatMap((p) => [...decodeFrames(p), ...decodeFrames(p, { resize: 'letterbox' })]);
  frames.push(...decodeFrames(clip), ...decodeFrames(clip, { resize: 'letterbox', select: (n) => n % 2 === 1 }));
  return frames;
}
