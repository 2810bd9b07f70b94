// One evidence package per violation, in `<evidence dir>/<event id>/`: the clip around the violation cut from
// the recording by stream copy, full-resolution stills before / at / after it, the vehicle and plate crops, and
// a signed manifest (manifest.ts). Built in a temp folder and renamed into place when complete; the violation
// event carries the package's id, the manifest's hash, the file count and the plate.
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvidencePackageRef } from '../../contract/event.js';
import { canonicalJson } from '../../contract/evidence.js';
import type { AnalyticsConfig, CameraConfig } from '../../config/schema/index.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { DeviceRef } from '../analytics/outlet.js';
import type { ViolationCapture, ViolationEvidence } from '../analytics/evidence.js';
import { letterboxGeometry, type ResizeMode } from '../../ingest/ffmpeg-args.js';
import { encodeJpeg } from '../../ingest/jpeg.js';
import { MONO_CLOCK_ID } from '../../ingest/recording.js';
import type { RgbFrame } from '../../ingest/frame.js';
import type { Box } from '../tracking/types.js';
import { boxIn, regionAround, type Region } from './geometry.js';
import { PACKAGE_FILES as F, MANIFEST_SCHEMA, type Manifest, type ManifestFile, type ModelRef } from './manifest.js';
import { cutClip, decodeFrames, nearestFrame, probeFrames } from './media.js';
import { readPlate, type PlateReaderRef } from './plates.js';
import type { EventTime, MediaSource, MediaSpan } from './sources.js';
import type { EvidenceSigner } from './signer.js';
import type { PackageStore } from './store.js';

/** After hurry(), builds still take video for this long; later ones are made from the analysed frame, ms. */
const HURRY_VIDEO_MS = 4_000;
/** Frames each side of the violation frame the plate is also read on (the vote). */
const PLATE_NEIGHBOURS = 2;
const JPEG_QUALITY = 90;

export interface PackagerOptions {
  camera: CameraConfig;
  evidence: AnalyticsConfig['evidence'];
  /** The traffic signals (a red-light rule's parameters). */
  signals?: AnalyticsConfig['signals'];
  device: DeviceRef;
  /** The camera's recording ring, or a clip; none: packages hold only the analysed frame. */
  source: MediaSource | undefined;
  store: PackageStore;
  signer: EvidenceSigner;
  plates?: PlateReaderRef;
  /** The config file's hash (asked at each build: config-apply changes it), the agent version and the models in force. */
  context: { config_hash: () => string | null; agent_version: string; models: () => ModelRef[] };
  /** How analysed frames were fitted to the detector input (their box mapping). */
  resize: ResizeMode;
  log?: Logger;
  /** Builds waiting or running beyond which new violations go without a package. Default 16. */
  max_pending?: number;
  ffmpeg?: string;
  ffprobe?: string;
}

export interface PackagerStats {
  built: number;
  failed: number;
  /** Refused: max_pending builds already waiting. */
  dropped: number;
  pending: number;
  /** Built from the analysed frame only: no recording covered the violation. */
  without_video: number;
  /** Store figures: packages on disk, bytes, unacknowledged, evictions. */
  store: ReturnType<PackageStore['stats']>;
}

interface Picture {
  role: 'before' | 'at' | 'after';
  requested_s: number;
  actual_s: number;
  frame: RgbFrame;
}

interface Built {
  files: Array<{ name: string; data?: Buffer }>;
  clip: Manifest['clip'];
  stills: Picture[];
  recording: Manifest['recording'];
  vehicle: Manifest['vehicle'];
  plate: Manifest['plate'];
}

export class EvidencePackagerError extends AgentError {}

/** The ViolationEvidence of one camera: evidence packages. */
export class EvidencePackager implements ViolationEvidence {
  readonly timeout_ms: number;
  private pending = 0;
  /** Aborted by hurry(): waits for video end; builds starting HURRY_VIDEO_MS later take the fast path. */
  private readonly hurried = new AbortController();
  private hurriedAt: number | undefined;
  private readonly counters = { built: 0, failed: 0, dropped: 0, without_video: 0 };

  constructor(private readonly o: PackagerOptions) {
    const e = o.evidence;
    const seg = o.camera.recording.segment_s;
    // Waiting for the video after the violation (post_s, then the segment holding it closes), plus the build.
    this.timeout_ms = Math.round((Math.max(e.post_s, e.stills_offset_s) + 3 * seg + 10) * 1000 + 60_000);
  }

  capture(c: ViolationCapture): Promise<EvidencePackageRef> | undefined {
    if (this.pending >= (this.o.max_pending ?? 16)) {
      this.counters.dropped++;
      return undefined;
    }
    this.pending++;
    // The analysed frame's pixels may be reused by the caller once this returns.
    const frame = c.frame ? { width: c.frame.width, height: c.frame.height, data: c.frame.data.slice() } : undefined;
    return this.build({ ...c, ...(frame ? { frame } : {}) }).then(
      (ref) => {
        this.pending--;
        this.counters.built++;
        return ref;
      },
      (err: unknown) => {
        this.pending--;
        this.counters.failed++;
        throw err;
      },
    );
  }

  /**
   * Shutdown: builds waiting for live video after their violation stop waiting; those starting more than
   * HURRY_VIDEO_MS later are made from the analysed frame (two JPEGs, ~0.1 s each, where video takes about a second),
   * so every violation leaves before the stop deadline. A recorded clip is all there: no change. For good: a
   * packager is not used after its analytics stopped.
   */
  hurry(): void {
    this.hurriedAt ??= performance.now();
    this.hurried.abort();
  }

  stats(): PackagerStats {
    return { ...this.counters, pending: this.pending, store: this.o.store.stats() };
  }

  private async build(c: ViolationCapture): Promise<EvidencePackageRef> {
    const { store, evidence: e, source } = this.o;
    const ev = c.event;
    const at: EventTime = { wall_ms: Date.parse(ev.captured_at), mono_ms: ev.mono_ms };
    const work = await store.begin(ev.id);
    try {
      const margin = 0.5;
      const span = source
        ? await source.span({
            at,
            before_s: Math.max(e.pre_s, e.stills_offset_s) + margin,
            after_s: Math.max(e.post_s, e.stills_offset_s) + margin,
            work,
            deadline_mono: performance.now() + this.timeout_ms - 45_000,
            signal: this.hurried.signal,
          })
        : undefined;
      return await store.exclusive(() => this.assemble(c, at, span, work));
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      throw err;
    }
  }

  private async assemble(c: ViolationCapture, at: EventTime, span: MediaSpan | undefined, work: string): Promise<EvidencePackageRef> {
    const o = this.o;
    const ev = c.event;
    let built: Built | undefined;
    const late = this.hurriedAt !== undefined && performance.now() - this.hurriedAt > HURRY_VIDEO_MS;
    const shutdown = late && o.source?.live === true && c.frame !== undefined;
    if (span && !shutdown) {
      try {
        built = await this.fromVideo(c, span, work);
      } catch (err) {
        if (!c.frame) throw err;
        o.log?.warn({ event: ev.id, err: errorMessage(err) }, 'evidence: video unusable, package from the analysed frame');
      }
    }
    if (!built) {
      if (!c.frame) throw new EvidencePackagerError('EVIDENCE_NO_MEDIA', `no recording covers ${ev.captured_at} and there is no analysed frame`);
      built = await this.fromFrame(c, shutdown ? 'built at shutdown from the analysed frame' : 'no recording covered the violation');
      this.counters.without_video++;
    }
    await rm(join(work, 'src'), { recursive: true, force: true });

    const cert = o.signer.certificate();
    if (cert) built.files.push({ name: F.cert, data: Buffer.from(cert) });
    for (const f of built.files) if (f.data) await writeFile(join(work, f.name), f.data);
    const files: ManifestFile[] = [];
    for (const f of built.files) {
      const data = f.data ?? (await readFile(join(work, f.name)));
      files.push({ name: f.name, sha256: sha256Hex(data), bytes: data.length });
    }
    files.sort((a, b) => (a.name < b.name ? -1 : 1));
    const iso = (s: number) => new Date(at.wall_ms + s * 1000).toISOString();
    const { evidence: _sent, ...event } = ev;
    const manifest: Manifest = {
      schema: MANIFEST_SCHEMA,
      package_id: ev.id,
      created_at: new Date().toISOString(),
      agent_version: o.context.agent_version,
      device: { id: o.device.id, site: o.device.site },
      camera: { id: o.camera.id, frame: { width: o.camera.frame.width, height: o.camera.frame.height } },
      event,
      rule: { kind: ev.rule.kind, id: ev.rule.id, parameters: this.ruleParameters(c) },
      time: { violation_at: ev.captured_at, wall_ms: at.wall_ms, mono_ms: at.mono_ms, mono_clock: MONO_CLOCK_ID, clock_synced: ev.clock_synced },
      recording: built.recording,
      clip: built.clip,
      stills: built.stills.map((p) => ({ role: p.role, file: F[p.role], requested_offset_s: p.requested_s, offset_s: round6(p.actual_s), at: iso(p.actual_s) })),
      vehicle: built.vehicle,
      plate: built.plate,
      calibration_sha256: o.camera.calibration ? sha256Hex(canonicalJson(o.camera.calibration)) : null,
      config: { hash: o.context.config_hash(), camera_sha256: sha256Hex(canonicalJson(cameraWithoutSecrets(o.camera))) },
      models: o.context.models(),
      signer: o.signer.info(),
      files,
    };
    const bytes = Buffer.from(canonicalJson(manifest));
    const sig = o.signer.sign(bytes);
    await writeFile(join(work, F.manifest), bytes);
    await writeFile(join(work, F.signature), sig);
    const total = files.reduce((s, f) => s + f.bytes, 0) + bytes.length + sig.length;
    await o.store.commit(ev.id, total, Date.now());
    const ref: EvidencePackageRef = { package_id: ev.id, manifest_sha256: sha256Hex(bytes), files: files.length };
    if (built.plate) ref.plate = { text: built.plate.text, confidence: built.plate.confidence, valid_format: built.plate.valid_format };
    return ref;
  }

  /** Clip, stills, vehicle and plate from the recording (or clip) around the violation. */
  private async fromVideo(c: ViolationCapture, span: MediaSpan, work: string): Promise<Built> {
    const { evidence: e, camera } = this.o;
    const tools = { ffmpeg: this.o.ffmpeg ?? 'ffmpeg', ffprobe: this.o.ffprobe ?? 'ffprobe' };
    const t = span.event_s;
    const idx = await probeFrames(span.input, { from_s: t - Math.max(e.pre_s, e.stills_offset_s) - 1, to_s: t + Math.max(e.post_s, e.stills_offset_s) + 1 }, tools.ffprobe);
    const files: Built['files'] = [];

    // Clip: from the last keyframe at or before t − pre_s (stream copy starts at a keyframe) to t + post_s.
    let clip: Manifest['clip'] = null;
    const want0 = t - e.pre_s;
    const want1 = t + e.post_s;
    const k0 = [...idx.keys].reverse().find((k) => k <= want0 + 1e-6) ?? idx.keys.find((k) => k >= want0);
    const end = Math.min(want1, idx.times.at(-1)! + idx.frame_s);
    if (k0 !== undefined && end > k0 + idx.frame_s) {
      const duration = await cutClip(span.input, k0, end, join(work, F.clip), tools);
      files.push({ name: F.clip });
      const iso = (s: number) => new Date(Date.parse(c.event.captured_at) + s * 1000).toISOString();
      clip = {
        file: F.clip,
        requested: { start_offset_s: -e.pre_s, end_offset_s: e.post_s },
        start: { offset_s: round6(k0 - t), at: iso(k0 - t) },
        end: { offset_s: round6(k0 + duration - t), at: iso(k0 + duration - t) },
        duration_s: round6(duration),
      };
    }

    // Stills: the frames nearest to t − offset, t, t + offset; the plate also on the frames beside t.
    const targets = { before: t - e.stills_offset_s, at: t, after: t + e.stills_offset_s };
    const pick = (s: number) => idx.times[nearestFrame(idx.times, s)]!;
    const iAt = nearestFrame(idx.times, t);
    if (Math.abs(idx.times[iAt]! - t) > Math.max(0.1, 2 * idx.frame_s)) throw new EvidencePackagerError('EVIDENCE_NOT_RECORDED', `the violation (${t.toFixed(3)} s) is not on the recorded video`);
    // Full-resolution frames are large (6 MB at 1080p): the plate's neighbours are decoded only for a plate reader.
    const plateTimes = this.o.plates ? idx.times.slice(Math.max(0, iAt - PLATE_NEIGHBOURS), iAt + PLATE_NEIGHBOURS + 1) : [];
    const frames = await decodeFrames(span.input, [pick(targets.before), pick(targets.at), pick(targets.after), ...plateTimes], idx, tools.ffmpeg);
    const stills: Picture[] = (['before', 'at', 'after'] as const).map((role) => ({
      role,
      requested_s: round6(targets[role] - t),
      actual_s: pick(targets[role]) - t,
      frame: frames.get(pick(targets[role]))!,
    }));
    const atFrame = stills[1]!.frame;
    const box = boxIn(c.box, camera.frame, atFrame);
    const parts = await this.pictures(c, stills, box, atFrame, plateTimes.map((x) => frames.get(x)!));
    return { ...parts, files: [...files, ...parts.files], clip, stills, recording: { source: span.source, width: idx.width, height: idx.height, ...(span.note ? { note: span.note } : {}) } };
  }

  /** Only the analysed frame (detector input size): still-at and the vehicle crop from it. */
  private async fromFrame(c: ViolationCapture, note: string): Promise<Built> {
    const frame = c.frame!;
    const { camera, resize } = this.o;
    const lb = resize === 'letterbox' ? letterboxGeometry(camera.frame.width, camera.frame.height, frame.width, frame.height) : undefined;
    const box = boxIn(c.box, camera.frame, frame, lb);
    const stills: Picture[] = [{ role: 'at', requested_s: 0, actual_s: 0, frame }];
    const parts = await this.pictures(c, stills, box, frame, []);
    return { ...parts, clip: null, stills, recording: { source: 'analysed_frame', width: frame.width, height: frame.height, note } };
  }

  /** The JPEGs: stills, vehicle crop, plate crop (with the plate read on `plateFrames`). */
  private async pictures(c: ViolationCapture, stills: Picture[], box: Box, atFrame: RgbFrame, plateFrames: RgbFrame[]): Promise<Pick<Built, 'files' | 'vehicle' | 'plate'>> {
    const files: Built['files'] = [];
    for (const p of stills) files.push({ name: F[p.role], data: await this.jpeg(p.frame) });
    const region = regionAround(box, atFrame);
    files.push({ name: F.vehicle, data: await this.jpeg(atFrame, region) });
    const vehicle = { file: F.vehicle, box_camera_px: c.box.map(round2), box_native_px: box.map(round2) };
    let plate: Manifest['plate'] = null;
    if (this.o.plates && plateFrames.length > 0) {
      const read = await readPlate(this.o.plates, c.event.object.class, plateFrames, box, this.o.log);
      if (read) {
        const v = read.verdict;
        files.push({ name: F.plate, data: await this.jpeg(read.frame, regionAround(read.box, read.frame, 0.1)) });
        plate = { text: v.text, confidence: round6(v.confidence), valid_format: v.valid_format, votes: v.votes, reads: v.reads, file: F.plate, box_native_px: read.box.map(round2) };
      }
    }
    return { files, vehicle, plate };
  }

  /** One picture of the package (an ffmpeg per image, niced: see ingest/jpeg.ts). */
  private jpeg(frame: RgbFrame, region?: Region): Promise<Buffer> {
    return encodeJpeg(frame, { quality: JPEG_QUALITY, ...(region ? { region } : {}), ...(this.o.ffmpeg ? { ffmpeg: this.o.ffmpeg } : {}) });
  }

  /** The configuration of the rule that fired: the line or zone; for red light the signal and its stop line. */
  private ruleParameters(c: ViolationCapture): unknown {
    const { camera, signals } = this.o;
    const ev = c.event;
    const r = ev.rule;
    if (r.kind === 'line') return camera.lines.find((l) => l.id === r.id) ?? null;
    if (r.kind === 'zone') return camera.zones.find((z) => z.id === r.id) ?? null;
    const lineId = ev.type === 'red_light' ? ev.attributes.line_id : undefined;
    return {
      signal: signals?.find((s) => s.id === r.id) ?? { id: r.id },
      stop_line: camera.lines.find((l) => l.id === lineId) ?? null,
    };
  }
}

const sha256Hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The camera's config as hashed for the manifest: without its credentials. */
function cameraWithoutSecrets(cam: CameraConfig): unknown {
  const { username: _u, password: _p, ...rest } = cam;
  return rest;
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;
const round2 = (v: number) => Math.round(v * 100) / 100;
