// The life of a tracked object as events: object_new, object_update when something changed, object_end.
import { isoTime, makeEvent, type EventInput, type EventOf } from '../../contract/event.js';
import type { Track } from '../tracking/tracker.js';
import type { Box } from '../tracking/types.js';
import { round, type EventOutlet, type ObjectOf, type Stamp } from './outlet.js';

/** An object update needs the box centre to move this much (or MOVE_FRACTION of the box size, if more), px. */
const MOVE_MIN_PX = 8;
const MOVE_FRACTION = 0.2;
/** An object update needs the speed to change this much (or SPEED_CHANGE_FRACTION of it, if more), km/h. */
const SPEED_CHANGE_KMH = 5;
const SPEED_CHANGE_FRACTION = 0.1;
/** object_end's distance_px grows in steps of at least this fraction of the box height (or pixels, if more). */
const DISTANCE_STEP = 0.1;
const DISTANCE_STEP_MIN_PX = 4;

/** What the lifecycle reads about a track from the other parts. */
export interface TrackFacts {
  object: ObjectOf;
  /** Zones the track is in now. */
  zones(trackId: number): string[];
  /** Running speed, km/h. */
  speedKmh(trackId: number): number | undefined;
}

type ObjectEndAttrs = EventInput<'object_end'>['attributes'];

/** What object_end tells about the whole track, from the other parts. */
export interface TrackSummary {
  zones_visited: string[];
  lines_crossed: ObjectEndAttrs['lines_crossed'];
  max_speed_kmh: number | undefined;
  /** The class a crossing reported when the vote has since settled on another. */
  class_corrected_from?: string | undefined;
}

/** What the last object_new / object_update said, to tell whether the next one has news. */
interface Said {
  cls: string;
  cx: number;
  cy: number;
  size: number;
  zones: string;
  kmh: number | undefined;
  mono: number;
}

interface Life {
  firstWall: number;
  lastWall: number;
  distancePx: number;
  distFrom: [number, number] | undefined;
  said: Said;
}

/**
 * Lifecycle events of the confirmed tracks. An object_update goes out at most every `update_interval_s`
 * per track and only when the class, zones or speed changed or the box moved noticeably.
 */
export class ObjectLifecycle {
  private readonly tracks = new Map<number, Life>();

  constructor(
    private readonly updateMs: number,
    private readonly outlet: EventOutlet,
    private readonly facts: TrackFacts,
  ) {}

  /** Confirmed tracks alive. */
  get size(): number {
    return this.tracks.size;
  }

  has(trackId: number): boolean {
    return this.tracks.has(trackId);
  }

  /** A track was confirmed; returns the time of its first detection, to replay it from there. */
  begin(t: Track, now: Stamp): Stamp {
    const firstWall = now.wall - (now.mono - t.first_seen_ms);
    this.tracks.set(t.id, {
      firstWall,
      lastWall: now.wall,
      distancePx: 0,
      distFrom: undefined,
      said: { cls: '', cx: 0, cy: 0, size: 0, zones: '', kmh: undefined, mono: now.mono },
    });
    return { wall: firstWall, mono: t.first_seen_ms, synced: now.synced };
  }

  /** The track was seen with its anchor at (x, y) and filtered box `box`. */
  observe(t: Track, x: number, y: number, box: Box, now: Stamp): void {
    const life = this.tracks.get(t.id);
    if (!life) return;
    // Path length in steps of at least DISTANCE_STEP of the box height, so a parked car's jitter is not travel.
    if (!life.distFrom) life.distFrom = [x, y];
    else {
      const step = Math.hypot(x - life.distFrom[0], y - life.distFrom[1]);
      if (step >= Math.max(DISTANCE_STEP_MIN_PX, DISTANCE_STEP * (box[3] - box[1]))) {
        life.distancePx += step;
        life.distFrom = [x, y];
      }
    }
    life.lastWall = now.wall;
  }

  /** The track's object_new (after its first observations), remembered as said. */
  announce(t: Track, now: Stamp): EventOf<'object_new'> {
    const life = this.tracks.get(t.id)!;
    return makeEvent({
      type: 'object_new',
      ...this.outlet.envelope(now),
      object: this.facts.object(t),
      attributes: { first_seen_at: isoTime(life.firstWall), zones: this.facts.zones(t.id) },
    });
  }

  /** Remembers the track as it is now as what was said last (after object_new went out). */
  said(t: Track, mono: number): void {
    const life = this.tracks.get(t.id);
    if (!life) return;
    const b = t.box;
    const kmh = this.facts.speedKmh(t.id);
    life.said = { cls: t.class_name, cx: (b[0] + b[2]) / 2, cy: (b[1] + b[3]) / 2, size: Math.max(b[2] - b[0], b[3] - b[1]), zones: this.facts.zones(t.id).join(','), kmh, mono };
  }

  /** An object_update when the interval passed and something changed. */
  maybeUpdate(t: Track, now: Stamp): void {
    const life = this.tracks.get(t.id);
    if (!life || now.mono - life.said.mono < this.updateMs) return;
    const s = life.said;
    const changed: Array<'class' | 'moved' | 'zones' | 'speed'> = [];
    if (t.class_name !== s.cls) changed.push('class');
    const cx = (t.box[0] + t.box[2]) / 2;
    const cy = (t.box[1] + t.box[3]) / 2;
    if (Math.hypot(cx - s.cx, cy - s.cy) > Math.max(MOVE_MIN_PX, MOVE_FRACTION * s.size)) changed.push('moved');
    const zones = this.facts.zones(t.id);
    if (zones.join(',') !== s.zones) changed.push('zones');
    const kmh = this.facts.speedKmh(t.id);
    if ((kmh === undefined) !== (s.kmh === undefined) || (kmh !== undefined && s.kmh !== undefined && Math.abs(kmh - s.kmh) >= Math.max(SPEED_CHANGE_KMH, SPEED_CHANGE_FRACTION * s.kmh))) {
      changed.push('speed');
    }
    if (changed.length === 0) return;
    this.outlet.send(
      makeEvent({
        type: 'object_update',
        ...this.outlet.envelope(now),
        object: this.facts.object(t),
        attributes: { changed, zones, age_s: round((now.mono - t.first_seen_ms) / 1000, 3) },
      }),
    );
    this.said(t, now.mono);
  }

  /** The track ended: its object_end; the track is forgotten. */
  end(t: Track, reason: 'lost' | 'left_frame' | 'shutdown', now: Stamp, summary: TrackSummary): void {
    const life = this.tracks.get(t.id);
    if (!life) return;
    const attributes: ObjectEndAttrs = {
      reason,
      first_seen_at: isoTime(life.firstWall),
      last_seen_at: isoTime(life.lastWall),
      duration_s: round((t.last_seen_ms - t.first_seen_ms) / 1000, 3),
      distance_px: round(life.distancePx, 1),
      zones_visited: summary.zones_visited,
      lines_crossed: summary.lines_crossed,
    };
    if (summary.max_speed_kmh !== undefined) attributes.max_speed_kmh = round(summary.max_speed_kmh, 1);
    if (summary.class_corrected_from !== undefined) attributes.class_corrected_from = summary.class_corrected_from;
    this.outlet.send(makeEvent({ type: 'object_end', ...this.outlet.envelope(now), object: this.facts.object(t), attributes }));
    this.tracks.delete(t.id);
  }
}
