// Counting lines: which side of each line a track's anchor is on, and when it crossed.
import { isoTime, makeEvent, type EventObject } from '../../contract/event.js';
import { laneSpan, type LineConfig } from '../../config/schema/index.js';
import type { Track } from '../tracking/tracker.js';
import type { FrameContext } from '../tracking/types.js';
import { anchorOf, segmentIntersectsBox } from './geometry.js';
import { round, type EventOutlet, type ObjectOf, type Observation, type Sample, type Stamp } from './outlet.js';

export type Direction = 'in' | 'out';

/** A counted crossing, for the parts that act on it (flow volume, speed at the line, red light). */
export interface Crossing {
  line: LineConfig;
  /** Position of the line in the camera's `lines`. */
  index: number;
  track: Track;
  direction: Direction;
  /** Lane of the line the crossing point lies in (id and position in the line's `lanes`), if any. */
  lane: string | undefined;
  laneIndex: number | undefined;
  /** When the anchor was on the line, interpolated between the observations either side of it. */
  wall: number;
  mono: number;
  point: [number, number];
  /** The object as in the line_crossing event. */
  object: EventObject;
  now: Stamp;
  ctx: FrameContext | undefined;
}

interface LaneRt {
  id: string;
  /** Span along the line from a, pixels. */
  from: number;
  to: number;
  /** The lane's segment of the line, for occupancy. */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
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
  lanes: LaneRt[];
}

/** A counted crossing as object_end lists it. */
export interface CrossedRecord {
  line_id: string;
  direction: Direction;
  lane?: string;
  /** Class the line_crossing event reported. */
  class: string;
}

/** Per line, and per lane of each line: whether a box of an observed track of its classes lies across it. */
export interface LineOccupancy {
  lines: boolean[];
  lanes: boolean[][];
}

interface Straddle {
  a: Sample;
  da: number;
  b: Sample;
  db: number;
}

/** A track relative to one line. */
interface LineSide {
  /** Committed side: -1 left, +1 right, 0 not yet beyond the hysteresis. */
  side: number;
  /** Sign of the last signed distance that was not 0. */
  sign: number;
  last: Sample | undefined;
  lastD: number;
  /** Latest pair of observations either side of the line, towards the right (in) and towards the left (out). */
  toIn: Straddle | undefined;
  toOut: Straddle | undefined;
  /** Bit 1: counted in, bit 2: counted out. */
  counted: number;
  /** Never counts on this line: born on it beside a live track (see `begin`). */
  barred: boolean;
}

interface LineTrack {
  sides: LineSide[];
  crossed: CrossedRecord[];
}

/**
 * The camera's counting lines. A track is on a side once its anchor is `hysteresis_px` beyond the line; a
 * change of committed side is a crossing, counted at most once per direction and track, only within the
 * drawn segment and for the line's classes. Each crossing is a `line_crossing` event (with its lane, for a
 * line split into lanes), then `onCrossing`.
 */
export class CountingLines {
  private readonly lines: LineRt[];
  private readonly tracks = new Map<number, LineTrack>();
  private readonly occupied: LineOccupancy;

  constructor(
    configs: readonly LineConfig[],
    private readonly outlet: EventOutlet,
    private readonly objectOf: ObjectOf,
    private readonly onCrossing: (c: Crossing) => void,
  ) {
    this.lines = configs.map((cfg, index) => {
      const dx = cfg.b[0] - cfg.a[0];
      const dy = cfg.b[1] - cfg.a[1];
      const len = Math.hypot(dx, dy) || 1;
      const lanes = (cfg.lanes ?? []).map((lane): LaneRt => {
        const [f, t] = laneSpan(cfg, lane);
        return { id: lane.id, from: f * len, to: t * len, x1: cfg.a[0] + f * dx, y1: cfg.a[1] + f * dy, x2: cfg.a[0] + t * dx, y2: cfg.a[1] + t * dy };
      });
      return { cfg, index, ax: cfg.a[0], ay: cfg.a[1], ux: dx / len, uy: dy / len, len, classes: cfg.classes ? new Set(cfg.classes) : undefined, lanes };
    });
    this.occupied = { lines: new Array<boolean>(this.lines.length).fill(false), lanes: this.lines.map((l) => new Array<boolean>(l.lanes.length).fill(false)) };
  }

  get count(): number {
    return this.lines.length;
  }

  /**
   * A track was confirmed. One born beside a live track (`born_beside`: likely a second box on that object,
   * e.g. a `car` box on a pickup tracked as `truck`) with its first anchor within a box height (at least the
   * hysteresis) of a line never counts on that line: a duplicate is typically born a frame or two before the
   * line, commits to a side at once and would count the vehicle a second time.
   */
  begin(t: Track): void {
    const born = t.born_beside !== undefined ? t.first_box : undefined;
    const sides = this.lines.map((l): LineSide => {
      let barred = false;
      if (born) {
        const [x, y] = anchorOf(born);
        const d = l.ux * (y - l.ay) - l.uy * (x - l.ax);
        const along = (x - l.ax) * l.ux + (y - l.ay) * l.uy;
        const band = Math.max(l.cfg.hysteresis_px, born[3] - born[1]);
        barred = Math.abs(d) <= band && along >= -band && along <= l.len + band;
      }
      return { side: 0, sign: 0, last: undefined, lastD: 0, toIn: undefined, toOut: undefined, counted: 0, barred };
    });
    this.tracks.set(t.id, { sides, crossed: [] });
  }

  step(o: Observation): void {
    const lt = this.tracks.get(o.track.id);
    if (!lt) return;
    for (const l of this.lines) this.lineStep(lt, l, o);
  }

  /** The lines a track crossed so far, in order. */
  crossed(trackId: number): readonly CrossedRecord[] {
    return this.tracks.get(trackId)?.crossed ?? [];
  }

  /** Lane ids of each line, in configuration order. */
  laneIds(): string[][] {
    return this.lines.map((l) => l.lanes.map((x) => x.id));
  }

  drop(trackId: number): void {
    this.tracks.delete(trackId);
  }

  /** Per line and lane: whether a box of an observed track of its classes lies across it (reused object). */
  occupancy(active: readonly Track[]): LineOccupancy {
    const occ = this.occupied;
    occ.lines.fill(false);
    for (const l of occ.lanes) l.fill(false);
    for (const t of active) {
      if (!t.observed) continue;
      for (const l of this.lines) {
        const lanesDone = l.lanes.length === 0 || occ.lanes[l.index]!.every(Boolean);
        if ((occ.lines[l.index] && lanesDone) || (l.classes && !l.classes.has(t.class_name))) continue;
        if (!segmentIntersectsBox(l.cfg.a[0], l.cfg.a[1], l.cfg.b[0], l.cfg.b[1], t.box)) continue;
        occ.lines[l.index] = true;
        const flags = occ.lanes[l.index]!;
        l.lanes.forEach((lane, k) => {
          if (!flags[k] && segmentIntersectsBox(lane.x1, lane.y1, lane.x2, lane.y2, t.box)) flags[k] = true;
        });
      }
    }
    return occ;
  }

  private lineStep(lt: LineTrack, l: LineRt, o: Observation): void {
    const st = lt.sides[l.index]!;
    const at = o.at;
    // Signed distance: > 0 right of a→b as seen in the image (y down), < 0 left.
    const d = l.ux * (at.y - l.ay) - l.uy * (at.x - l.ax);
    const sign = d > 0 ? 1 : d < 0 ? -1 : 0;
    if (st.last && sign !== 0 && st.sign !== 0 && sign !== st.sign) {
      const s: Straddle = { a: st.last, da: st.lastD, b: at, db: d };
      if (sign > 0) st.toIn = s;
      else st.toOut = s;
    }
    if (sign !== 0) st.sign = sign;
    st.last = at;
    st.lastD = d;
    const h = l.cfg.hysteresis_px;
    const side = d > 0 && d >= h ? 1 : d < 0 && -d >= h ? -1 : 0;
    if (side === 0 || side === st.side) return;
    const prev = st.side;
    st.side = side;
    if (prev === 0) return; // first commitment: where it came from is unknown
    const s = side > 0 ? st.toIn : st.toOut;
    if (!s) return;
    this.crossing(lt, l, st, side > 0 ? 'in' : 'out', s, o);
  }

  private crossing(lt: LineTrack, l: LineRt, st: LineSide, direction: Direction, s: Straddle, o: Observation): void {
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
    if (st.counted & bit || st.barred) return;
    const t = o.track;
    if (l.classes && !l.classes.has(t.class_name)) return;
    st.counted |= bit;
    const wall = s.a.wall + f * (s.b.wall - s.a.wall);
    const mono = s.a.mono + f * (s.b.mono - s.a.mono);
    // The lane holding the crossing point; a point on the border between two goes to the first.
    const at = Math.min(l.len, Math.max(0, along)); // within the tolerance at the ends: the end lanes
    const laneIndex = l.lanes.findIndex((x) => at >= x.from && at <= x.to);
    const lane = laneIndex >= 0 ? l.lanes[laneIndex]!.id : undefined;
    lt.crossed.push({ line_id: l.cfg.id, direction, ...(lane !== undefined ? { lane } : {}), class: t.class_name });
    const point: [number, number] = [round(px, 1), round(py, 1)];
    const object = this.objectOf(t);
    this.outlet.send(
      makeEvent({
        type: 'line_crossing',
        ...this.outlet.envelope(o.now),
        object,
        rule: { kind: 'line', id: l.cfg.id },
        attributes: { direction, point_px: point, crossed_at: isoTime(wall), ...(lane !== undefined ? { lane } : {}) },
      }),
    );
    this.onCrossing({
      line: l.cfg,
      index: l.index,
      track: t,
      direction,
      lane,
      laneIndex: laneIndex >= 0 ? laneIndex : undefined,
      wall,
      mono,
      point,
      object,
      now: o.now,
      ctx: o.ctx,
    });
  }
}
