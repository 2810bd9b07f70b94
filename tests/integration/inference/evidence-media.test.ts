// The evidence media helpers against real ffmpeg/ffprobe and against tools that never stop writing: full-resolution
// frames land in one buffer of exactly their size, and no tool's output is read without a bound.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, probeFrames, type MediaInput } from '../../../inference/evidence/media.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';

let dir: string;
let endless: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'evidence-media-'));
  // Stands in for ffmpeg or ffprobe: writes zeros to stdout until it is killed.
  endless = join(dir, 'endless');
  writeFileSync(endless, '#!/bin/sh\nexec cat /dev/zero\n');
  chmodSync(endless, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const clip: MediaInput = { kind: 'file', path: DEMO_CLIP, seekable: true };

describe('evidence media', () => {
  it('decodes the frames asked for into one buffer of exactly their size', async () => {
    const idx = await probeFrames(clip, { from_s: 4, to_s: 6 });
    const times = [idx.times[10]!, idx.times[20]!, idx.times[30]!];
    const frames = await decodeFrames(clip, times, idx);
    const bytes = idx.width * idx.height * 3;
    expect([...frames.keys()]).toEqual(times);
    const buffers = new Set([...frames.values()].map((f) => f.data.buffer));
    expect(buffers.size).toBe(1);
    expect([...buffers][0]!.byteLength).toBe(3 * bytes);
    // Different frames of a moving scene: not one frame three times, not empty.
    const [a, b] = [...frames.values()];
    expect(Buffer.compare(Buffer.from(a!.data), Buffer.from(b!.data))).not.toBe(0);
    expect(a!.data.some((v) => v > 0)).toBe(true);
  });

  it('stops a decoder that writes more than the frames asked for', async () => {
    const t0 = performance.now();
    await expect(decodeFrames(clip, [1, 2], { width: 64, height: 48 }, endless)).rejects.toMatchObject({ code: 'EVIDENCE_MEDIA' });
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('stops a prober that writes without end', async () => {
    await expect(probeFrames(clip, { from_s: 0, to_s: 1 }, endless)).rejects.toThrow(/wrote more than \d+ bytes/);
  });
});
