// Evidence of violations, as the analytics see it: the ViolationEvidence a violation hands its capture to (an
// evidence package builder, inference/evidence, or the images below), and EvidenceStore, the images of a box
// without packages: the analysed frame and the object crop as JPEGs in one directory.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EventOf, Evidence, EvidenceImages } from '../../contract/event.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { RgbFrame } from '../../ingest/frame.js';
import { encodeJpeg } from '../../ingest/jpeg.js';
import type { Box } from '../tracking/types.js';

/** The violations that carry evidence. */
export type ViolationEvent = EventOf<'red_light' | 'wrong_way' | 'stopped_vehicle' | 'speeding'>;

/** What a violation hands over for its evidence. */
export interface ViolationCapture {
  /** The event as it will be sent (id, time, object, rule, attributes); `evidence` is filled in from the result. */
  event: ViolationEvent;
  /** The object's box at the violation, camera pixels. */
  box: Box;
  /** The analysed frame (the detector's input), when there is one. */
  frame?: RgbFrame;
}

/** Takes the evidence of violations (one per camera). */
export interface ViolationEvidence {
  /**
   * Starts taking the evidence; resolves with what goes into the event's `evidence`. Undefined when refused
   * (too many in flight, nothing to take it from): the violation goes without.
   */
  capture(c: ViolationCapture): Promise<Evidence> | undefined;
  /** How long a violation waits for its evidence before it is sent without, ms. */
  readonly timeout_ms: number;
  /** Shutdown: finish with what there is now instead of waiting for more (video after the violation). */
  hurry?(): void;
}

/** Files this store owns: `<uuid>_<camera>_<type>-frame.jpg` / `-crop.jpg` (UUIDv7 first: name order is time order). */
const OWNED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[a-z0-9_-]+-(frame|crop)\.jpg$/;
/** Crop margin around the box, as a fraction of its size per side. */
const CROP_MARGIN = 0.15;

export interface EvidenceOptions {
  /** JPEG quality of the full frame, 1-100. Default 80. */
  frame_quality?: number;
  /** JPEG quality of the crop, 1-100. Default 90. */
  crop_quality?: number;
  /** Jobs in flight before new ones are refused (each holds a copy of a frame). Default 4. */
  max_pending?: number;
  /** The ffmpeg that encodes the JPEGs. Default `ffmpeg` on the PATH. */
  ffmpeg?: string;
  log?: Logger;
}

export interface EvidenceRequest {
  frame: RgbFrame;
  /** Object box in camera pixels. */
  box: Box;
  /** Camera frame size, the space of `box`. */
  camera: { width: number; height: number };
  /** File name stem, e.g. `<event id>_<camera>_<type>`; must start with the event's UUIDv7. */
  name: string;
}

export interface EvidenceStats {
  written: number;
  failed: number;
  /** Refused because `max_pending` jobs were in flight. */
  dropped: number;
  pending: number;
  /** Files removed to stay within the space bound. */
  deleted: number;
  bytes: number;
  files: number;
}

interface Entry {
  name: string;
  size: number;
}

const stores = new Map<string, EvidenceStore>();

/**
 * Evidence JPEGs (frame + object crop) in one directory, within a space bound: after each write the oldest
 * files are deleted until the total is under `max_bytes`. Each JPEG is encoded by a short-lived ffmpeg
 * (ingest/jpeg.ts); the caller's thread only copies the frame. Cameras sharing a directory must share the store
 * (`EvidenceStore.forDir`), so the bound counts every camera's files once.
 */
export class EvidenceStore {
  private readonly index: Entry[] = [];
  private total = 0;
  private sorted = true;
  private ready: Promise<void> | undefined;
  private readonly counters = { written: 0, failed: 0, dropped: 0, pending: 0, deleted: 0 };
  private readonly maxPending: number;

  constructor(
    readonly dir: string,
    readonly max_bytes: number,
    private readonly opts: EvidenceOptions = {},
  ) {
    this.maxPending = opts.max_pending ?? 4;
  }

  /** The store for a directory, created on first use (one per process and directory). */
  static forDir(dir: string, max_mb: number, opts?: EvidenceOptions): EvidenceStore {
    const key = resolve(dir);
    let s = stores.get(key);
    if (!s) stores.set(key, (s = new EvidenceStore(key, max_mb * 1024 * 1024, opts)));
    return s;
  }

  stats(): EvidenceStats {
    return { ...this.counters, bytes: this.total, files: this.index.length };
  }

  /**
   * Starts writing evidence; the promise resolves with the hashes and file names once both files are on disk.
   * Returns undefined (and counts a drop) when too many jobs are already in flight. The frame pixels are
   * copied before returning, so the caller may reuse its buffer.
   */
  capture(req: EvidenceRequest): Promise<EvidenceImages> | undefined {
    if (this.counters.pending >= this.maxPending) {
      this.counters.dropped++;
      return undefined;
    }
    const frame: RgbFrame = { width: req.frame.width, height: req.frame.height, data: Buffer.from(req.frame.data) };
    this.counters.pending++;
    return this.write({ ...req, frame }).then(
      (ev) => {
        this.counters.pending--;
        this.counters.written++;
        return ev;
      },
      (err: unknown) => {
        this.counters.pending--;
        this.counters.failed++;
        throw err;
      },
    );
  }

  private async write(req: EvidenceRequest): Promise<EvidenceImages> {
    this.ready ??= this.scan();
    await this.ready;
    const { frame } = req;
    const ffmpeg = this.opts.ffmpeg ? { ffmpeg: this.opts.ffmpeg } : {};
    const [full, crop] = await Promise.all([
      encodeJpeg(frame, { quality: this.opts.frame_quality ?? 80, ...ffmpeg }),
      encodeJpeg(frame, { quality: this.opts.crop_quality ?? 90, region: cropRegion(req.box, req.camera, frame), ...ffmpeg }),
    ]);
    const frame_file = `${req.name}-frame.jpg`;
    const crop_file = `${req.name}-crop.jpg`;
    await Promise.all([this.put(frame_file, full), this.put(crop_file, crop)]);
    await this.enforce();
    return { frame_sha256: sha256(full), crop_sha256: sha256(crop), frame_file, crop_file };
  }

  /** Atomic write (temporary name, then rename), so a file named in an event is always complete. */
  private async put(name: string, data: Buffer): Promise<void> {
    const tmp = join(this.dir, `.${name}.tmp`);
    await writeFile(tmp, data);
    await rename(tmp, join(this.dir, name));
    this.index.push({ name, size: data.length });
    this.total += data.length;
    this.sorted = false;
  }

  private async enforce(): Promise<void> {
    if (this.total <= this.max_bytes) return;
    if (!this.sorted) {
      this.index.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      this.sorted = true;
    }
    // A violation's two images go together (its crop sorts just before its frame): one alone is no evidence.
    let stem: string | undefined;
    while (this.index.length > 0 && (this.total > this.max_bytes || stemOf(this.index[0]!.name) === stem)) {
      const e = this.index.shift()!;
      stem = stemOf(e.name);
      this.total -= e.size;
      this.counters.deleted++;
      try {
        await unlink(join(this.dir, e.name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log?.warn({ file: e.name, err: errorMessage(err) }, 'evidence: could not delete');
      }
    }
  }

  /** Indexes the files left by earlier runs (only names this store writes; nothing else is ever deleted). */
  private async scan(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (!OWNED.test(name)) continue;
      try {
        const st = await stat(join(this.dir, name));
        this.index.push({ name, size: st.size });
        this.total += st.size;
      } catch {
        // vanished meanwhile
      }
    }
    this.sorted = false;
    await this.enforce();
  }
}

/** A camera's violations take the two images of an EvidenceStore (the analysed frame must be there). */
export class ImageEvidence implements ViolationEvidence {
  readonly timeout_ms = 5_000;

  constructor(
    private readonly store: EvidenceStore,
    private readonly camera: { id: string; frame: { width: number; height: number } },
  ) {}

  capture(c: ViolationCapture): Promise<Evidence> | undefined {
    if (!c.frame) return undefined;
    return this.store.capture({ frame: c.frame, box: c.box, camera: this.camera.frame, name: `${c.event.id}_${this.camera.id}_${c.event.type}` });
  }
}

/** The event's part of an image's name: `<uuid>_<camera>_<type>`. */
const stemOf = (name: string) => name.replace(/-(frame|crop)\.jpg$/, '');

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The box plus a margin, mapped from camera pixels to the frame's pixels and clamped to it. */
export function cropRegion(box: Box, camera: { width: number; height: number }, frame: { width: number; height: number }) {
  const sx = frame.width / camera.width;
  const sy = frame.height / camera.height;
  const mw = (box[2] - box[0]) * CROP_MARGIN;
  const mh = (box[3] - box[1]) * CROP_MARGIN;
  const x1 = Math.max(0, Math.floor((box[0] - mw) * sx));
  const y1 = Math.max(0, Math.floor((box[1] - mh) * sy));
  const x2 = Math.min(frame.width, Math.ceil((box[2] + mw) * sx));
  const y2 = Math.min(frame.height, Math.ceil((box[3] + mh) * sy));
  const left = Math.min(x1, frame.width - 2);
  const top = Math.min(y1, frame.height - 2);
  return { left, top, width: Math.max(2, x2 - left), height: Math.max(2, y2 - top) };
}
