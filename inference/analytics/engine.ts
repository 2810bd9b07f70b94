import {
  makeEvent,
  isoTime,
  type EventDraft,
  type EventInput,
  type EventObject,
  type EventOf,
  type EventType,
  type Evidence,
} from '../../contract/event.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { AnalyticsConfig, CameraConfig, LineConfig, ZoneConfig } from '../../config/schema/index.js';
import { outsideFrame, Tracker, type Track } from '../tracking/tracker.js';
import type { Box, Detection, FrameContext } from '../tracking/types.js';
import { EvidenceStore } from './evidence.js';
import { FlowBins, type FlowBin, type FlowDirection } from './flow.js';
import { anchorOf, polygonSignedDistance, segmentIntersectsBox, type Vec2 } from './geometry.js';
import { Homography } from './homography.js';
import { SignalTimeline, type SignalState } from './signals.js';
import { GroundTrack, percentile, type SpeedEstimate } from './speed.js';

/** Speed at a line is fitted over the positions this long either side of the crossing, ms. */
export const SPEED_HALF_WINDOW_MS = 600;
/** The running speed of an object is fitted over its positions this far back, ms. */
export const SPEED_TRAIL_MS = 1200;
/** An object update needs the box centre to move this much (or MOVE_FRACTION of the box size, if more), px. */
const MOVE_MIN_PX = 8;
const MOVE_FRACTION = 0.2;
/** An object update needs the speed to change this much (or SPEED_CHANGE_FRACTION of it, if more), km/h. */
const SPEED_CHANGE_KMH = 5;
const SPEED_CHANGE_FRACTION = 0.1;
/** object_end's distance_px grows in steps of at least this fraction of the box height (or pixels, if more). */
const DISTANCE_STEP = 0.1;
const DISTANCE_STEP_MIN_PX = 4;
/** A violation waits at most this long for its evidence before it goes without, ms. */
const EVIDENCE_TIMEOUT_MS = 5000;
/** A flow bin waits at most this long after its end for the speeds of its last crossings, ms. */
const FLOW_GRACE_MS = SPEED_HALF_WINDOW_MS + 1000;

export interface DeviceRef {
  id: string;
  site: string;
}

export type EventSink = (event: EventDraft) => void;

export interface CameraAnalyticsOptions {
  /** Where violation evidence goes. Default: the process-wide store of `analytics.evidence.dir`; false: none. */
  evidence?: EvidenceStore | false;
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

interface LineRt {
  cfg: LineConfig;
  index: number;
  ax: number;
  ay: number;
  /** Unit vector a→b. */
  ux: number;
  uy: number;
  len: number;
  classes: Set<string> | undefined;
  signal: SignalTimeline | undefined;
}

interface ZoneRt {
  cfg: ZoneConfig;
  index: number;
  poly: Float64Array;
  /** Bounding box of the polygon. */
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  classes: Set<string> | undefined;
  dwellMs: number | undefined;
  /** Unit allowed direction, if any. */
  dir: Vec2 | undefined;
  occupants: Set<number>;
}

/** One observation of a track: its anchor (bottom centre of the filtered box) and when. */
interface Obs {
  x: number;
  y: number;
  mono: number;
  wall: number;
}

interface Straddle {
  a: Obs;
  da: number;
  b: Obs;
  db: number;
}

interface LineTrack {
  /** Committed side: -1 left, +1 right, 0 not yet beyond the hysteresis. */
  side: number;
  /** Sign of the last signed distance that was not 0. */
  sign: number;
  last: Obs | undefined;
  lastD: number;
  /** Latest pair of observations either side of the line, towards the right (in) and towards the left (out). */
  toIn: Straddle | undefined;
  toOut: Straddle | undefined;
  /** Bit 1: counted in, bit 2: counted out. */
  counted: number;
}

interface ZoneTrack {
  inside: boolean;
  enterMono: number;
  enterWall: number;
  stopped: boolean;
  wrong: boolean;
  /** Furthest progress along the allowed direction during this stay, and where it was. */
  projMax: number;
  atMaxX: number;
  atMaxY: number;
}

interface PendingSpeed {
  line: LineRt;
  direction: 'in' | 'out';
  /** Crossing time. */
  mono: number;
  due: number;
  /** The frame that saw the crossing: the speed event carries its time and the object as it was. */
  frameWall: number;
  frameMono: number;
  clockSynced: boolean;
  object: EventObject;
  bin: FlowBin | undefined;
}

interface Snapshot {
  cls: string;
  cx: number;
  cy: number;
  size: number;
  zones: string;
  kmh: number | undefined;
}

interface TrackRt {
  t: Track;
  lines: LineTrack[];
  zones: ZoneTrack[];
  ground: GroundTrack | undefined;
  firstWall: number;
  lastWall: number;
  last: Obs | undefined;
  distancePx: number;
  distFrom: Vec2 | undefined;
  zonesVisited: string[];
  linesCrossed: Array<{ line_id: string; direction: 'in' | 'out' }>;
  speed: SpeedEstimate | undefined;
  maxSpeedKmh: number | undefined;
  snap: Snapshot;
  lastEmitMono: number;
  pending: PendingSpeed[];
}

/** Time of the frame being processed, for event envelopes. */
interface Stamp {
  wall: number;
  mono: number;
  synced: boolean;
}

const round = (v: number, digits: number) => {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
};
const roundBox = (b: Box): Box => [round(b[0], 1), round(b[1], 1), round(b[2], 1), round(b[3], 1)];

/**
 * Tracking and traffic analytics of one camera: counting lines, zones (occupancy, dwell, wrong way), speed,
 * flow bins, red-light crossings and the tracked-object lifecycle, all turned into `roadside.event/1` drafts
 * handed to `emit`. Geometry is in camera pixels; durations and speeds use the monotonic clock, event times
 * and bins the wall clock. `update()` is synchronous and allocation-light; evidence JPEGs are encoded off the
 * thread and the violation is emitted once its evidence is on disk (see `violation`).
 *
 * The constructor throws `AgentError` (`CALIBRATION_INVALID`, `CALIBRATION_DEGENERATE`) when the camera's
 * calibration does not define a ground plane.
 */
export class CameraAnalytics {
  private readonly tracker: Tracker;
  private readonly lines: LineRt[];
  private readonly zones: ZoneRt[];
  private readonly signals = new Map<string, SignalTimeline>();
  private readonly homography: Homography | undefined;
  private readonly positionErrorM: number;
  private readonly flow: FlowBins | undefined;
  private readonly evidence: EvidenceStore | undefined;
  private readonly rts = new Map<number, TrackRt>();
  private readonly withPending = new Set<TrackRt>();
  private readonly jobs = new Set<Promise<void>>();
  private readonly updateMs: number;
  private readonly log: Logger | undefined;
  private deferred: EventDraft[] | undefined;
  private last: Stamp | undefined;
  private readonly occupied: boolean[];
  private readonly counters = {
    frames: 0,
    detections: 0,
    events: {} as Partial<Record<EventType, number>>,
    events_total: 0,
    update_ms_avg: 0,
    update_ms_max: 0,
    update_ms_last: 0,
    evidence_attached: 0,
    evidence_missing: 0,
  };

  constructor(
    private readonly camera: CameraConfig,
    analytics: AnalyticsConfig,
    private readonly device: DeviceRef,
    private readonly emit: EventSink,
    log?: Logger,
    opts: CameraAnalyticsOptions = {},
  ) {
    this.log = log?.child({ mod: 'analytics', camera: camera.id });
    // With motion gating a still scene is analysed only every force_interval_s: a parked car must not "vanish"
    // between two forced frames, nor that time count as an outage.
    const gated = camera.motion.enabled ? camera.motion.force_interval_s : 0;
    const maxAge = Math.max(analytics.tracker.max_age_s, 1.5 * gated);
    if (maxAge > analytics.tracker.max_age_s) {
      this.log?.info({ max_age_s: maxAge, configured_s: analytics.tracker.max_age_s }, 'tracker max_age_s raised above the motion gate interval');
    }
    this.tracker = new Tracker(analytics.tracker, {
      max_age_s: maxAge,
      frame: camera.frame,
      ...(opts.first_track_id !== undefined ? { first_id: opts.first_track_id } : {}),
    });
    for (const s of analytics.signals) this.signals.set(s.id, new SignalTimeline());
    this.lines = camera.lines.map((cfg, index) => {
      const dx = cfg.b[0] - cfg.a[0];
      const dy = cfg.b[1] - cfg.a[1];
      const len = Math.hypot(dx, dy) || 1;
      let signal: SignalTimeline | undefined;
      if (cfg.stop_line && cfg.signal) {
        signal = this.signals.get(cfg.signal);
        if (!signal) this.signals.set(cfg.signal, (signal = new SignalTimeline()));
      }
      return {
        cfg,
        index,
        ax: cfg.a[0],
        ay: cfg.a[1],
        ux: dx / len,
        uy: dy / len,
        len,
        classes: cfg.classes ? new Set(cfg.classes) : undefined,
        signal,
      };
    });
    this.zones = camera.zones.map((cfg, index) => {
      const xs = cfg.polygon.map((p) => p[0]);
      const ys = cfg.polygon.map((p) => p[1]);
      const d = cfg.allowed_direction;
      const dl = d ? Math.hypot(d[0], d[1]) : 0;
      return {
        cfg,
        index,
        poly: Float64Array.from(cfg.polygon.flat()),
        minX: Math.min(...xs),
        minY: Math.min(...ys),
        maxX: Math.max(...xs),
        maxY: Math.max(...ys),
        classes: cfg.classes ? new Set(cfg.classes) : undefined,
        dwellMs: cfg.dwell_threshold_s !== undefined ? cfg.dwell_threshold_s * 1000 : undefined,
        dir: d && dl > 0 ? [d[0] / dl, d[1] / dl] : undefined,
        occupants: new Set(),
      };
    });
    const cal = camera.calibration;
    this.homography = cal ? new Homography(cal.image, cal.world) : undefined;
    this.positionErrorM = cal?.position_error_m ?? 0.5;
    this.updateMs = analytics.update_interval_s * 1000;
    this.occupied = new Array<boolean>(this.lines.length).fill(false);
    if (this.lines.length > 0) {
      const gapCap = Math.max(2000, 1500 * gated, 3000 / camera.detection_fps);
      this.flow = new FlowBins(this.lines.length, analytics.flow_bin_s * 1000, gapCap, FLOW_GRACE_MS, (bin) => this.emitFlow(bin));
    }
    this.evidence = opts.evidence === false ? undefined : (opts.evidence ?? EvidenceStore.forDir(analytics.evidence.dir, analytics.evidence.max_mb, log ? { log: log.child({ mod: 'evidence' }) } : {}));
  }

  /** Latest state of a traffic signal (`at_ms`: wall-clock epoch ms of the change; default now). */
  setSignal(id: string, state: SignalState, at_ms: number = Date.now()): void {
    let s = this.signals.get(id);
    if (!s) this.signals.set(id, (s = new SignalTimeline()));
    s.set(state, at_ms);
  }

  /** Tracks and analyses one frame's detections. Synchronous; emits events through `emit`. */
  update(ctx: FrameContext, detections: readonly Detection[]): void {
    const t0 = performance.now();
    const now: Stamp = { wall: ctx.captured_at_ms, mono: ctx.mono_ms, synced: ctx.clock_synced };
    this.last = now;
    this.counters.frames++;
    this.counters.detections += detections.length;
    this.flow?.advance(now.mono, now.wall);

    const res = this.tracker.update(detections, ctx.mono_ms);
    const fresh = new Set<number>();
    for (const t of res.confirmed) {
      this.confirm(t, ctx, now);
      fresh.add(t.id);
    }
    for (const t of res.active) {
      if (!t.observed || fresh.has(t.id)) continue;
      const rt = this.rts.get(t.id);
      if (!rt) continue;
      this.observe(rt, t.box, t.detection?.box, now, ctx);
      this.maybeUpdate(rt, now);
    }
    for (const t of res.ended) {
      const rt = this.rts.get(t.id);
      if (rt) this.end(rt, outsideFrame(t.box, this.camera.frame) ? 'left_frame' : 'lost', now);
    }
    if (this.withPending.size > 0) this.resolveDue(now.mono);
    if (this.flow) {
      this.occupied.fill(false);
      for (const t of res.active) {
        if (!t.observed) continue;
        for (const l of this.lines) {
          if (this.occupied[l.index] || (l.classes && !l.classes.has(t.class_name))) continue;
          if (segmentIntersectsBox(l.cfg.a[0], l.cfg.a[1], l.cfg.b[0], l.cfg.b[1], t.box)) this.occupied[l.index] = true;
        }
      }
      this.flow.setOccupied(this.occupied);
      this.flow.release(now.mono);
    }

    const ms = performance.now() - t0;
    const c = this.counters;
    c.update_ms_last = ms;
    c.update_ms_avg = c.frames === 1 ? ms : c.update_ms_avg + 0.05 * (ms - c.update_ms_avg);
    if (ms > c.update_ms_max) c.update_ms_max = ms;
  }

  /**
   * Shutdown: ends every track (object_end "shutdown", zone exits, pending speeds), ends the flow bin in
   * progress (its `observed_s` tells it is partial) and waits for evidence still being written.
   * `now`: wall-clock epoch ms, or capture times; default the last frame's.
   */
  async flush(now?: number | Pick<FrameContext, 'captured_at_ms' | 'mono_ms'>): Promise<void> {
    const last = this.last;
    let stamp: Stamp | undefined = last;
    if (typeof now === 'number') stamp = { wall: now, mono: last ? last.mono + Math.max(0, now - last.wall) : 0, synced: last?.synced ?? false };
    else if (now) stamp = { wall: now.captured_at_ms, mono: now.mono_ms, synced: last?.synced ?? false };
    if (stamp) {
      for (const t of this.tracker.endAll()) {
        const rt = this.rts.get(t.id);
        if (rt) this.end(rt, 'shutdown', stamp);
      }
      this.flow?.flush(stamp.mono, stamp.wall);
    }
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  stats(): CameraAnalyticsStats {
    const c = this.counters;
    return {
      frames: c.frames,
      detections: c.detections,
      tracks: this.tracker.size,
      tracks_confirmed: this.rts.size,
      track_ids_issued: this.tracker.issued,
      events: { ...c.events },
      events_total: c.events_total,
      update_ms_avg: round(c.update_ms_avg, 4),
      update_ms_max: round(c.update_ms_max, 4),
      update_ms_last: round(c.update_ms_last, 4),
      evidence_attached: c.evidence_attached,
      evidence_missing: c.evidence_missing,
      evidence_pending: this.jobs.size,
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Track lifecycle

  private confirm(t: Track, ctx: FrameContext, now: Stamp): void {
    const firstWall = now.wall - (now.mono - t.first_seen_ms);
    const rt: TrackRt = {
      t,
      lines: this.lines.map(() => ({ side: 0, sign: 0, last: undefined, lastD: 0, toIn: undefined, toOut: undefined, counted: 0 })),
      zones: this.zones.map(() => ({ inside: false, enterMono: 0, enterWall: 0, stopped: false, wrong: false, projMax: 0, atMaxX: 0, atMaxY: 0 })),
      ground: this.homography ? new GroundTrack() : undefined,
      firstWall,
      lastWall: now.wall,
      last: undefined,
      distancePx: 0,
      distFrom: undefined,
      zonesVisited: [],
      linesCrossed: [],
      speed: undefined,
      maxSpeedKmh: undefined,
      snap: { cls: '', cx: 0, cy: 0, size: 0, zones: '', kmh: undefined },
      lastEmitMono: now.mono,
      pending: [],
    };
    this.rts.set(t.id, rt);
    // Replay from the first detection, so a line crossed or a zone entered while the track was tentative
    // counts; the events wait until object_new is out.
    this.deferred = [];
    if (t.first_seen_ms < now.mono) this.observe(rt, t.first_box, t.first_box, { wall: firstWall, mono: t.first_seen_ms, synced: now.synced }, undefined);
    this.observe(rt, t.box, t.detection?.box, now, ctx);
    const deferred = this.deferred;
    this.deferred = undefined;
    this.send(
      makeEvent({
        type: 'object_new',
        ...this.envelope(now),
        object: this.objectOf(rt),
        attributes: { first_seen_at: isoTime(firstWall), zones: this.zonesOf(rt) },
      }),
    );
    for (const ev of deferred) this.send(ev);
    this.snapshot(rt, now.mono);
  }

  private maybeUpdate(rt: TrackRt, now: Stamp): void {
    if (now.mono - rt.lastEmitMono < this.updateMs) return;
    const t = rt.t;
    const s = rt.snap;
    const changed: Array<'class' | 'moved' | 'zones' | 'speed'> = [];
    if (t.class_name !== s.cls) changed.push('class');
    const cx = (t.box[0] + t.box[2]) / 2;
    const cy = (t.box[1] + t.box[3]) / 2;
    if (Math.hypot(cx - s.cx, cy - s.cy) > Math.max(MOVE_MIN_PX, MOVE_FRACTION * s.size)) changed.push('moved');
    const zones = this.zonesOf(rt);
    if (zones.join(',') !== s.zones) changed.push('zones');
    const kmh = rt.speed ? rt.speed.speed_ms * 3.6 : undefined;
    if ((kmh === undefined) !== (s.kmh === undefined) || (kmh !== undefined && s.kmh !== undefined && Math.abs(kmh - s.kmh) >= Math.max(SPEED_CHANGE_KMH, SPEED_CHANGE_FRACTION * s.kmh))) {
      changed.push('speed');
    }
    if (changed.length === 0) return;
    this.send(
      makeEvent({
        type: 'object_update',
        ...this.envelope(now),
        object: this.objectOf(rt),
        attributes: { changed, zones, age_s: round((now.mono - t.first_seen_ms) / 1000, 3) },
      }),
    );
    this.snapshot(rt, now.mono);
  }

  private snapshot(rt: TrackRt, mono: number): void {
    const b = rt.t.box;
    rt.snap = {
      cls: rt.t.class_name,
      cx: (b[0] + b[2]) / 2,
      cy: (b[1] + b[3]) / 2,
      size: Math.max(b[2] - b[0], b[3] - b[1]),
      zones: this.zonesOf(rt).join(','),
      kmh: rt.speed ? rt.speed.speed_ms * 3.6 : undefined,
    };
    rt.lastEmitMono = mono;
  }

  private end(rt: TrackRt, reason: 'lost' | 'left_frame' | 'shutdown', now: Stamp): void {
    const t = rt.t;
    const lastMono = t.last_seen_ms;
    for (const z of this.zones) {
      const zt = rt.zones[z.index]!;
      if (zt.inside) this.exitZone(rt, z, zt, 'track_ended', lastMono, now);
    }
    for (const p of rt.pending) this.resolve(rt, p);
    rt.pending.length = 0;
    this.withPending.delete(rt);
    const attributes: EventInput<'object_end'>['attributes'] = {
      reason,
      first_seen_at: isoTime(rt.firstWall),
      last_seen_at: isoTime(rt.lastWall),
      duration_s: round((lastMono - t.first_seen_ms) / 1000, 3),
      distance_px: round(rt.distancePx, 1),
      zones_visited: rt.zonesVisited,
      lines_crossed: rt.linesCrossed,
    };
    if (rt.maxSpeedKmh !== undefined) attributes.max_speed_kmh = round(rt.maxSpeedKmh, 1);
    this.send(makeEvent({ type: 'object_end', ...this.envelope(now), object: this.objectOf(rt), attributes }));
    this.rts.delete(t.id);
  }

  // -------------------------------------------------------------------------------------------------------
  // Per-observation analytics

  /** `box`: filtered box (lines, zones); `raw`: the detection's box (speed); `ctx`: frame for evidence. */
  private observe(rt: TrackRt, box: Box, raw: Box | undefined, now: Stamp, ctx: FrameContext | undefined): void {
    const [x, y] = anchorOf(box);
    const o: Obs = { x, y, mono: now.mono, wall: now.wall };
    // Path length in steps of at least DISTANCE_STEP of the box height, so a parked car's jitter is not travel.
    if (!rt.distFrom) rt.distFrom = [x, y];
    else {
      const step = Math.hypot(x - rt.distFrom[0], y - rt.distFrom[1]);
      if (step >= Math.max(DISTANCE_STEP_MIN_PX, DISTANCE_STEP * (box[3] - box[1]))) {
        rt.distancePx += step;
        rt.distFrom = [x, y];
      }
    }
    rt.last = o;
    rt.lastWall = now.wall;
    if (this.homography && rt.ground && raw) {
      const [u, v] = anchorOf(raw);
      const g = this.homography.toWorld(u, v);
      if (g) {
        rt.ground.push(now.mono, g[0], g[1]);
        const est = rt.ground.fit(now.mono - SPEED_TRAIL_MS, now.mono, this.positionErrorM);
        if (est) {
          rt.speed = est;
          const kmh = est.speed_ms * 3.6;
          if (est.span_s * 1000 >= 0.75 * SPEED_TRAIL_MS && (rt.maxSpeedKmh === undefined || kmh > rt.maxSpeedKmh)) rt.maxSpeedKmh = kmh;
        }
      }
    }
    for (const l of this.lines) this.lineStep(rt, l, o, now, ctx);
    for (const z of this.zones) this.zoneStep(rt, z, o, now, ctx);
  }

  private lineStep(rt: TrackRt, l: LineRt, o: Obs, now: Stamp, ctx: FrameContext | undefined): void {
    const st = rt.lines[l.index]!;
    // Signed distance: > 0 right of a→b as seen in the image (y down), < 0 left.
    const d = l.ux * (o.y - l.ay) - l.uy * (o.x - l.ax);
    const sign = d > 0 ? 1 : d < 0 ? -1 : 0;
    if (st.last && sign !== 0 && st.sign !== 0 && sign !== st.sign) {
      const s: Straddle = { a: st.last, da: st.lastD, b: o, db: d };
      if (sign > 0) st.toIn = s;
      else st.toOut = s;
    }
    if (sign !== 0) st.sign = sign;
    st.last = o;
    st.lastD = d;
    const h = l.cfg.hysteresis_px;
    const side = d > 0 && d >= h ? 1 : d < 0 && -d >= h ? -1 : 0;
    if (side === 0 || side === st.side) return;
    const prev = st.side;
    st.side = side;
    if (prev === 0) return; // first commitment: where it came from is unknown
    const s = side > 0 ? st.toIn : st.toOut;
    if (!s) return;
    this.crossing(rt, l, st, side > 0 ? 'in' : 'out', s, now, ctx);
  }

  private crossing(rt: TrackRt, l: LineRt, st: LineTrack, direction: 'in' | 'out', s: Straddle, now: Stamp, ctx: FrameContext | undefined): void {
    const ad = Math.abs(s.da);
    const bd = Math.abs(s.db);
    const f = ad + bd > 0 ? ad / (ad + bd) : 0.5;
    const px = s.a.x + f * (s.b.x - s.a.x);
    const py = s.a.y + f * (s.b.y - s.a.y);
    // Only within the drawn segment (with the hysteresis as tolerance at its ends).
    const along = (px - l.ax) * l.ux + (py - l.ay) * l.uy;
    const tol = l.cfg.hysteresis_px;
    if (along < -tol || along > l.len + tol) return;
    const bit = direction === 'in' ? 1 : 2;
    if (st.counted & bit) return;
    if (l.classes && !l.classes.has(rt.t.class_name)) return;
    st.counted |= bit;
    const wall = s.a.wall + f * (s.b.wall - s.a.wall);
    const mono = s.a.mono + f * (s.b.mono - s.a.mono);
    rt.linesCrossed.push({ line_id: l.cfg.id, direction });
    const point: [number, number] = [round(px, 1), round(py, 1)];
    const object = this.objectOf(rt);
    this.send(
      makeEvent({
        type: 'line_crossing',
        ...this.envelope(now),
        object,
        rule: { kind: 'line', id: l.cfg.id },
        attributes: { direction, point_px: point, crossed_at: isoTime(wall) },
      }),
    );
    const bin = this.flow?.binAt(mono);
    if (bin) {
      const fd = bin.lines[l.index]![direction];
      fd.volume++;
      fd.by_class.set(rt.t.class_name, (fd.by_class.get(rt.t.class_name) ?? 0) + 1);
    }
    if (rt.ground) {
      if (bin) bin.pending++;
      rt.pending.push({
        line: l,
        direction,
        mono,
        due: mono + SPEED_HALF_WINDOW_MS,
        frameWall: now.wall,
        frameMono: now.mono,
        clockSynced: now.synced,
        object,
        bin,
      });
      this.withPending.add(rt);
    }
    if (l.cfg.stop_line && l.signal && (l.cfg.stop_direction === 'both' || l.cfg.stop_direction === direction)) {
      const sig = l.signal.at(wall);
      if (sig?.state === 'red') {
        this.violation(
          makeEvent({
            type: 'red_light',
            ...this.envelope(now),
            object,
            rule: { kind: 'signal', id: l.cfg.signal! },
            attributes: {
              line_id: l.cfg.id,
              direction,
              point_px: point,
              crossed_at: isoTime(wall),
              signal_state: 'red',
              red_elapsed_s: round((wall - sig.since_ms) / 1000, 3),
            },
          }),
          rt.t.box,
          ctx,
        );
      }
    }
  }

  private zoneStep(rt: TrackRt, z: ZoneRt, o: Obs, now: Stamp, ctx: FrameContext | undefined): void {
    const zt = rt.zones[z.index]!;
    const h = z.cfg.hysteresis_px;
    if (!zt.inside) {
      if (o.x < z.minX + h || o.x > z.maxX - h || o.y < z.minY + h || o.y > z.maxY - h) return; // cannot be h inside
      if (z.classes && !z.classes.has(rt.t.class_name)) return;
      const sd = polygonSignedDistance(o.x, o.y, z.poly);
      if (!(sd > 0 && sd >= h)) return;
      zt.inside = true;
      zt.enterMono = o.mono;
      zt.enterWall = o.wall;
      zt.stopped = false;
      zt.projMax = z.dir ? o.x * z.dir[0] + o.y * z.dir[1] : 0;
      zt.atMaxX = o.x;
      zt.atMaxY = o.y;
      z.occupants.add(rt.t.id);
      if (!rt.zonesVisited.includes(z.cfg.id)) rt.zonesVisited.push(z.cfg.id);
      this.send(
        makeEvent({
          type: 'zone_enter',
          ...this.envelope(now),
          object: this.objectOf(rt),
          rule: { kind: 'zone', id: z.cfg.id },
          attributes: { occupancy: z.occupants.size },
        }),
      );
    } else {
      const outsideBox = o.x < z.minX - h || o.x > z.maxX + h || o.y < z.minY - h || o.y > z.maxY + h;
      const sd = outsideBox ? -Infinity : polygonSignedDistance(o.x, o.y, z.poly);
      if (sd < 0 && -sd >= h) {
        this.exitZone(rt, z, zt, 'left', o.mono, now);
        return;
      }
    }
    if (z.dwellMs !== undefined && !zt.stopped && o.mono - zt.enterMono >= z.dwellMs) {
      zt.stopped = true;
      this.violation(
        makeEvent({
          type: 'stopped_vehicle',
          ...this.envelope(now),
          object: this.objectOf(rt),
          rule: { kind: 'zone', id: z.cfg.id },
          attributes: {
            dwell_s: round((o.mono - zt.enterMono) / 1000, 3),
            dwell_threshold_s: z.cfg.dwell_threshold_s!,
            entered_at: isoTime(zt.enterWall),
          },
        }),
        rt.t.box,
        ctx,
      );
    }
    if (z.dir && !zt.wrong) {
      const p = o.x * z.dir[0] + o.y * z.dir[1];
      if (p > zt.projMax) {
        zt.projMax = p;
        zt.atMaxX = o.x;
        zt.atMaxY = o.y;
      } else if (zt.projMax - p >= z.cfg.wrong_way_min_distance_px) {
        zt.wrong = true;
        const hx = o.x - zt.atMaxX;
        const hy = o.y - zt.atMaxY;
        const hl = Math.hypot(hx, hy) || 1;
        this.violation(
          makeEvent({
            type: 'wrong_way',
            ...this.envelope(now),
            object: this.objectOf(rt),
            rule: { kind: 'zone', id: z.cfg.id },
            attributes: {
              distance_px: round(zt.projMax - p, 1),
              allowed_direction: z.cfg.allowed_direction!,
              heading: [round(hx / hl, 3), round(hy / hl, 3)],
            },
          }),
          rt.t.box,
          ctx,
        );
      }
    }
  }

  private exitZone(rt: TrackRt, z: ZoneRt, zt: ZoneTrack, reason: 'left' | 'track_ended', atMono: number, now: Stamp): void {
    zt.inside = false;
    z.occupants.delete(rt.t.id);
    this.send(
      makeEvent({
        type: 'zone_exit',
        ...this.envelope(now),
        object: this.objectOf(rt),
        rule: { kind: 'zone', id: z.cfg.id },
        attributes: { reason, dwell_s: round(Math.max(0, atMono - zt.enterMono) / 1000, 3), occupancy: z.occupants.size },
      }),
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // Speed at lines

  private resolveDue(mono: number): void {
    for (const rt of this.withPending) {
      const keep: PendingSpeed[] = [];
      for (const p of rt.pending) {
        if (mono >= p.due) this.resolve(rt, p);
        else keep.push(p);
      }
      rt.pending = keep;
      if (keep.length === 0) this.withPending.delete(rt);
    }
  }

  private resolve(rt: TrackRt, p: PendingSpeed): void {
    if (p.bin) p.bin.pending--;
    const est = rt.ground?.fit(p.mono - SPEED_HALF_WINDOW_MS, p.mono + SPEED_HALF_WINDOW_MS, this.positionErrorM);
    if (!est) return;
    const kmh = est.speed_ms * 3.6;
    if (p.bin && !p.bin.emitted) p.bin.lines[p.line.index]![p.direction].speeds_kmh.push(kmh);
    this.send(
      makeEvent({
        type: 'speed',
        device: this.device.id,
        site: this.device.site,
        camera: this.camera.id,
        captured_at_ms: p.frameWall,
        mono_ms: p.frameMono,
        clock_synced: p.clockSynced,
        object: { ...p.object, speed_kmh: round(kmh, 1), speed_uncertainty_kmh: round(est.sigma_ms * 3.6, 1) },
        rule: { kind: 'line', id: p.line.cfg.id },
        attributes: { direction: p.direction, window_s: round(est.span_s, 3), samples: est.samples, distance_m: round(est.distance_m, 2) },
      }),
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // Flow

  private emitFlow(bin: FlowBin): void {
    const last = this.last;
    const wall = Math.min(bin.end_wall_ms, last?.wall ?? bin.end_wall_ms);
    const mono = Math.max(0, Math.min(bin.end_mono_ms, last?.mono ?? bin.end_mono_ms));
    for (const l of this.lines) {
      const fl = bin.lines[l.index]!;
      this.send(
        makeEvent({
          type: 'flow',
          device: this.device.id,
          site: this.device.site,
          camera: this.camera.id,
          captured_at_ms: wall,
          mono_ms: mono,
          clock_synced: last?.synced ?? false,
          rule: { kind: 'line', id: l.cfg.id },
          attributes: {
            bin_start: isoTime(bin.start_wall_ms),
            bin_end: isoTime(bin.end_wall_ms),
            observed_s: round(bin.observed_ms / 1000, 3),
            occupancy: bin.observed_ms > 0 ? round(Math.min(1, fl.occupied_ms / bin.observed_ms), 4) : 0,
            in: directionStats(fl.in),
            out: directionStats(fl.out),
          },
        }),
      );
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Events

  /**
   * Violations are emitted once their evidence is on disk, with the hashes in the event: one complete
   * record in the outbox, no follow-up "evidence ready" message for the center to join. The encoding runs on
   * sharp's threads (tens of ms), so the event leaves a little later than the others of its frame; its
   * `captured_at`/`mono_ms` still say when it happened. Without a frame, when the store refuses (too many
   * jobs in flight), on failure or after EVIDENCE_TIMEOUT_MS the event goes without evidence.
   */
  private violation(ev: EventOf<'red_light' | 'wrong_way' | 'stopped_vehicle'>, box: Box, ctx: FrameContext | undefined): void {
    const frame = ctx?.frame;
    const job = frame && this.evidence?.capture({ frame, box, camera: this.camera.frame, name: `${ev.id}_${this.camera.id}_${ev.type}` });
    if (!job) {
      this.counters.evidence_missing++;
      this.send(ev);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((res) => {
      timer = setTimeout(() => res(undefined), EVIDENCE_TIMEOUT_MS);
      timer.unref();
    });
    const done: Promise<void> = Promise.race([job, timeout])
      .then(
        (evidence: Evidence | undefined) => {
          if (evidence) {
            this.counters.evidence_attached++;
            this.send({ ...ev, evidence });
          } else {
            this.counters.evidence_missing++;
            this.log?.warn({ event: ev.id, type: ev.type }, 'evidence not ready in time; violation sent without it');
            this.send(ev);
          }
        },
        (err: unknown) => {
          this.counters.evidence_missing++;
          this.log?.warn({ event: ev.id, type: ev.type, err: errorMessage(err) }, 'evidence failed; violation sent without it');
          this.send(ev);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        this.jobs.delete(done);
      });
    this.jobs.add(done);
  }

  private send(ev: EventDraft): void {
    if (this.deferred) {
      this.deferred.push(ev);
      return;
    }
    const c = this.counters;
    c.events[ev.type] = (c.events[ev.type] ?? 0) + 1;
    c.events_total++;
    try {
      this.emit(ev);
    } catch (err) {
      this.log?.error({ err, type: ev.type }, 'event sink threw');
    }
  }

  private envelope(now: Stamp) {
    return {
      device: this.device.id,
      site: this.device.site,
      camera: this.camera.id,
      captured_at_ms: now.wall,
      mono_ms: now.mono,
      clock_synced: now.synced,
    };
  }

  private objectOf(rt: TrackRt): EventObject {
    const t = rt.t;
    const o: EventObject = { track_id: t.id, class: t.class_name, score: round(t.score, 3), box: roundBox(t.box) };
    if (rt.speed) {
      o.speed_kmh = round(rt.speed.speed_ms * 3.6, 1);
      o.speed_uncertainty_kmh = round(rt.speed.sigma_ms * 3.6, 1);
    }
    return o;
  }

  private zonesOf(rt: TrackRt): string[] {
    const out: string[] = [];
    for (const z of this.zones) if (rt.zones[z.index]!.inside) out.push(z.cfg.id);
    return out;
  }
}

function directionStats(d: FlowDirection) {
  const out: { volume: number; volume_by_class: Record<string, number>; speed_samples: number; speed_mean_kmh?: number; speed_p85_kmh?: number } = {
    volume: d.volume,
    volume_by_class: Object.fromEntries(d.by_class),
    speed_samples: d.speeds_kmh.length,
  };
  if (d.speeds_kmh.length > 0) {
    out.speed_mean_kmh = round(d.speeds_kmh.reduce((s, v) => s + v, 0) / d.speeds_kmh.length, 1);
    out.speed_p85_kmh = round(percentile(d.speeds_kmh, 0.85)!, 1);
  }
  return out;
}
