import type { EventObject, EventType } from '../../contract/event.js';
import type { Logger } from '../../core/log.js';
import type { AnalyticsConfig, CameraConfig } from '../../config/schema/index.js';
import { outsideFrame, Tracker, type Track } from '../tracking/tracker.js';
import type { Box, Detection, FrameContext } from '../tracking/types.js';
import { EvidenceStore, ImageEvidence, type ViolationEvidence } from './evidence.js';
import { LineFlow, type Tally } from './flow.js';
import { anchorOf } from './geometry.js';
import { Homography } from './homography.js';
import { ObjectLifecycle, type TrackSummary } from './lifecycle.js';
import { CountingLines, type Crossing } from './lines.js';
import { EventOutlet, round, roundBox, type DeviceRef, type EventSink, type Stamp } from './outlet.js';
import { RedLight } from './red-light.js';
import type { SignalState } from './signals.js';
import { SpeedMeter } from './speed.js';
import { Speeding } from './speeding.js';
import { Violations } from './violations.js';
import { Zones } from './zones.js';

export interface CameraAnalyticsOptions {
  /**
   * Where violation evidence goes: an evidence package builder (inference/evidence), an image store, or none
   * (false). Default: images in the process-wide store of `analytics.evidence.dir`.
   */
  evidence?: ViolationEvidence | EvidenceStore | false;
  /** First track id (default 1): seed it from persisted state to keep ids unique across restarts. */
  first_track_id?: number;
}

export interface CameraAnalyticsStats {
  frames: number;
  detections: number;
  /** Live tracks, tentative included. */
  tracks: number;
  /** Confirmed tracks (seen or briefly lost). */
  tracks_confirmed: number;
  track_ids_issued: number;
  events: Partial<Record<EventType, number>>;
  events_total: number;
  /** Tracker + analytics time per update(), ms: moving average (α 0.05), maximum, last. */
  update_ms_avg: number;
  update_ms_max: number;
  update_ms_last: number;
  /** Violations sent with evidence, without (no frame, refused, failed, timed out), and still waiting. */
  evidence_attached: number;
  evidence_missing: number;
  evidence_pending: number;
}

/**
 * Tracking and traffic analytics of one camera, composed of parts that each own their state: the tracker,
 * the object lifecycle, counting lines, zones (occupancy, dwell, wrong way), the speed meter, line flow,
 * red light, and violations with evidence. Every event is a `roadside.event/1` draft handed to `emit`.
 * Geometry is in camera pixels; durations and speeds use the monotonic clock, event times and bins the wall
 * clock. `update()` is synchronous and allocation-light; evidence JPEGs are encoded off the thread and a
 * violation is emitted once its evidence is on disk (see Violations).
 *
 * The constructor throws `AgentError` (`CALIBRATION_INVALID`, `CALIBRATION_DEGENERATE`) when the camera's
 * calibration does not define a ground plane.
 */
export class CameraAnalytics {
  private readonly tracker: Tracker;
  private readonly outlet: EventOutlet;
  private readonly violations: Violations;
  private readonly speeding: Speeding;
  private readonly lifecycle: ObjectLifecycle;
  private readonly lines: CountingLines;
  private readonly zones: Zones;
  private readonly speed: SpeedMeter;
  private readonly flow: LineFlow | undefined;
  private readonly redLight: RedLight;
  /** Per track, the flow tally of each of its counted crossings (lines.crossed order), to correct the class. */
  private readonly tallies = new Map<number, Array<Tally | undefined>>();
  private last: Stamp | undefined;
  /** Confirmed tracks after the last frame (see tracks()). */
  private active: readonly Track[] = [];
  private readonly counters = { frames: 0, detections: 0, update_ms_avg: 0, update_ms_max: 0, update_ms_last: 0 };

  constructor(
    private readonly camera: CameraConfig,
    analytics: AnalyticsConfig,
    device: DeviceRef,
    emit: EventSink,
    log?: Logger,
    opts: CameraAnalyticsOptions = {},
  ) {
    const alog = log?.child({ mod: 'analytics', camera: camera.id });
    // With motion gating a still scene is analysed only every force_interval_s: a parked car must not "vanish"
    // between two forced frames, nor that time count as an outage.
    const gated = camera.motion.enabled ? camera.motion.force_interval_s : 0;
    const maxAge = Math.max(analytics.tracker.max_age_s, 1.5 * gated);
    if (maxAge > analytics.tracker.max_age_s) {
      alog?.info({ max_age_s: maxAge, configured_s: analytics.tracker.max_age_s }, 'tracker max_age_s raised above the motion gate interval');
    }
    this.tracker = new Tracker(analytics.tracker, {
      max_age_s: maxAge,
      frame: camera.frame,
      ...(opts.first_track_id !== undefined ? { first_id: opts.first_track_id } : {}),
    });
    // Speed events also go past the speeding rule (lines with a limit).
    this.outlet = new EventOutlet(device, camera.id, (ev) => (emit(ev), this.speeding.seen(ev)), alog);
    const ev = opts.evidence ?? EvidenceStore.forDir(analytics.evidence.dir, analytics.evidence.max_mb, log ? { log: log.child({ mod: 'evidence' }) } : {});
    this.violations = new Violations(camera, ev === false ? undefined : ev instanceof EvidenceStore ? new ImageEvidence(ev, camera) : ev, this.outlet, alog);
    this.speeding = new Speeding(camera.lines, camera.zones, this.outlet, this.violations);
    const cal = camera.calibration;
    this.speed = new SpeedMeter(cal ? new Homography(cal.image, cal.world) : undefined, cal?.position_error_m ?? 0.5, this.outlet, camera.frame);
    this.lines = new CountingLines(camera.lines, this.outlet, this.objectOf, (c) => this.crossed(c));
    this.zones = new Zones(camera.zones, this.outlet, this.violations, this.objectOf);
    this.redLight = new RedLight(analytics.signals.map((s) => s.id), camera.lines, this.outlet, this.violations);
    if (camera.lines.length > 0) {
      const gapCap = Math.max(2000, 1500 * gated, 3000 / camera.detection_fps);
      this.flow = new LineFlow(camera.lines, analytics.flow_bin_s * 1000, gapCap, this.outlet);
    }
    this.lifecycle = new ObjectLifecycle(analytics.update_interval_s * 1000, this.outlet, {
      object: this.objectOf,
      zones: (id) => this.zones.current(id),
      speedKmh: (id) => {
        const s = this.speed.current(id);
        return s ? s.speed_ms * 3.6 : undefined;
      },
    });
  }

  /** Latest state of a traffic signal (`at_ms`: wall-clock epoch ms of the change; default now). */
  setSignal(id: string, state: SignalState, at_ms: number = Date.now()): void {
    this.redLight.setSignal(id, state, at_ms);
  }

  /** Tracks and analyses one frame's detections. Synchronous; emits events through `emit`. */
  update(ctx: FrameContext, detections: readonly Detection[]): void {
    const t0 = performance.now();
    const now: Stamp = { wall: ctx.captured_at_ms, mono: ctx.mono_ms, synced: ctx.clock_synced };
    this.last = now;
    this.counters.frames++;
    this.counters.detections += detections.length;
    this.flow?.advance(now);

    const res = this.tracker.update(detections, ctx.mono_ms);
    this.active = res.active;
    const fresh = new Set<number>();
    for (const t of res.confirmed) {
      this.confirm(t, ctx, now);
      fresh.add(t.id);
    }
    for (const t of res.active) {
      if (!t.observed || fresh.has(t.id) || !this.lifecycle.has(t.id)) continue;
      this.observe(t, t.box, t.detection?.box, now, ctx);
      this.lifecycle.maybeUpdate(t, now);
    }
    for (const t of res.ended) {
      if (this.lifecycle.has(t.id)) this.end(t, outsideFrame(t.box, this.camera.frame) ? 'left_frame' : 'lost', now);
    }
    this.speed.resolveDue(now.mono);
    if (this.flow) {
      const occ = this.lines.occupancy(res.active);
      this.flow.endFrame(occ.lines, now.mono, occ.lanes);
    }

    const ms = performance.now() - t0;
    const c = this.counters;
    c.update_ms_last = ms;
    c.update_ms_avg = c.frames === 1 ? ms : c.update_ms_avg + 0.05 * (ms - c.update_ms_avg);
    if (ms > c.update_ms_max) c.update_ms_max = ms;
  }

  /**
   * Shutdown: ends every track (object_end "shutdown", zone exits, pending speeds), ends the flow bin in
   * progress (its `observed_s` tells it is partial) and waits for evidence still being written (packages take
   * the video recorded so far instead of waiting for post_s).
   * `now`: wall-clock epoch ms, or capture times; default the last frame's.
   */
  async flush(now?: number | Pick<FrameContext, 'captured_at_ms' | 'mono_ms'>): Promise<void> {
    const last = this.last;
    let stamp: Stamp | undefined = last;
    if (typeof now === 'number') stamp = { wall: now, mono: last ? last.mono + Math.max(0, now - last.wall) : 0, synced: last?.synced ?? false };
    else if (now) stamp = { wall: now.captured_at_ms, mono: now.mono_ms, synced: last?.synced ?? false };
    this.active = [];
    if (stamp) {
      for (const t of this.tracker.endAll()) if (this.lifecycle.has(t.id)) this.end(t, 'shutdown', stamp);
      this.flow?.flush(stamp);
    }
    await this.violations.settled(true);
  }

  /** The confirmed tracks after the last frame as events show them, and whether each was seen in it (overlays). */
  tracks(): Array<EventObject & { seen: boolean }> {
    return this.active.filter((t) => this.lifecycle.has(t.id)).map((t) => ({ ...this.objectOf(t), seen: t.observed }));
  }

  stats(): CameraAnalyticsStats {
    const c = this.counters;
    return {
      frames: c.frames,
      detections: c.detections,
      tracks: this.tracker.size,
      tracks_confirmed: this.lifecycle.size,
      track_ids_issued: this.tracker.issued,
      ...this.outlet.stats(),
      update_ms_avg: round(c.update_ms_avg, 4),
      update_ms_max: round(c.update_ms_max, 4),
      update_ms_last: round(c.update_ms_last, 4),
      ...this.violations.stats(),
    };
  }

  /** A track was confirmed: its first detections are replayed, so a line crossed or a zone entered while it
   * was tentative counts; those events wait until its object_new is out. */
  private confirm(t: Track, ctx: FrameContext, now: Stamp): void {
    const first = this.lifecycle.begin(t, now);
    this.lines.begin(t);
    this.zones.begin(t.id);
    this.speed.begin(t.id);
    this.outlet.hold();
    if (t.first_seen_ms < now.mono) this.observe(t, t.first_box, t.first_box, first, undefined);
    this.observe(t, t.box, t.detection?.box, now, ctx);
    this.outlet.release(this.lifecycle.announce(t, now));
    this.lifecycle.said(t, now.mono);
  }

  /** `box`: filtered box (lines, zones); `raw`: the detection's box (speed); `ctx`: frame for evidence. */
  private observe(t: Track, box: Box, raw: Box | undefined, now: Stamp, ctx: FrameContext | undefined): void {
    const [x, y] = anchorOf(box);
    this.lifecycle.observe(t, x, y, box, now);
    this.speed.observe(t.id, raw, now.mono);
    const o = { track: t, at: { x, y, mono: now.mono, wall: now.wall }, now, ctx };
    this.lines.step(o);
    this.zones.step(o);
    if (this.speeding.zoned) this.speeding.observe(t, this.zones.current(t.id), this.speed.current(t.id), this.objectOf, now, ctx);
  }

  /** A counted line crossing: flow volume, the speed at the line, red light. */
  private crossed(c: Crossing): void {
    const measured = this.speed.measures(c.track.id);
    const counted = this.flow?.count(c, measured);
    let list = this.tallies.get(c.track.id);
    if (!list) this.tallies.set(c.track.id, (list = []));
    list.push(counted?.tally);
    if (measured) this.speed.pend(c, counted?.listener);
    this.redLight.check(c);
  }

  private end(t: Track, reason: 'lost' | 'left_frame' | 'shutdown', now: Stamp): void {
    this.zones.exitAll(t, now);
    this.speed.settle(t.id);
    this.lifecycle.end(t, reason, now, { zones_visited: this.zones.visited(t.id), max_speed_kmh: this.speed.maxKmh(t.id), ...this.crossings(t) });
    this.lines.drop(t.id);
    this.zones.drop(t.id);
    this.speed.drop(t.id);
    this.speeding.drop(t.id);
    this.tallies.delete(t.id);
  }

  /**
   * The track's crossings for object_end. The class of a track is a vote over its whole life: a crossing
   * that reported another class than the final one is corrected, in its flow bin while that is open, and
   * object_end tells (class_corrected_from).
   */
  private crossings(t: Track): Pick<TrackSummary, 'lines_crossed' | 'class_corrected_from'> {
    const tallies = this.tallies.get(t.id) ?? [];
    let from: string | undefined;
    const lines_crossed = this.lines.crossed(t.id).map((c, i): TrackSummary['lines_crossed'][number] => {
      if (c.class === t.class_name) return { ...c };
      from ??= c.class;
      const tally = tallies[i];
      return { ...c, flow_corrected: tally !== undefined && this.flow !== undefined && this.flow.reclass(tally, t.class_name) };
    });
    return { lines_crossed, class_corrected_from: from };
  }

  private readonly objectOf = (t: Track): EventObject => {
    const o: EventObject = { track_id: t.id, class: t.class_name, score: round(t.score, 3), box: roundBox(t.box) };
    const s = this.speed.current(t.id);
    if (s) {
      o.speed_kmh = round(s.speed_ms * 3.6, 1);
      o.speed_uncertainty_kmh = round(s.sigma_ms * 3.6, 1);
    }
    return o;
  };
}
