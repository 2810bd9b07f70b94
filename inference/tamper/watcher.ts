// Camera tamper and view-shift watch of one camera: every check_interval_s it measures the frame the pipeline
// already has (a 64×48 grey thumbnail and a few thousand raw samples; well under 1 ms) against the camera's
// reference view and raises camera_tamper events with hysteresis.
import type { CameraConfig, TamperConfig } from '../../config/schema/index.js';
import { isoTime, makeEvent, type TamperKind, type TamperMeasures } from '../../contract/event.js';
import type { HealthReason } from '../../contract/health.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { DeviceRef, EventSink } from '../analytics/index.js';
import type { Frame } from '../../ingest/types.js';
import { Hysteresis, type Stamp, type Transition } from './hysteresis.js';
import { FrameSampler, THUMB_H, THUMB_W, type FrameMeasures, type PictureRegion } from './measures.js';
import { loadReference, prepareReference, REFERENCE_SCHEMA, ReferenceLearner, retireReference, saveReference, type TamperReference } from './reference.js';
import { edgeMap, edgeMatch } from './registration.js';

/** Kinds judged against the reference: rebase-reference clears them. */
const REFERENCE_KINDS: ReadonlySet<TamperKind> = new Set<TamperKind>(['covered', 'blurred', 'shifted']);
/** Edge similarity from which a registration's offset is trusted. */
const MATCH_OK = 0.3;
/** A picture whose luma p95 - p5 is below this is flat: no contrast to explain a lack of detail. */
const FLAT_SPREAD = 24;
/** Least detail (grey levels per thumbnail pixel) for a picture to become the reference. */
const MIN_REFERENCE_DETAIL = 2;
/** The reported offset is the median of the trusted ones among this many latest checks. */
const SHIFT_WINDOW = 3;
/** Frames this far apart (camera reconnect) are not compared for a frozen picture. */
const GAP_RESET_MS = 10_000;

export interface TamperWatcherOptions {
  camera: Pick<CameraConfig, 'id' | 'tamper'>;
  device: DeviceRef;
  /** Where camera_tamper events go: the sink of the camera's analytics events (the outbox). */
  emit: EventSink;
  /** Directory of the stored references (`<device.data_dir>/tamper`); undefined: in memory only (offline analysis). */
  dir?: string;
  clockSynced: () => boolean;
  log: Logger;
  /** Every change of the active kinds, for the camera status and health (see tamperHealthReason). */
  onChange?: (camera: string, active: TamperKind[]) => void;
}

export interface TamperStats {
  camera: string;
  enabled: boolean;
  active: TamperKind[];
  /** learning: no reference yet (only too_dark, overexposed and frozen are judged). */
  reference: 'learning' | 'ready';
  reference_at: string | null;
  /** Seconds of stable picture gathered towards a new reference. */
  learning_s: number;
  frames: number;
  checks: number;
  check_ms_mean: number;
  check_ms_max: number;
  /** Check time spread over every frame offered: what the watch costs the frame loop, ms. */
  ms_per_frame: number;
  last: TamperMeasures | null;
}

export interface RebaseResult {
  previous_reference_at: string | null;
  cleared: TamperKind[];
  ready_in_s: number;
}

const r1 = (v: number) => Math.round(v * 10) / 10;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

/** The picture inside a frame: without the letterbox bands. */
export function pictureRegion(frame: Frame): PictureRegion {
  const lb = frame.letterbox;
  if (!lb) return { x: 0, y: 0, width: frame.width, height: frame.height };
  return {
    x: lb.pad_x,
    y: lb.pad_y,
    width: Math.min(frame.width - lb.pad_x, Math.round(frame.source_width * lb.scale)),
    height: Math.min(frame.height - lb.pad_y, Math.round(frame.source_height * lb.scale)),
  };
}

/** The health condition of a camera's active kinds (undefined: none); blurred alone is degraded, the rest an error. */
export function tamperHealthReason(camera: string, kinds: readonly TamperKind[]): HealthReason | undefined {
  if (kinds.length === 0) return undefined;
  const severity = kinds.every((k) => k === 'blurred') ? 'warn' : 'error';
  return { code: 'camera_tamper', severity, camera, message: `camera ${camera} view: ${kinds.join(', ')}` };
}

/**
 * The watch of one camera. `offer` every frame (it reads it synchronously and keeps no reference); a check runs when
 * check_interval_s has passed on the frame clock. Without a reference it learns one first: after
 * reference_after_s of stable picture it is taken and stored in `dir`. Covered, blurred and shifted are judged
 * against it; too dark, overexposed and frozen need none. A kind behind a worse one (blur behind a black cover)
 * is not judged, so its alarm neither rises nor clears meanwhile.
 */
export class TamperWatcher {
  private readonly cfg: TamperConfig;
  private readonly log: Logger;
  private readonly alarms = new Map<TamperKind, Hysteresis>();
  private readonly learner: ReferenceLearner;
  private readonly edges = new Float32Array(THUMB_W * THUMB_H);
  /** Offsets of the latest checks, camera pixels; undefined where the registration was not trusted. */
  private readonly shifts: Array<{ dx: number; dy: number } | undefined> = [];
  private sampler: FrameSampler | undefined;
  private ref: TamperReference | undefined;
  private lastCheck: number | undefined;
  private unchangedSince: number | undefined;
  private rebasePending = false;
  private last: TamperMeasures | null = null;
  private failed = false;
  private readonly counters = { frames: 0, checks: 0, check_ms_total: 0, check_ms_max: 0 };

  constructor(private readonly opts: TamperWatcherOptions) {
    this.cfg = opts.camera.tamper;
    this.log = opts.log.child({ mod: 'tamper', camera: opts.camera.id });
    const clear_ms = this.cfg.clear_s * 1000;
    // One odd check does not end an episode that is still rising.
    const gap_ms = 1.5 * this.cfg.check_interval_s * 1000;
    for (const kind of this.cfg.kinds) this.alarms.set(kind, new Hysteresis(this.cfg.raise_s * 1000, clear_ms, gap_ms));
    this.learner = new ReferenceLearner(this.cfg.reference_after_s * 1000);
  }

  /** Loads the stored reference, if any (an unusable file is logged and a new reference learned). */
  start(): void {
    if (!this.cfg.enabled || !this.opts.dir) return;
    const { ref, problem } = loadReference(this.opts.dir, this.opts.camera.id);
    if (problem) this.log.warn({ problem }, 'stored tamper reference unusable: learning a new one');
    this.ref = ref;
    if (ref) this.log.info({ reference_at: ref.data.taken_at }, 'tamper reference loaded');
  }

  /** One frame of the camera. Never throws into the frame loop (a failure is logged once). */
  offer(frame: Frame): void {
    if (!this.cfg.enabled) return;
    this.counters.frames++;
    const since = this.lastCheck === undefined ? Infinity : frame.mono_ms - this.lastCheck;
    if (since >= 0 && since < this.cfg.check_interval_s * 1000 - 1) return;
    const t0 = performance.now();
    try {
      this.check(frame);
    } catch (err) {
      if (!this.failed) this.log.error({ err: errorMessage(err) }, 'tamper check failed (logged once)');
      this.failed = true;
    }
    const ms = performance.now() - t0;
    this.counters.checks++;
    this.counters.check_ms_total += ms;
    this.counters.check_ms_max = Math.max(this.counters.check_ms_max, ms);
  }

  /** Active alarms, in configuration order. */
  active(): TamperKind[] {
    return [...this.alarms].filter(([, h]) => h.active).map(([k]) => k);
  }

  /**
   * Forgets the reference (after a legitimate re-aim): the stored file is moved aside, the alarms against it
   * clear at the next check and a new reference is learned.
   */
  rebase(): RebaseResult {
    const result = {
      previous_reference_at: this.ref?.data.taken_at ?? null,
      cleared: this.active().filter((k) => REFERENCE_KINDS.has(k)),
      ready_in_s: this.cfg.reference_after_s,
    };
    this.rebasePending = true;
    if (this.opts.dir) retireReference(this.opts.dir, this.opts.camera.id);
    this.log.info({ previous_reference_at: result.previous_reference_at }, 'tamper reference dropped: learning a new one');
    return result;
  }

  stats(): TamperStats {
    const c = this.counters;
    return {
      camera: this.opts.camera.id,
      enabled: this.cfg.enabled,
      active: this.active(),
      reference: this.ref ? 'ready' : 'learning',
      reference_at: this.ref?.data.taken_at ?? null,
      learning_s: this.ref || this.lastCheck === undefined ? 0 : r1(this.learner.progress_s(this.lastCheck)),
      frames: c.frames,
      checks: c.checks,
      check_ms_mean: c.checks ? r3(c.check_ms_total / c.checks) : 0,
      check_ms_max: r3(c.check_ms_max),
      ms_per_frame: c.frames ? r3(c.check_ms_total / c.frames) : 0,
      last: this.last,
    };
  }

  private check(frame: Frame): void {
    const now: Stamp = { mono: frame.mono_ms, wall: frame.captured_at_ms };
    const sampler = this.samplerFor(frame);
    const previous = this.lastCheck;
    if (previous !== undefined && (now.mono - previous > GAP_RESET_MS || now.mono < previous)) {
      sampler.resetDiff();
      this.unchangedSince = undefined;
    }
    this.lastCheck = now.mono;
    if (this.rebasePending) this.dropReference(now);
    if (this.ref && (this.ref.data.frame.width !== frame.width || this.ref.data.frame.height !== frame.height)) {
      this.log.warn({ reference: this.ref.data.frame, frame: { width: frame.width, height: frame.height } }, 'frame size differs from the tamper reference: learning a new one');
      this.ref = undefined;
    }
    const m = sampler.sample(frame);
    const cfg = this.cfg;
    const dark = m.luma_p95 < cfg.dark_luma;
    const bright = m.luma_p5 > cfg.bright_luma;
    const exposureBad = dark || bright;
    const still = Number.isFinite(m.frame_diff) && m.frame_diff <= cfg.frozen_diff;
    if (!still) this.unchangedSince = undefined;
    else this.unchangedSince ??= previous ?? now.mono;

    const seen = new Map<TamperKind, boolean | undefined>([
      ['too_dark', dark],
      ['overexposed', bright],
      // A clipped picture shows no sensor noise: frozen cannot be told.
      ['frozen', exposureBad ? undefined : still],
    ]);
    const judged = this.ref ? this.judge(m, frame, exposureBad) : undefined;
    if (judged) for (const [k, v] of judged.seen) seen.set(k, v);
    if (!this.ref) {
      const eligible = !exposureBad && !still && m.detail >= MIN_REFERENCE_DETAIL;
      const learned = this.learner.offer(sampler.thumb, m, eligible, now.mono);
      if (learned) this.adopt(learned, frame, now);
    }

    const measures: TamperMeasures = {
      luma_mean: r1(m.luma_mean),
      luma_p5: m.luma_p5,
      luma_p95: m.luma_p95,
      detail: r3(m.detail),
      detail_ratio: judged ? r3(judged.detail_ratio) : null,
      sharpness_ratio: judged ? r3(judged.sharpness_ratio) : null,
      shift_dx_px: judged?.offset ? r1(judged.offset.dx) : null,
      shift_dy_px: judged?.offset ? r1(judged.offset.dy) : null,
      match: judged ? r3(Math.max(-1, Math.min(1, judged.match))) : null,
      frame_diff: Number.isFinite(m.frame_diff) ? r3(m.frame_diff) : null,
      unchanged_s: this.unchangedSince === undefined ? 0 : r1((now.mono - this.unchangedSince) / 1000),
    };
    this.last = measures;
    let changed = false;
    for (const [kind, h] of this.alarms) {
      const t = h.update(seen.get(kind), now);
      if (!t) continue;
      this.send(kind, t, now, measures);
      changed = true;
    }
    if (changed) this.opts.onChange?.(this.opts.camera.id, this.active());
  }

  /** The kinds judged against the reference, and the measures that say so. */
  private judge(m: FrameMeasures, frame: Frame, exposureBad: boolean) {
    const ref = this.ref!;
    const r = ref.data;
    const thumb = this.sampler!.thumb;
    const detail_ratio = m.detail / r.detail;
    const sharpness_ratio = m.sharpness / r.sharpness;
    const reg = ref.correlator.match(thumb);
    edgeMap(thumb, THUMB_W, THUMB_H, this.edges);
    const match = edgeMatch(this.edges, ref.edges, THUMB_W, THUMB_H, Math.round(reg.dx), Math.round(reg.dy));
    const sx = frame.source_width / THUMB_W;
    const sy = frame.source_height / THUMB_H;
    this.shifts.push(match >= MATCH_OK ? { dx: reg.dx * sx, dy: reg.dy * sy } : undefined);
    if (this.shifts.length > SHIFT_WINDOW) this.shifts.shift();
    const offset = medianOffset(this.shifts);

    const spread = m.luma_p95 - m.luma_p5;
    // Little detail for the reference, and little for the contrast there is (dusk lowers both together).
    const covered = detail_ratio < this.cfg.covered_ratio && (spread < FLAT_SPREAD || m.detail / spread < (0.5 * r.detail) / Math.max(r.spread, 1));
    const blurred = sharpness_ratio < this.cfg.blur_ratio;
    // Moved: a trusted offset beyond shift_px; or a view that matches the reference nowhere.
    const shifted = offset ? Math.hypot(offset.dx, offset.dy) > this.cfg.shift_px : match < this.cfg.min_match && !blurred ? true : undefined;
    const hidden = exposureBad || covered;
    const seen = new Map<TamperKind, boolean | undefined>([
      ['covered', exposureBad ? undefined : covered],
      ['blurred', hidden ? undefined : blurred],
      ['shifted', hidden ? undefined : shifted],
    ]);
    return { seen, detail_ratio, sharpness_ratio, match, offset };
  }

  private samplerFor(frame: Frame): FrameSampler {
    const region = pictureRegion(frame);
    const s = this.sampler;
    if (s && s.frameWidth === frame.width && s.frameHeight === frame.height && s.region.x === region.x && s.region.y === region.y && s.region.width === region.width && s.region.height === region.height) {
      return s;
    }
    this.sampler = new FrameSampler(frame.width, frame.height, region);
    return this.sampler;
  }

  private dropReference(now: Stamp): void {
    this.rebasePending = false;
    let changed = false;
    for (const kind of REFERENCE_KINDS) {
      const t = this.alarms.get(kind)?.reset();
      if (!t) continue;
      if (this.last) this.send(kind, t, now, this.last);
      changed = true;
    }
    this.ref = undefined;
    this.shifts.length = 0;
    this.learner.restart();
    if (changed) this.opts.onChange?.(this.opts.camera.id, this.active());
  }

  private adopt(learned: { thumb: Float32Array; detail: number; spread: number; sharpness: number }, frame: Frame, now: Stamp): void {
    const data = {
      schema: REFERENCE_SCHEMA,
      camera: this.opts.camera.id,
      taken_at: isoTime(now.wall),
      frame: { width: frame.width, height: frame.height },
      source: { width: frame.source_width, height: frame.source_height },
      thumb: { width: THUMB_W, height: THUMB_H, luma_base64: Buffer.from(Uint8Array.from(learned.thumb)).toString('base64') },
      detail: r3(learned.detail),
      spread: learned.spread,
      sharpness: r3(learned.sharpness),
    } as const;
    this.ref = prepareReference(data, learned.thumb);
    this.shifts.length = 0;
    if (this.opts.dir) {
      try {
        saveReference(this.opts.dir, data);
      } catch (err) {
        this.log.error({ err: errorMessage(err), dir: this.opts.dir }, 'tamper reference not stored (kept in memory until restart)');
      }
    }
    this.log.info({ taken_at: data.taken_at, detail: data.detail, sharpness: data.sharpness }, 'tamper reference taken');
  }

  private send(kind: TamperKind, t: Transition, now: Stamp, measures: TamperMeasures): void {
    const cleared = t.to === 'clear';
    const { device } = this.opts;
    const ev = makeEvent({
      type: 'camera_tamper',
      device: device.id,
      site: device.site,
      camera: this.opts.camera.id,
      captured_at_ms: now.wall,
      mono_ms: now.mono,
      clock_synced: this.opts.clockSynced(),
      attributes: {
        kind,
        cleared,
        since: isoTime(t.since.wall),
        ...(cleared ? { duration_s: r1(Math.max(0, t.lastSeen.mono - t.since.mono) / 1000) } : {}),
        reference_at: this.ref?.data.taken_at ?? null,
        measures,
      },
    });
    if (cleared) this.log.info({ kind, since: ev.attributes.since }, 'camera tamper cleared');
    else this.log.warn({ kind, since: ev.attributes.since, measures }, 'camera tamper');
    try {
      this.opts.emit(ev);
    } catch (err) {
      this.log.error({ err: errorMessage(err), kind }, 'tamper event sink threw');
    }
  }
}

/** Median of the trusted offsets, when at least two of the latest checks were trusted. */
function medianOffset(shifts: ReadonlyArray<{ dx: number; dy: number } | undefined>): { dx: number; dy: number } | undefined {
  const ok = shifts.filter((s): s is { dx: number; dy: number } => s !== undefined);
  if (ok.length < 2) return undefined;
  const med = (v: number[]) => {
    const s = v.sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  return { dx: med(ok.map((s) => s.dx)), dy: med(ok.map((s) => s.dy)) };
}
