// Evidence packages end to end on a rendered violation scene (testkit/violation-clips.ts): the real camera
// source plays the clip through ffmpeg and records its ring; the analytics get the known boxes of the scene's
// cars (the real detector does not find drawn boxes); red light and speeding fire; each package is cut from the
// ring and read back: plate text, stills on the right frames (the barcode of the frame number), the clip's
// length, every file hash, the signature. Then a ring on a tiny full filesystem: recording stops, frames and
// events go on; and `analyze --evidence`'s clip source.
import { execFile, execFileSync } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsSchema, CameraSchema, PlatesSchema } from '../../../config/schema/index.js';
import { EventDraftSchema, isoTime, makeEvent, type EventDraft, type EventOf, type EvidencePackageRef } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';
import { CameraAnalytics } from '../../../inference/analytics/index.js';
import { CameraSource } from '../../../ingest/index.js';
import { readClip } from '../../../ingest/clip.js';
import { verifyEvidencePackage } from '../../../contract/evidence-verify.js';
import { signerKeyFrom } from '../../../contract/evidence.js';
import { EvidencePackages, PACKAGE_FILES, type Manifest } from '../../../inference/evidence/index.js';
import { PlateReader } from '../../../inference/recognizers/index.js';
import { waitFor } from '../../../testkit/processes.js';
import { RtspServer } from '../../../testkit/rtsp.js';
import { FPS, readBarcode, readBarcodeJpeg, renderViolationScene, sceneCamera, sceneDetections, type RenderedScene } from '../../../testkit/violation-clips.js';

const execFileP = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const verifyManifest = (data: Uint8Array, sig: Uint8Array, pem: string) => verify('sha256', data, { key: createPublicKey(pem), dsaEncoding: 'der' }, sig);
const DEVICE = { id: 'box-1', site: 'site-1' };
const DEVICE_ENVELOPE = { device: DEVICE.id, site: DEVICE.site, camera: 'cam1' };
const TARGET = { width: 416, height: 416, resize: 'stretch' as const };

let rs: RenderedScene;
let tmp: string;
let reader: PlateReader;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-test-'));
  rs = await renderViolationScene();
  reader = new PlateReader({ threads: 1 }, silentLogger());
  await reader.start();
}, 120_000);

afterAll(async () => {
  await reader?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Which of the scene's cars an event is about: the one in view on the event's frame. */
function vehicleOf(frame: number): number {
  const dets = sceneDetections(rs, frame / FPS);
  expect(dets).toHaveLength(1);
  const box = dets[0]!.box;
  return rs.vehicles.findIndex((v) => Math.abs(v.height - (box[3] - box[1])) < 0.5);
}

function packages(dir: string, recordings?: string): EvidencePackages {
  return new EvidencePackages({
    evidence: AnalyticsSchema.parse({ evidence: { dir, pre_s: 2, post_s: 2, stills_offset_s: 1 } }).evidence,
    signals: [{ id: 'sig1' }],
    device: DEVICE,
    signer: { data_dir: tmp },
    ...(recordings ? { recordings_dir: recordings } : {}),
    plates: { reader, config: PlatesSchema.parse({ enabled: true }) },
    config_hash: () => '0123456789abcdef',
    agent_version: 'test',
    models: [],
    resize: 'stretch',
    log: silentLogger(),
  });
}

/** Checks a package against its manifest: files, hashes, sizes, signature, key id; and with `evidence verify`'s checker. */
async function checkPackage(dir: string, ref: EvidencePackageRef): Promise<Manifest> {
  const pkg = path.join(dir, ref.package_id);
  const bytes = fs.readFileSync(path.join(pkg, PACKAGE_FILES.manifest));
  expect(sha(bytes)).toBe(ref.manifest_sha256);
  const manifest = JSON.parse(bytes.toString()) as Manifest;
  // Canonical: keys sorted at every level, no whitespace.
  expect(bytes.toString()).not.toMatch(/\n|": /);
  expect(manifest.files).toHaveLength(ref.files);
  const listed = manifest.files.map((f) => f.name).sort();
  expect(fs.readdirSync(pkg).filter((f) => f !== PACKAGE_FILES.manifest && f !== PACKAGE_FILES.signature).sort()).toEqual(listed);
  for (const f of manifest.files) {
    const data = fs.readFileSync(path.join(pkg, f.name));
    expect(sha(data), f.name).toBe(f.sha256);
    expect(data.length, f.name).toBe(f.bytes);
  }
  const sig = fs.readFileSync(path.join(pkg, PACKAGE_FILES.signature));
  expect(verifyManifest(bytes, sig, manifest.signer.public_key)).toBe(true);
  // One byte changed: the signature no longer holds.
  const tampered = Buffer.from(bytes);
  tampered.writeUInt8(tampered.readUInt8(10) ^ 1, 10);
  expect(verifyManifest(tampered, sig, manifest.signer.public_key)).toBe(false);
  expect(manifest.signer.key_id).toBe(sha(createPublicKey(manifest.signer.public_key).export({ type: 'spki', format: 'der' })));
  expect(manifest.signer).toMatchObject({ algorithm: 'ECDSA-P256-SHA256', key_source: 'generated', cert: 'absent' });
  // The verifier the center and authorities use, with the box key registered apart from the package.
  const report = await verifyEvidencePackage(pkg, { key: signerKeyFrom(manifest.signer.public_key) });
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.extra).toEqual([]);
  return manifest;
}

async function ffprobeDuration(file: string): Promise<number> {
  const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  return Number(stdout.trim());
}

describe('evidence packages from the recording ring', () => {
  it('red light and speeding: one signed package per violation, plate read, stills on the violation frame ±1 s, clip cut by stream copy', async () => {
    const evDir = path.join(tmp, 'evidence');
    const recDir = path.join(tmp, 'recordings');
    const cam = CameraSchema.parse(sceneCamera(rs, { recording: { segment_s: 1, keep_s: 60 } }));
    const analyticsCfg = AnalyticsSchema.parse({ signals: [{ id: 'sig1' }] });
    const src = new CameraSource(cam, TARGET, silentLogger(), { recording: { dir: recDir } });
    const ev = packages(evDir, recDir);
    const events: EventDraft[] = [];
    const analytics = new CameraAnalytics(cam, analyticsCfg, DEVICE, (e) => events.push(e), undefined, { evidence: ev.forCamera(cam) });
    const frameOf = new Map<number, number>(); // captured_at_ms → frame number in the clip
    await src.start();
    try {
      let last = -1;
      let red = false;
      analytics.setSignal('sig1', 'green', Date.now() - 60_000);
      for await (const f of src.frames()) {
        const n = readBarcode(f);
        if (n < last) break; // the file camera looped: one pass is the scene
        last = n;
        if (!red && n / FPS >= rs.scene.red_from_s) {
          analytics.setSignal('sig1', 'red', f.captured_at_ms);
          red = true;
        }
        frameOf.set(f.captured_at_ms, n);
        analytics.update({ camera_id: cam.id, captured_at_ms: f.captured_at_ms, mono_ms: f.mono_ms, clock_synced: true, frame: f }, sceneDetections(rs, n / FPS));
      }
      // The packages wait for the ring to cover post_s after their violation: the camera keeps recording. (flush
      // would hurry them: a shutdown takes what is recorded.)
      await waitFor(() => analytics.stats().evidence_pending === 0, { timeout_ms: 60_000 });
      await analytics.flush();
    } finally {
      await src.stop();
    }
    const ring = src.recordingStats()!;
    expect(ring.segments).toBeGreaterThan(10);
    expect(ring.write_failures).toBe(0);

    const violations = events.filter((e): e is EventOf<'red_light' | 'speeding'> => e.type === 'red_light' || e.type === 'speeding');
    for (const e of violations) expect(EventDraftSchema.safeParse(e).error).toBeUndefined();
    const who = (type: string) => violations.filter((e) => e.type === type).map((e) => vehicleOf(frameOf.get(Date.parse(e.captured_at))!)).sort();
    // Speeding exactly for the two cars over the 50 km/h limit; red light for the three crossing after 6 s.
    expect(who('speeding')).toEqual([2, 3]);
    expect(who('red_light')).toEqual([1, 2, 3]);
    const speeds = events.filter((e): e is EventOf<'speed'> => e.type === 'speed').map((e) => `${e.object.speed_kmh}±${e.object.speed_uncertainty_kmh}`);
    console.info(`speeds at the trap: ${speeds.join(', ')}; ring ${ring.segments} segments, ${(ring.bytes / 1024).toFixed(0)} KiB`);

    for (const e of violations) {
      const ref = e.evidence as EvidencePackageRef;
      expect(ref.package_id).toBe(e.id);
      const m = await checkPackage(evDir, ref);
      const car = vehicleOf(frameOf.get(Date.parse(e.captured_at))!);
      const plate = rs.vehicles[car]!.plate;
      expect(m.plate?.text, `${e.type} of ${plate}`).toBe(plate);
      expect(ref.plate).toEqual({ text: m.plate!.text, confidence: m.plate!.confidence, valid_format: true });
      expect(m.rule).toMatchObject({ kind: e.rule.kind, id: e.rule.id });
      if (e.type === 'speeding') expect(m.rule.parameters).toMatchObject({ id: 'trap', speed_limit_kmh: 50 });
      else expect(m.rule.parameters).toMatchObject({ signal: { id: 'sig1' }, stop_line: { id: 'stop', stop_line: true } });
      expect(m.recording).toMatchObject({ source: 'ring', width: 1280, height: 720 });
      expect(m.time).toMatchObject({ violation_at: e.captured_at, mono_ms: e.mono_ms, clock_synced: true });
      expect(m.config.hash).toBe('0123456789abcdef');
      expect(m.calibration_sha256).toMatch(/^[0-9a-f]{64}$/);

      // The stills: the analysed frame itself, and the frames 1 s (25 frames) before and after it.
      const n = frameOf.get(Date.parse(e.captured_at))!;
      const pkg = path.join(evDir, ref.package_id);
      expect(await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.at))).toBe(n);
      expect(await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.before))).toBe(n - FPS);
      expect(await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.after))).toBe(n + FPS);
      expect(m.stills.map((s) => [s.role, s.offset_s])).toEqual([['before', -1], ['at', 0], ['after', 1]]);

      // The clip: from the keyframe (whole seconds in this clip) at or before −2 s to +2 s, as the manifest says.
      const clip = m.clip!;
      const duration = await ffprobeDuration(path.join(pkg, PACKAGE_FILES.clip));
      expect(Math.abs(duration - clip.duration_s)).toBeLessThan(0.05);
      expect(clip.start.offset_s).toBeLessThanOrEqual(-2);
      expect(clip.start.offset_s).toBeGreaterThan(-3.01);
      expect(Number.isInteger(Math.round((n / FPS + clip.start.offset_s) * 1000) / 1000)).toBe(true);
      expect(Math.abs(clip.end.offset_s - 2)).toBeLessThan(0.05);
      expect(Math.abs(clip.end.offset_s - clip.start.offset_s - duration)).toBeLessThan(0.05);
      // The vehicle crop is the car at full resolution (its box, plus 15 % a side).
      expect(m.vehicle!.box_native_px).toEqual(m.vehicle!.box_camera_px);
    }
    expect(ev.stats()).toMatchObject({ packages: violations.length, unacknowledged: violations.length });
    expect(fs.readdirSync(evDir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  }, 180_000);
});

describe('the ring of an RTSP camera', () => {
  it('places a violation stamped with a frame on that frame (credentials: the ffconcat input on fd 3)', async () => {
    const server = await RtspServer.start({ clip: rs.clip, auth: { username: 'admin', password: 'pw:1' } });
    const evDir = path.join(tmp, 'evidence-rtsp');
    const recDir = path.join(tmp, 'recordings-rtsp');
    const cam = CameraSchema.parse(sceneCamera(rs, { url: server.url, username: 'admin', password: 'pw:1', recording: { segment_s: 1 } }));
    const src = new CameraSource(cam, TARGET, silentLogger(), { recording: { dir: recDir } });
    const packager = packages(evDir, recDir).forCamera(cam);
    const picks: Array<{ n: number; wall: number; mono: number }> = [];
    try {
      await src.start();
      let seen = 0;
      for await (const f of src.frames()) {
        // After the ring has a few segments, every 7th frame (any phase of the 25 fps stream).
        if (++seen > 30 && seen % 7 === 0) picks.push({ n: readBarcode(f), wall: f.captured_at_ms, mono: f.mono_ms });
        if (picks.length === 3) break;
      }
      const refs = await Promise.all(
        picks.map((p) => {
          const event = makeEvent({
            type: 'red_light',
            ...DEVICE_ENVELOPE,
            captured_at_ms: p.wall,
            mono_ms: p.mono,
            clock_synced: true,
            object: { track_id: 1, class: 'car', score: 0.9, box: [100, 380, 500, 690] },
            rule: { kind: 'signal', id: 'sig1' },
            attributes: { line_id: 'stop', direction: 'in', point_px: [900, 690], crossed_at: isoTime(p.wall), signal_state: 'red', red_elapsed_s: 1 },
          });
          return packager.capture({ event, box: [100, 380, 500, 690] })!;
        }),
      );
      for (const [i, ref] of refs.entries()) {
        const m = await checkPackage(evDir, ref);
        expect(m.recording.source).toBe('ring');
        const pkg = path.join(evDir, ref.package_id);
        const n = picks[i]!.n;
        const wrap = (k: number) => (k + rs.scene.duration_s * FPS) % (rs.scene.duration_s * FPS);
        expect([n, wrap(n - FPS), wrap(n + FPS)]).toEqual([
          await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.at)),
          await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.before)),
          await readBarcodeJpeg(path.join(pkg, PACKAGE_FILES.after)),
        ]);
      }
    } finally {
      await src.stop();
      await server.stop();
    }
  }, 120_000);
});

describe('a full disk under the ring', () => {
  const mnt = path.join(os.tmpdir(), `evidence-full-${process.pid}`);
  let mounted = false;
  beforeAll(() => {
    fs.mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
      mounted = true;
      // Leave room for a few seconds of this low-bitrate clip: the ring fills the rest within seconds.
      const free = fs.statfsSync(mnt);
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(free.bavail * free.bsize - 112 * 1024));
    } catch {
      console.warn('full-disk test skipped: cannot mount a tmpfs here (needs root)');
    }
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('stops recording cleanly (logged, counted) while frames and events go on', async (ctx) => {
    if (!mounted) ctx.skip();
    const cam = CameraSchema.parse(sceneCamera(rs, { recording: { segment_s: 1, keep_s: 60 } }));
    const src = new CameraSource(cam, TARGET, silentLogger(), { recording: { dir: mnt, min_free_bytes: 64 * 1024 } });
    const events: EventDraft[] = [];
    const evDir = path.join(tmp, 'evidence-full');
    const analytics = new CameraAnalytics(cam, AnalyticsSchema.parse({ signals: [{ id: 'sig1' }] }), DEVICE, (e) => events.push(e), undefined, {
      evidence: packages(evDir, mnt).forCamera(cam),
    });
    analytics.setSignal('sig1', 'red', Date.now() - 60_000);
    await src.start();
    const pid = src.stats().ffmpeg_pid;
    let framesAfterFull = 0;
    let fullAt: number | undefined;
    // The states seen after the first failure: ffmpeg goes on with the next segment, and one that fits in the room
    // a deleted partial segment left resumes the ring by design (ingest/recording.ts segmentLost), so the state may
    // go back and forth; it must have paused.
    const statesWhileFull = new Set<string>();
    let loops = 0;
    let last = -1;
    try {
      for await (const f of src.frames()) {
        const n = readBarcode(f);
        if (n < last) loops++;
        last = n;
        analytics.update({ camera_id: cam.id, captured_at_ms: f.captured_at_ms, mono_ms: f.mono_ms, clock_synced: true, frame: f }, sceneDetections(rs, n / FPS));
        if (fullAt === undefined && src.recordingStats()!.write_failures > 0) fullAt = events.length;
        if (fullAt !== undefined) {
          framesAfterFull++;
          statesWhileFull.add(src.recordingStats()!.state);
        }
        // Run on a while after the failure, then through a scene pass so violations come after it.
        if ((fullAt !== undefined && framesAfterFull > 160) || loops > 3) break;
      }
      await analytics.flush();
    } finally {
      await src.stop();
    }
    const stats = src.recordingStats()!;
    console.info(`full disk: ${JSON.stringify(stats)}; ${framesAfterFull} frames and ${events.length - (fullAt ?? 0)} events after the failure`);
    expect(fullAt).toBeDefined();
    expect(stats.write_failures).toBeGreaterThanOrEqual(1);
    expect(stats.last_failure).toMatch(/No space left/i);
    expect([...statesWhileFull]).toContain('paused_disk_full');
    expect(stats.state).toBe('stopped');
    expect(src.stats().reconnects_last_hour).toBe(0); // the same ffmpeg went on
    expect(pid).not.toBeNull();
    expect(framesAfterFull).toBeGreaterThan(160);
    const after = events.slice(fullAt);
    expect(after.filter((e) => e.type === 'line_crossing').length).toBeGreaterThan(0);
    // Violations after the failure still leave, with a package (from the analysed frame when the ring has no video).
    const late = after.filter((e): e is EventOf<'red_light'> => e.type === 'red_light');
    expect(late.length).toBeGreaterThan(0);
    for (const e of late) expect((e.evidence as EvidencePackageRef | undefined)?.package_id).toBe(e.id);
  }, 180_000);
});

describe('analyze --evidence: the clip is the ring', () => {
  it('cuts packages from the clip by its own time: the stills are the analysed frames', async () => {
    const evDir = path.join(tmp, 'evidence-clip');
    const cam = CameraSchema.parse(sceneCamera(rs));
    const ev = packages(evDir);
    const events: EventDraft[] = [];
    const analytics = new CameraAnalytics(cam, AnalyticsSchema.parse({ signals: [{ id: 'sig1' }] }), DEVICE, (e) => events.push(e), undefined, {
      evidence: ev.forCamera(cam, { clip: rs.clip }),
    });
    const frameOf = new Map<number, number>();
    let red = false;
    for await (const f of readClip(rs.clip, TARGET, { fps: 10, source: { width: 1280, height: 720 }, start_ms: Date.UTC(2026, 0, 1) })) {
      const n = readBarcode(f);
      expect(f.mono_ms).toBeCloseTo((n * 1000) / FPS, 3); // each frame carries its own stream time
      if (!red && n / FPS >= rs.scene.red_from_s) {
        analytics.setSignal('sig1', 'red', f.captured_at_ms);
        red = true;
      }
      frameOf.set(f.captured_at_ms, n);
      analytics.update({ camera_id: cam.id, captured_at_ms: f.captured_at_ms, mono_ms: f.mono_ms, clock_synced: true, frame: f }, sceneDetections(rs, n / FPS));
    }
    await analytics.flush();
    const violations = events.filter((e): e is EventOf<'red_light' | 'speeding'> => e.type === 'red_light' || e.type === 'speeding');
    expect(violations.map((e) => e.type).sort()).toEqual(['red_light', 'red_light', 'red_light', 'speeding', 'speeding']);
    for (const e of violations) {
      const ref = e.evidence as EvidencePackageRef;
      const m = await checkPackage(evDir, ref);
      expect(m.recording.source).toBe('clip');
      const n = frameOf.get(Date.parse(e.captured_at))!;
      expect(await readBarcodeJpeg(path.join(evDir, ref.package_id, PACKAGE_FILES.at))).toBe(n);
      expect(m.plate?.text).toBe(rs.vehicles[vehicleOf(n)]!.plate);
    }
  }, 180_000);
});
