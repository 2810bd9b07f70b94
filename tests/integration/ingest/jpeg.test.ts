// encodeJpeg with real ffmpeg: the JPEG's size and chroma format, crops that show the right part of the frame,
// quality against libjpeg's (sharp) on the test photos and a clip frame, and the failures: a frame or region
// refused before ffmpeg starts, ffmpeg missing, dying early, writing too much, hanging.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbFrame } from '../../../ingest/frame.js';
import { encodeJpeg, jpegEncoding } from '../../../ingest/jpeg.js';
import { DEMO_CLIP, REPO_ROOT } from '../../../testkit/clips.js';
import { isAlive, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const execFileP = promisify(execFile);
const dir = makeTempDir('jpeg');

async function photo(name: string): Promise<RgbFrame> {
  const { data, info } = await sharp(path.join(REPO_ROOT, 'tests', 'fixtures', 'photos', name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function clipFrame(t_s: number): Promise<RgbFrame> {
  const args = ['-v', 'error', '-ss', String(t_s), '-i', DEMO_CLIP, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const { stdout } = await execFileP('ffmpeg', args, { encoding: 'buffer', maxBuffer: 1 << 24 });
  return { data: stdout, width: 768, height: 576 };
}

/** The frame's size and each component's sampling factors (h, v), from the JPEG's SOF marker. */
function sof(jpeg: Buffer): { width: number; height: number; sampling: Array<[number, number]> } {
  expect(jpeg.readUInt16BE(0)).toBe(0xffd8);
  for (let i = 2; i + 4 <= jpeg.length; ) {
    const marker = jpeg[i + 1]!;
    if (marker >= 0xc0 && marker <= 0xc2) {
      const n = jpeg[i + 9]!;
      const sampling = Array.from({ length: n }, (_, k): [number, number] => [jpeg[i + 11 + 3 * k]! >> 4, jpeg[i + 11 + 3 * k]! & 15]);
      return { height: jpeg.readUInt16BE(i + 5), width: jpeg.readUInt16BE(i + 7), sampling };
    }
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error('no SOF marker');
}

/** PSNR of the decoded JPEG against the frame, dB: over the RGB samples and over luma. */
async function psnr(frame: RgbFrame, jpeg: Buffer): Promise<{ rgb: number; luma: number }> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([frame.width, frame.height, 3]);
  let se = 0;
  let sy = 0;
  for (let i = 0; i < frame.width * frame.height * 3; i += 3) {
    const d = [frame.data[i]! - data[i]!, frame.data[i + 1]! - data[i + 1]!, frame.data[i + 2]! - data[i + 2]!] as const;
    se += d[0] ** 2 + d[1] ** 2 + d[2] ** 2;
    sy += (0.299 * d[0] + 0.587 * d[1] + 0.114 * d[2]) ** 2;
  }
  const px = frame.width * frame.height;
  return { rgb: 10 * Math.log10((255 * 255 * 3 * px) / se), luma: 10 * Math.log10((255 * 255 * px) / sy) };
}

/** An executable shell script standing in for ffmpeg. */
function fakeFfmpeg(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** 200x120 in four colours: red, green (top), blue, yellow (bottom). */
function quadrants(): RgbFrame {
  const width = 200;
  const height = 120;
  const data = Buffer.alloc(width * height * 3);
  const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(colours[(y < 60 ? 0 : 2) + (x < 100 ? 0 : 1)]!, (y * width + x) * 3);
  return { data, width, height };
}

describe('encodeJpeg', () => {
  it('encodes the frame: its size, 4:2:0 below quality 90, full chroma from 90, close to the pixels', async () => {
    const frame = await clipFrame(10);
    const low = await encodeJpeg(frame, { quality: 80 });
    expect(sof(low)).toEqual({ width: 768, height: 576, sampling: [[2, 2], [1, 1], [1, 1]] });
    const high = await encodeJpeg(frame, { quality: 90 });
    const s = sof(high);
    expect([s.width, s.height]).toEqual([768, 576]);
    // Every component sampled alike: no chroma subsampling (ffmpeg writes 1x2 for all three).
    expect(new Set(s.sampling.map((f) => f.join('x'))).size).toBe(1);
    expect((await psnr(frame, low)).rgb).toBeGreaterThan(35);
  });

  it('a region gives that part of the frame, at its size', async () => {
    const frame = quadrants();
    const cases = [
      { region: { left: 3, top: 5, width: 91, height: 51 }, colour: [255, 0, 0] },
      { region: { left: 107, top: 9, width: 77, height: 37 }, colour: [0, 255, 0] },
      { region: { left: 11, top: 67, width: 45, height: 49 }, colour: [0, 0, 255] },
      { region: { left: 150, top: 61, width: 50, height: 59 }, colour: [255, 255, 0] },
    ];
    for (const { region, colour } of cases) {
      for (const quality of [80, 90]) {
        const jpeg = await encodeJpeg(frame, { quality, region });
        const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height]).toEqual([region.width, region.height]);
        const mean = [0, 1, 2].map((c) => {
          let sum = 0;
          for (let i = c; i < data.length; i += 3) sum += data[i]!;
          return sum / (data.length / 3);
        });
        mean.forEach((m, c) => expect(Math.abs(m - colour[c]!), `channel ${c} of ${JSON.stringify(region)} at ${quality}`).toBeLessThan(8));
      }
    }
  });

  it('higher quality: a larger file and a higher PSNR', async () => {
    const frame = await photo('dog.jpg');
    let last = { bytes: 0, rgb: 0 };
    for (const quality of [30, 60, 80, 90, 95]) {
      const jpeg = await encodeJpeg(frame, { quality });
      const p = await psnr(frame, jpeg);
      expect(jpeg.length, `quality ${quality}`).toBeGreaterThan(last.bytes);
      expect(p.rgb, `quality ${quality}`).toBeGreaterThan(last.rgb);
      last = { bytes: jpeg.length, rgb: p.rgb };
    }
  });

  it('at the qualities the agent uses, at least the PSNR of libjpeg (sharp) at the same quality', async () => {
    const frames = { dog: await photo('dog.jpg'), person: await photo('person.jpg'), vtest: await clipFrame(10) };
    for (const [name, frame] of Object.entries(frames)) {
      for (const quality of [80, 90]) {
        const ours = await psnr(frame, await encodeJpeg(frame, { quality }));
        const ref = await psnr(frame, await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality, mozjpeg: false }).toBuffer());
        expect(ours.rgb, `${name} at ${quality}, RGB`).toBeGreaterThanOrEqual(ref.rgb);
        expect(ours.luma, `${name} at ${quality}, luma`).toBeGreaterThanOrEqual(ref.luma);
      }
    }
    expect(jpegEncoding(80)).toEqual({ qscale: 4, pix_fmt: 'yuvj420p' });
    expect(jpegEncoding(90)).toEqual({ qscale: 2, pix_fmt: 'yuvj444p' });
  });

  it('refuses a short buffer, a region outside the frame and a bad quality before starting ffmpeg', async () => {
    const mark = path.join(dir, 'started');
    const ffmpeg = fakeFfmpeg('marking-ffmpeg', `touch '${mark}'\nexec ffmpeg "$@"`);
    const frame = quadrants();
    const short = { ...frame, data: frame.data.subarray(0, frame.data.length - 1) };
    await expect(encodeJpeg(short, { quality: 80, ffmpeg })).rejects.toMatchObject({ code: 'JPEG_BAD_FRAME' });
    for (const region of [
      { left: 150, top: 0, width: 51, height: 10 },
      { left: 0, top: 100, width: 10, height: 21 },
      { left: -1, top: 0, width: 10, height: 10 },
      { left: 0, top: 0, width: 0, height: 10 },
      { left: 0.5, top: 0, width: 10, height: 10 },
    ]) {
      await expect(encodeJpeg(frame, { quality: 80, region, ffmpeg }), JSON.stringify(region)).rejects.toMatchObject({ code: 'JPEG_BAD_FRAME' });
    }
    await expect(encodeJpeg(frame, { quality: 0, ffmpeg })).rejects.toMatchObject({ code: 'JPEG_BAD_OPTION' });
    expect(fs.existsSync(mark)).toBe(false);
    // The same stand-in does start on a good request (the check above can fail).
    expect(sof(await encodeJpeg(frame, { quality: 80, region: { left: 150, top: 0, width: 50, height: 10 }, ffmpeg }))).toMatchObject({ width: 50, height: 10 });
    expect(fs.existsSync(mark)).toBe(true);
  });

  it('an ffmpeg that cannot be run: FFMPEG_MISSING', async () => {
    await expect(encodeJpeg(quadrants(), { quality: 80, ffmpeg: path.join(dir, 'no-such-ffmpeg') })).rejects.toMatchObject({ code: 'FFMPEG_MISSING' });
  });

  it('an ffmpeg that dies before reading the frame: JPEG_ENCODE_FAILED with its last stderr line, no stray EPIPE', async () => {
    const ffmpeg = fakeFfmpeg('dying-ffmpeg', 'echo "first line" >&2\necho "Invalid argument: the last words" >&2\nexit 1');
    // 12 MB: far more than a pipe holds, so the write meets the closed pipe.
    const big = { data: Buffer.alloc(2000 * 2000 * 3, 128), width: 2000, height: 2000 };
    const err = await encodeJpeg(big, { quality: 80, ffmpeg }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'JPEG_ENCODE_FAILED' });
    expect((err as Error).message).toMatch(/exited 1: Invalid argument: the last words$/);
  });

  it('an ffmpeg that writes more than a JPEG of the frame can be: JPEG_ENCODE_FAILED', async () => {
    const ffmpeg = fakeFfmpeg('flooding-ffmpeg', 'cat >/dev/null\nprintf "\\377\\330"\nexec head -c 3000000 /dev/zero');
    const err = await encodeJpeg(quadrants(), { quality: 80, ffmpeg }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'JPEG_ENCODE_FAILED' });
    expect((err as Error).message).toMatch(/more than \d+ bytes/);
  });

  it('an ffmpeg that hangs: JPEG_TIMEOUT, and it is killed', async () => {
    const pidFile = path.join(dir, 'hanging.pid');
    const ffmpeg = fakeFfmpeg('hanging-ffmpeg', `echo $$ > '${pidFile}'\nexec sleep 30`);
    const t0 = performance.now();
    await expect(encodeJpeg(quadrants(), { quality: 80, ffmpeg, timeout_ms: 300 })).rejects.toMatchObject({ code: 'JPEG_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(3_000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(pid), { message: 'the hanging ffmpeg killed' });
  });
});
