// The package builder without video (ffmpeg only encodes the JPEGs): a package from the analysed frame (letterbox
// mapping of the vehicle box, the caller's buffer copied), its manifest, files and signature; refusal without any
// picture; and shutdown (hurry): a live source stops waiting and late builds take the fast path.
import { createHash, createPublicKey, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { AnalyticsSchema, CameraSchema } from '../../../config/schema/index.js';
import { makeEvent, type EventOf } from '../../../contract/event.js';
import { letterboxGeometry } from '../../../ingest/ffmpeg-args.js';
import { EvidencePackager, EvidenceSigner, PACKAGE_FILES, PackageStore, type Manifest, type MediaSource, type SpanRequest } from '../../../inference/evidence/index.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-packager-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const camera = CameraSchema.parse({
  id: 'cam1',
  url: 'rtsp://127.0.0.1/cam1',
  username: 'admin',
  password: 'secret',
  frame: { width: 1280, height: 720 },
  zones: [{ id: 'road', polygon: [[0, 0], [1279, 0], [1279, 719], [0, 719]], allowed_direction: [0, 1] }],
});

function wrongWay(mono_ms = 1000): EventOf<'wrong_way'> {
  return makeEvent({
    type: 'wrong_way',
    device: 'box-1',
    site: 'site-1',
    camera: 'cam1',
    captured_at_ms: Date.UTC(2026, 0, 1, 12),
    mono_ms,
    clock_synced: false,
    object: { track_id: 7, class: 'car', score: 0.8, box: [400, 300, 600, 500] },
    rule: { kind: 'zone', id: 'road' },
    attributes: { distance_px: 80, allowed_direction: [0, 1], heading: [0, -1] },
  });
}

function packager(source?: MediaSource, ffmpeg?: string): { p: EvidencePackager; dir: string } {
  const dir = tempDir();
  const p = new EvidencePackager({
    camera,
    evidence: AnalyticsSchema.parse({ evidence: { dir, pre_s: 1, post_s: 1 } }).evidence,
    device: { id: 'box-1', site: 'site-1' },
    source,
    store: new PackageStore(dir, { max_mb: 100, max_days: 30 }),
    signer: new EvidenceSigner({ data_dir: dir }),
    context: { config_hash: () => 'cafe', agent_version: 'test', models: () => [{ role: 'detector', name: 'm.onnx', sha256: 'a'.repeat(64) }] },
    resize: 'letterbox',
    ...(ffmpeg ? { ffmpeg } : {}),
  });
  return { p, dir };
}

/** A letterboxed 416x416 analysed frame: grey bands, the picture a gradient. */
function analysedFrame() {
  const g = letterboxGeometry(1280, 720, 416, 416);
  const data = new Uint8Array(416 * 416 * 3).fill(114);
  for (let y = g.pad_y; y < g.pad_y + g.scaled_height; y++) for (let x = 0; x < 416; x++) data.set([x % 256, y % 256, 90], (y * 416 + x) * 3);
  return { frame: { data, width: 416, height: 416 }, g };
}

describe('evidence packages without video', () => {
  it('packages the analysed frame: still-at and the vehicle mapped through the letterbox, signed manifest', async () => {
    const { p, dir } = packager();
    const { frame, g } = analysedFrame();
    const ev = wrongWay();
    const job = p.capture({ event: ev, box: [400, 300, 600, 500], frame })!;
    frame.data.fill(0); // the caller reuses its buffer at once
    const ref = await job;
    expect(ref).toMatchObject({ package_id: ev.id, files: 2 });
    const pkg = path.join(dir, ev.id);
    const bytes = fs.readFileSync(path.join(pkg, PACKAGE_FILES.manifest));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(ref.manifest_sha256);
    const m = JSON.parse(bytes.toString()) as Manifest;
    expect(verify('sha256', bytes, { key: createPublicKey(m.signer.public_key), dsaEncoding: 'der' }, fs.readFileSync(path.join(pkg, PACKAGE_FILES.signature)))).toBe(true);
    expect(m.files.map((f) => f.name)).toEqual(['still-at.jpg', 'vehicle.jpg']);
    expect(m).toMatchObject({
      package_id: ev.id,
      recording: { source: 'analysed_frame', width: 416, height: 416, note: 'no recording covered the violation' },
      clip: null,
      plate: null,
      rule: { kind: 'zone', id: 'road', parameters: { id: 'road', allowed_direction: [0, 1] } },
      time: { violation_at: ev.captured_at, mono_ms: 1000, clock_synced: false },
      config: { hash: 'cafe' },
      models: [{ role: 'detector', name: 'm.onnx' }],
      calibration_sha256: null,
    });
    expect(m.event).toMatchObject({ id: ev.id, type: 'wrong_way' });
    const k = g.scale;
    expect(m.vehicle!.box_native_px).toEqual([400 * k, 300 * k + g.pad_y, 600 * k, 500 * k + g.pad_y].map((v) => Math.round(v * 100) / 100));
    // Credentials never go into the manifest (the camera's config is hashed without them).
    expect(bytes.toString()).not.toContain('secret');
    // The still is the frame as it was at the capture, not the reused buffer.
    const still = await sharp(path.join(pkg, PACKAGE_FILES.at)).raw().toBuffer({ resolveWithObject: true });
    expect(still.info).toMatchObject({ width: 416, height: 416 });
    expect(still.data[(200 * 416 + 200) * 3 + 2]).toBeGreaterThan(60); // blue 90 of the gradient, not 0
    const crop = await sharp(path.join(pkg, PACKAGE_FILES.vehicle)).metadata();
    // The box in the frame is [130, 188.5, 195, 253.5] (65 x 65), plus 15 % a side: x 120.25-204.75, y 178.75-263.25.
    expect([crop.width, crop.height]).toEqual([205 - 120, 264 - 178]);
    expect(p.stats()).toMatchObject({ built: 1, failed: 0, without_video: 1, pending: 0 });
  });

  it('refuses a violation with neither video nor an analysed frame', async () => {
    const { p } = packager();
    await expect(p.capture({ event: wrongWay(), box: [0, 0, 10, 10] })!).rejects.toMatchObject({ code: 'EVIDENCE_NO_MEDIA' });
    expect(p.stats()).toMatchObject({ built: 0, failed: 1 });
  });

  it('encodes the JPEGs with its ffmpeg: one that cannot run fails the build', async () => {
    const { p, dir } = packager(undefined, path.join(tempDir(), 'no-such-ffmpeg'));
    const ev = wrongWay();
    await expect(p.capture({ event: ev, box: [400, 300, 600, 500], frame: analysedFrame().frame })!).rejects.toMatchObject({ code: 'FFMPEG_MISSING' });
    expect(p.stats()).toMatchObject({ built: 0, failed: 1 });
    expect(fs.existsSync(path.join(dir, ev.id))).toBe(false);
  });

  it('shutdown: a live source stops waiting at once', async () => {
    const requests: SpanRequest[] = [];
    const live: MediaSource = {
      live: true,
      span: (req) => {
        requests.push(req);
        // A ring whose video after the violation never comes: only the abort ends the wait.
        return new Promise((resolve) => req.signal?.addEventListener('abort', () => resolve(undefined)));
      },
    };
    const { p } = packager(live);
    const { frame } = analysedFrame();
    const job = p.capture({ event: wrongWay(), box: [400, 300, 600, 500], frame })!;
    await new Promise((r) => setTimeout(r, 50));
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ before_s: 1.5, after_s: 1.5 });
    const t0 = performance.now();
    p.hurry();
    const ref = await job;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(ref.files).toBe(2);
  });
});
