// The clip reader (readClip) on a real ffmpeg: every frame of a generated clip with its own timestamps, played
// several times back to back (`passes`, the pipeline benchmark's steady state) with time still rising, frames
// decoded ahead of a slow consumer kept whole and in order, and a bad option refused before ffmpeg starts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIP_READ_AHEAD_FRAMES, clipSource, readClip } from '../../../ingest/clip.js';
import { FramePool } from '../../../ingest/frames.js';
import type { Frame } from '../../../ingest/types.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const W = 192;
const H = 144; // a frame (82 944 bytes) larger than one 64 KiB pipe read, so read-ahead is counted in frames
const FPS = 10;
const FRAMES = 12;
const target = { width: W, height: H, resize: 'stretch' as const };
let clip: string;

beforeAll(() => {
  clip = join(makeTempDir('clip-reader'), 'count.mp4');
  // Each frame's brightness rises with its number: the order of the frames read can be checked.
  const r = spawnSync('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', `color=c=black:s=${W}x${H}:r=${FPS}:d=${FRAMES / FPS}`,
    '-vf', 'geq=lum=N*18:cb=128:cr=128', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-g', '4', clip,
  ]);
  expect(r.status, r.stderr?.toString()).toBe(0);
});

async function readAll(passes: number | undefined, slow_ms = 0): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const f of readClip(clip, target, { source: { width: W, height: H }, start_ms: 0, ...(passes ? { passes } : {}) })) {
    frames.push({ ...f, data: Uint8Array.from(f.data) });
    if (slow_ms) await new Promise((r) => setTimeout(r, slow_ms));
  }
  return frames;
}

const brightness = (f: Frame) => f.data.reduce((a, b) => a + b, 0) / f.data.length;

describe('readClip', () => {
  it('reads every frame once, in order, with the clip’s timestamps', async () => {
    const frames = await readAll(undefined);
    expect(frames).toHaveLength(FRAMES);
    expect(frames.map((f) => Math.round(f.mono_ms))).toEqual(Array.from({ length: FRAMES }, (_, i) => i * (1000 / FPS)));
    const lum = frames.map(brightness);
    for (let i = 1; i < FRAMES; i++) expect(lum[i]!).toBeGreaterThan(lum[i - 1]!);
    expect(frames.every((f) => f.data.length === W * H * 3)).toBe(true);
  });

  it('plays the clip `passes` times with time still rising across the joins', async () => {
    const frames = await readAll(3);
    expect(frames).toHaveLength(3 * FRAMES);
    const t = frames.map((f) => f.mono_ms);
    for (let i = 1; i < t.length; i++) expect(t[i]!).toBeGreaterThan(t[i - 1]!);
    // The second pass shows the first pass's pictures again.
    expect(brightness(frames[FRAMES]!)).toBeCloseTo(brightness(frames[0]!), 0);
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 3 * FRAMES }, (_, i) => i + 1));
  });

  it('keeps frames decoded ahead of a slow consumer whole and in order', async () => {
    const fast = await readAll(undefined);
    const slow = await readAll(undefined, 40);
    expect(slow.map((f) => f.mono_ms)).toEqual(fast.map((f) => f.mono_ms));
    slow.forEach((f, i) => expect(Buffer.compare(Buffer.from(f.data), Buffer.from(fast[i]!.data))).toBe(0));
  });

  it('refuses a pass count that is not a whole number ≥ 1', async () => {
    await expect(readAll(0.5)).rejects.toMatchObject({ code: 'CLIP_BAD_OPTION' });
    await expect(readAll(-1)).rejects.toMatchObject({ code: 'CLIP_BAD_OPTION' });
  });

  it('clipSource reuses released buffers; a pool of another frame size is refused', async () => {
    const reader = clipSource(clip, target, { source: { width: W, height: H }, start_ms: 0 });
    const buffers = new Set<ArrayBufferLike>();
    let n = 0;
    for await (const f of reader.frames()) {
      buffers.add(f.data.buffer);
      reader.release(f);
      n += 1;
    }
    expect(n).toBe(FRAMES);
    expect(buffers.size).toBeLessThanOrEqual(CLIP_READ_AHEAD_FRAMES + 2);
    const wrong = readClip(clip, target, { source: { width: W, height: H }, pool: new FramePool(W * H * 3 + 1, 2) });
    await expect(wrong.next()).rejects.toMatchObject({ code: 'CLIP_BAD_OPTION' });
  });
});
