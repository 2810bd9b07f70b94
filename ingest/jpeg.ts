// JPEGs of RGB frames, each by a short-lived ffmpeg (its mjpeg encoder): the agent's process never loads an image
// library for its evidence, so libvips' code and its allocations stay out of the steady state (the demo agent
// after 300 s: 210-211 MB with sharp, 191-192 MB with this, measured side by side). The price is ffmpeg's start,
// ~60-90 ms of CPU per image (niced): a demo package (4 JPEGs) is built in ~1.0 s instead of ~0.7 s.
import { spawn } from 'node:child_process';
import { AgentError } from '../core/errors.js';
import { EVIDENCE_NICE, renice } from './child.js';
import type { RgbFrame } from './frame.js';

/** JPEG_BAD_FRAME, JPEG_BAD_OPTION (checked before ffmpeg starts), FFMPEG_MISSING, JPEG_ENCODE_FAILED, JPEG_TIMEOUT. */
export class JpegError extends AgentError {}

export interface JpegRegion {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface JpegOptions {
  /** libjpeg-style quality 1-100 (what sharp / cjpeg take), mapped to ffmpeg's scale (jpegEncoding). */
  quality: number;
  /** Encodes only this part of the frame, frame pixels. */
  region?: JpegRegion;
  ffmpeg?: string;
  /** Killed and rejected after this long, ms. Default 10 000. */
  timeout_ms?: number;
}

/**
 * For each ffmpeg qscale q (index q − 1), the highest libjpeg quality it stands in for: the largest q whose
 * PSNR, over RGB and over luma alone, was at least libjpeg's (sharp 0.35, mozjpeg off) on each of seven pictures
 * (tests/fixtures/photos dog and person, two vtest-20s frames, three object crops at odd offsets), every quality
 * 1-100 tried. At the qualities the agent uses (RGB / luma PSNR, dB, and size against sharp):
 *   quality 80 → q4, 4:2:0: dog 34.6/36.9 → 36.0/38.4 (−10 % bytes), person 33.6/34.6 → 35.3/36.6 (−2 %),
 *     vtest 37.2/39.6 → 37.7/39.9 (−17 %), crops 34.8/36.9 → 35.5/37.8, 31.1/34.5 → 32.3/35.9, 36.4/37.9 → 36.7/38.5
 *     (−5 to −12 %); q5 falls short (dog 34.5 dB RGB, person 33.5).
 *   quality 90 → q2, 4:4:4: dog 38.5/43.3 → 43.9/45.9 (+11 %), person 38.5/41.0 → 43.2/44.6 (+7 %),
 *     vtest 39.8/43.1 → 42.6/44.0 (+9 %), crops 37.6/40.5 → 40.8/42.3, 33.4/38.3 → 39.2/40.9, 38.9/41.1 → 41.3/42.7
 *     (+12 to +31 %); q3 matches RGB but not luma (dog 42.2 dB, vtest 41.7).
 * q1 is ffmpeg's finest: from quality 97 on (libjpeg's tables near 1) it falls short of libjpeg.
 */
const HIGHEST_QUALITY = [95, 91, 86, 80, 75, 68, 60, 52, 45, 40, 35, 31, 28, 25, 22, 20, 19, 17, 16, 15, 14, 13, 13, 12, 12, 11, 11, 10, 10, 10, 9];

/**
 * ffmpeg's qscale and chroma format for a libjpeg quality. Below 90, 4:2:0 like libjpeg and sharp (sharp keeps
 * 4:2:0 at 90 and above too). From 90, 4:4:4: a caller asking that much wants detail (vehicle and plate crops,
 * the red-light stills whose lamps are a few pixels wide), and 4:2:0 halves the colour resolution, the largest
 * error left at 90 (sharp: RGB PSNR 2-5 dB under luma); 4:4:4 costs 7-31 % more bytes than sharp's file
 * (4:2:0 at q2 would also match sharp, at −10 to +2 % of its bytes).
 */
export function jpegEncoding(quality: number): { qscale: number; pix_fmt: 'yuvj420p' | 'yuvj444p' } {
  let q = HIGHEST_QUALITY.length;
  while (q > 1 && HIGHEST_QUALITY[q - 1]! < quality) q--;
  return { qscale: q, pix_fmt: quality >= 90 ? 'yuvj444p' : 'yuvj420p' };
}

const SOI = 0xffd8;

/**
 * Encodes the frame (or its `region`) as a JPEG: raw rgb24 into ffmpeg's stdin, the JPEG from its stdout.
 * Rejects with a JpegError; a frame or region that cannot be encoded is refused before ffmpeg starts.
 */
export async function encodeJpeg(frame: RgbFrame, opts: JpegOptions): Promise<Buffer> {
  const { width, height } = frame;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new JpegError('JPEG_BAD_FRAME', `bad frame size ${width}x${height}`);
  const bytes = width * height * 3;
  if (frame.data.length < bytes) throw new JpegError('JPEG_BAD_FRAME', `frame buffer of ${frame.data.length} bytes is too small for ${width}x${height} RGB (${bytes})`);
  if (!(Number.isInteger(opts.quality) && opts.quality >= 1 && opts.quality <= 100)) throw new JpegError('JPEG_BAD_OPTION', `JPEG quality must be a whole number 1-100 (got ${opts.quality})`);
  const r = opts.region;
  if (r) {
    const whole = [r.left, r.top, r.width, r.height].every(Number.isInteger);
    if (!whole || r.left < 0 || r.top < 0 || r.width < 1 || r.height < 1 || r.left + r.width > width || r.top + r.height > height) {
      throw new JpegError('JPEG_BAD_FRAME', `region ${r.width}x${r.height} at ${r.left},${r.top} is not within the ${width}x${height} frame`);
    }
  }
  const { qscale, pix_fmt } = jpegEncoding(opts.quality);
  const ffmpeg = opts.ffmpeg ?? 'ffmpeg';
  const args = ['-hide_banner', '-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-i', 'pipe:0'];
  if (r) args.push('-vf', `crop=${r.width}:${r.height}:${r.left}:${r.top}`);
  // -qmin 1: without it ffmpeg raises q:v 1 to 2.
  args.push('-threads', '1', '-pix_fmt', pix_fmt, '-qmin', '1', '-q:v', String(qscale), '-frames:v', '1', '-f', 'mjpeg', 'pipe:1');
  // A JPEG larger than its raw pixels plus headers is no JPEG of them.
  const max_bytes = (r ? r.width * r.height : width * height) * 3 + 1024 * 1024;
  const timeout_ms = opts.timeout_ms ?? 10_000;

  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    renice(child, EVIDENCE_NICE);
    const out: Buffer[] = [];
    let got = 0;
    let stderr = '';
    let settled = false;
    const finish = (err: JpegError | undefined, jpeg?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(err);
      } else resolve(jpeg!);
    };
    const timer = setTimeout(() => finish(new JpegError('JPEG_TIMEOUT', `${ffmpeg} did not encode the ${width}x${height} JPEG within ${timeout_ms} ms`)), timeout_ms);
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish(new JpegError('FFMPEG_MISSING', `cannot run ${ffmpeg}: ${e.message}`, { cause: e }));
      else finish(new JpegError('JPEG_ENCODE_FAILED', `${ffmpeg}: ${e.message}`, { cause: e }));
    });
    // ffmpeg may die before it has read the frame: the write then fails with EPIPE, and its exit says why.
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      got += d.length;
      if (got > max_bytes) finish(new JpegError('JPEG_ENCODE_FAILED', `${ffmpeg} wrote more than ${max_bytes} bytes for a ${width}x${height} JPEG`));
      else out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('close', (code, signal) => {
      const jpeg = Buffer.concat(out);
      if (code === 0 && jpeg.length > 2 && jpeg.readUInt16BE(0) === SOI) return finish(undefined, jpeg);
      const last = stderr.trim().split('\n').pop() ?? '';
      const why = code === 0 ? 'wrote no JPEG' : signal ? `was killed (${signal})` : `exited ${code}`;
      finish(new JpegError('JPEG_ENCODE_FAILED', `${ffmpeg} ${why}${last ? `: ${last}` : ''}`));
    });
    child.stdin.end(frame.data.subarray(0, bytes));
  });
}
