import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { EventDraftSchema, uuidv7, type EventDraft, type EventOf, type EvidenceImages } from '../../../contract/event.js';
import { AnalyticsSchema, CameraSchema } from '../../../config/schema/index.js';
import { CameraAnalytics } from '../../../inference/analytics/engine.js';
import { cropRegion, EvidenceStore } from '../../../inference/analytics/evidence.js';
import { linearPath, prng, simulate } from '../../../testkit/synthetic-scenes.js';
import type { RgbFrame } from '../../../ingest/frame.js';
import { encodeJpeg } from '../../../ingest/jpeg.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'roadside-evidence-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An RGB frame of seeded noise (compresses badly: predictable, sizeable JPEGs). */
function noiseFrame(width: number, height: number, seed: number): RgbFrame {
  const rand = prng(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { data, width, height };
}

describe('evidence store', () => {
  it('writes frame and crop JPEGs whose sha256 is in the result, crop mapped from camera pixels', async () => {
    const dir = tempDir();
    const store = new EvidenceStore(dir, 10 * 1024 * 1024);
    const frame = noiseFrame(320, 180, 1);
    const name = `${uuidv7()}_cam1_wrong_way`;
    const original = Buffer.from(frame.data);
    const job = store.capture({ frame, box: [100, 50, 300, 200], camera: { width: 640, height: 360 }, name })!;
    // The caller may reuse its buffer at once: the store copied it.
    frame.data.fill(0);
    const ev = await job;
    expect(ev.frame_file).toBe(`${name}-frame.jpg`);
    expect(ev.crop_file).toBe(`${name}-crop.jpg`);
    const frameBytes = readFileSync(join(dir, ev.frame_file));
    const cropBytes = readFileSync(join(dir, ev.crop_file));
    expect(sha(frameBytes)).toBe(ev.frame_sha256);
    expect(sha(cropBytes)).toBe(ev.crop_sha256);
    // The frame as it was at the capture (not the reused buffer), at the default quality 80.
    expect(sha(await encodeJpeg({ data: original, width: 320, height: 180 }, { quality: 80 }))).toBe(ev.frame_sha256);
    const meta = await sharp(cropBytes).metadata();
    // Box scaled by 0.5 → [50, 25, 150, 100], plus 15 % per side → [35, 13, 165, 112].
    expect([meta.width, meta.height]).toEqual([130, 99]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('clamps crops to the frame', () => {
    expect(cropRegion([-50, -50, 20, 20], { width: 100, height: 100 }, { width: 100, height: 100 })).toEqual({ left: 0, top: 0, width: 31, height: 31 });
    const r = cropRegion([95, 95, 140, 140], { width: 100, height: 100 }, { width: 100, height: 100 });
    expect(r.left + r.width).toBeLessThanOrEqual(100);
    expect(r.top + r.height).toBeLessThanOrEqual(100);
  });

  it('keeps the directory within max bytes, deleting the oldest of its own files only, also those of earlier runs', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README.txt'), 'not evidence');
    // A file from an earlier run (older UUIDv7 → sorts first).
    const old = `${uuidv7(Date.now() - 86_400_000)}_cam1_red_light-frame.jpg`;
    writeFileSync(join(dir, old), Buffer.alloc(20_000));
    const max = 200_000;
    const store = new EvidenceStore(dir, max);
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const name = `${uuidv7()}_cam1_stopped_vehicle`;
      names.push(name);
      await store.capture({ frame: noiseFrame(160, 120, i + 2), box: [10, 10, 100, 100], camera: { width: 160, height: 120 }, name });
      const owned = readdirSync(dir).filter((f) => f.endsWith('.jpg'));
      const total = owned.reduce((s, f) => s + statSync(join(dir, f)).size, 0);
      expect(total).toBeLessThanOrEqual(max);
      expect(store.stats().bytes).toBe(total);
    }
    const left = readdirSync(dir);
    expect(left).toContain('README.txt');
    expect(left).not.toContain(old);
    // What is left is the newest evidence, pairs complete.
    const kept = names.filter((n) => left.includes(`${n}-frame.jpg`));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).toEqual(names.slice(names.length - kept.length));
    for (const n of kept) expect(left).toContain(`${n}-crop.jpg`);
    expect(store.stats().deleted).toBeGreaterThan(0);
  });

  it('encodes with the ffmpeg it is given: one that cannot run fails the job', async () => {
    const store = new EvidenceStore(tempDir(), 1024 * 1024, { ffmpeg: join(tempDir(), 'no-such-ffmpeg') });
    const job = store.capture({ frame: noiseFrame(64, 48, 4), box: [0, 0, 10, 10], camera: { width: 64, height: 48 }, name: `${uuidv7()}_c_wrong_way` })!;
    await expect(job).rejects.toMatchObject({ code: 'FFMPEG_MISSING' });
    expect(store.stats()).toMatchObject({ written: 0, failed: 1, pending: 0, files: 0 });
  });

  it('refuses new jobs beyond max_pending rather than queueing frames', async () => {
    const store = new EvidenceStore(tempDir(), 10 * 1024 * 1024, { max_pending: 1 });
    const frame = noiseFrame(64, 48, 3);
    const a = store.capture({ frame, box: [0, 0, 10, 10], camera: { width: 64, height: 48 }, name: `${uuidv7()}_c_wrong_way` });
    const b = store.capture({ frame, box: [0, 0, 10, 10], camera: { width: 64, height: 48 }, name: `${uuidv7()}_c_wrong_way` });
    expect(a).toBeDefined();
    expect(b).toBeUndefined();
    await a;
    expect(store.stats()).toMatchObject({ written: 1, dropped: 1, pending: 0 });
  });
});

/** One camera whose whole frame is a zone with an allowed direction (down): travel up is a wrong-way violation. */
function wrongWayAnalytics(events: EventDraft[], evidence: EvidenceStore): CameraAnalytics {
  const cam = CameraSchema.parse({
    id: 'cam1',
    url: 'clip.mp4',
    frame: { width: 640, height: 360 },
    motion: { enabled: false },
    zones: [{ id: 'road', polygon: [[0, 0], [639, 0], [639, 359], [0, 359]], allowed_direction: [0, 1] }],
  });
  return new CameraAnalytics(cam, AnalyticsSchema.parse({}), { id: 'box-1', site: 'site-1' }, (e) => events.push(e), undefined, { evidence });
}

describe('violations with evidence', () => {
  it('emits the violation once its evidence is written, with matching hashes', async () => {
    const dir = tempDir();
    const events: EventDraft[] = [];
    const ca = wrongWayAnalytics(events, new EvidenceStore(dir, 10 * 1024 * 1024));
    const pixels = noiseFrame(320, 180, 9); // half the camera resolution, as after scaling for the model
    const wrong = { class_name: 'car', w: 60, h: 40, at: linearPath([320, 340], [320, 60], 0, 3) };
    for (const f of simulate([wrong], { fps: 10, duration_s: 3 })) ca.update({ ...f.ctx, frame: pixels }, f.detections);
    // Not emitted synchronously: the evidence is being encoded.
    expect(events.filter((e) => e.type === 'wrong_way')).toHaveLength(0);
    await ca.flush();
    const ww = events.filter((e): e is EventOf<'wrong_way'> => e.type === 'wrong_way');
    expect(ww).toHaveLength(1);
    // Without an evidence package builder the violation carries the two images.
    const ev = ww[0]!.evidence as EvidenceImages;
    expect(ev.frame_file.startsWith(ww[0]!.id)).toBe(true);
    expect(sha(readFileSync(join(dir, ev.frame_file)))).toBe(ev.frame_sha256);
    expect(sha(readFileSync(join(dir, ev.crop_file)))).toBe(ev.crop_sha256);
    expect(EventDraftSchema.safeParse(ww[0]).success).toBe(true);
    expect(ca.stats()).toMatchObject({ evidence_attached: 1, evidence_missing: 0, evidence_pending: 0 });
  });

  it('emits at once, without evidence, when the frame has no pixels', async () => {
    const events: EventDraft[] = [];
    const ca = wrongWayAnalytics(events, new EvidenceStore(tempDir(), 1024 * 1024));
    const wrong = { class_name: 'car', w: 60, h: 40, at: linearPath([320, 340], [320, 60], 0, 3) };
    for (const f of simulate([wrong], { fps: 10, duration_s: 3 })) ca.update(f.ctx, f.detections);
    const ww = events.filter((e): e is EventOf<'wrong_way'> => e.type === 'wrong_way');
    expect(ww).toHaveLength(1);
    expect(ww[0]!.evidence).toBeUndefined();
    await ca.flush();
  });
});
