// Zones: occupancy (enter/exit), dwell (stopped vehicle) and wrong-way travel.
import { isoTime, makeEvent } from '../../contract/event.js';
import type { ZoneConfig } from '../../config/schema/index.js';
import type { Track } from '../tracking/tracker.js';
import { polygonSignedDistance, type Vec2 } from './geometry.js';
import { round, type EventOutlet, type ObjectOf, type Observation, type Stamp } from './outlet.js';
import type { Violations } from './violations.js';

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

/** A track relative to one zone. */
interface ZoneStay {
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

interface ZoneTrack {
  stays: ZoneStay[];
  visited: string[];
}

/**
 * The camera's zones. An anchor `hysteresis_px` inside the polygon enters, as far outside leaves
 * (`zone_enter` / `zone_exit` with the occupancy). A stay of `dwell_threshold_s` is a stopped vehicle; travel
 * of `wrong_way_min_distance_px` against `allowed_direction` is wrong way; both are violations, once a stay.
 */
export class Zones {
  private readonly zones: ZoneRt[];
  private readonly tracks = new Map<number, ZoneTrack>();

  constructor(
    configs: readonly ZoneConfig[],
    private readonly outlet: EventOutlet,
    private readonly violations: Violations,
    private readonly objectOf: ObjectOf,
  ) {
    this.zones = configs.map((cfg, index) => {
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
  }

  begin(trackId: number): void {
    const stays = this.zones.map(() => ({ inside: false, enterMono: 0, enterWall: 0, stopped: false, wrong: false, projMax: 0, atMaxX: 0, atMaxY: 0 }));
    this.tracks.set(trackId, { stays, visited: [] });
  }

  step(o: Observation): void {
    const zt = this.tracks.get(o.track.id);
    if (!zt) return;
    for (const z of this.zones) this.zoneStep(zt, z, o);
  }

  /** Ids of the zones the track is in now. */
  current(trackId: number): string[] {
    const out: string[] = [];
    const zt = this.tracks.get(trackId);
    if (zt) for (const z of this.zones) if (zt.stays[z.index]!.inside) out.push(z.cfg.id);
    return out;
  }

  /** Ids of the zones the track entered so far, in order of first entry. */
  visited(trackId: number): string[] {
    return this.tracks.get(trackId)?.visited ?? [];
  }

  /** The track ended: it leaves every zone it is in (reason `track_ended`, dwell up to its last sighting). */
  exitAll(t: Track, now: Stamp): void {
    const zt = this.tracks.get(t.id);
    if (!zt) return;
    for (const z of this.zones) {
      const stay = zt.stays[z.index]!;
      if (stay.inside) this.exit(t, z, stay, 'track_ended', t.last_seen_ms, now);
    }
  }

  drop(trackId: number): void {
    this.tracks.delete(trackId);
  }

  private zoneStep(zt: ZoneTrack, z: ZoneRt, o: Observation): void {
    const stay = zt.stays[z.index]!;
    const t = o.track;
    const { x, y, mono, wall } = o.at;
    const h = z.cfg.hysteresis_px;
    if (!stay.inside) {
      if (x < z.minX + h || x > z.maxX - h || y < z.minY + h || y > z.maxY - h) return; // cannot be h inside
      if (z.classes && !z.classes.has(t.class_name)) return;
      const sd = polygonSignedDistance(x, y, z.poly);
      if (!(sd > 0 && sd >= h)) return;
      stay.inside = true;
      stay.enterMono = mono;
      stay.enterWall = wall;
      stay.stopped = false;
      stay.projMax = z.dir ? x * z.dir[0] + y * z.dir[1] : 0;
      stay.atMaxX = x;
      stay.atMaxY = y;
      z.occupants.add(t.id);
      if (!zt.visited.includes(z.cfg.id)) zt.visited.push(z.cfg.id);
      this.outlet.send(
        makeEvent({
          type: 'zone_enter',
          ...this.outlet.envelope(o.now),
          object: this.objectOf(t),
          rule: { kind: 'zone', id: z.cfg.id },
          attributes: { occupancy: z.occupants.size },
        }),
      );
    } else {
      const outsideBox = x < z.minX - h || x > z.maxX + h || y < z.minY - h || y > z.maxY + h;
      const sd = outsideBox ? -Infinity : polygonSignedDistance(x, y, z.poly);
      if (sd < 0 && -sd >= h) {
        this.exit(t, z, stay, 'left', mono, o.now);
        return;
      }
    }
    if (z.dwellMs !== undefined && !stay.stopped && mono - stay.enterMono >= z.dwellMs) {
      stay.stopped = true;
      this.violations.send(
        makeEvent({
          type: 'stopped_vehicle',
          ...this.outlet.envelope(o.now),
          object: this.objectOf(t),
          rule: { kind: 'zone', id: z.cfg.id },
          attributes: {
            dwell_s: round((mono - stay.enterMono) / 1000, 3),
            dwell_threshold_s: z.cfg.dwell_threshold_s!,
            entered_at: isoTime(stay.enterWall),
          },
        }),
        t.box,
        o.ctx,
      );
    }
    if (z.dir && !stay.wrong) this.wrongWayStep(t, z, stay, o);
  }

  private wrongWayStep(t: Track, z: ZoneRt, stay: ZoneStay, o: Observation): void {
    const dir = z.dir!;
    const { x, y } = o.at;
    const p = x * dir[0] + y * dir[1];
    if (p > stay.projMax) {
      stay.projMax = p;
      stay.atMaxX = x;
      stay.atMaxY = y;
      return;
    }
    if (stay.projMax - p < z.cfg.wrong_way_min_distance_px) return;
    stay.wrong = true;
    const hx = x - stay.atMaxX;
    const hy = y - stay.atMaxY;
    const hl = Math.hypot(hx, hy) || 1;
    this.violations.send(
      makeEvent({
        type: 'wrong_way',
        ...this.outlet.envelope(o.now),
        object: this.objectOf(t),
        rule: { kind: 'zone', id: z.cfg.id },
        attributes: {
          distance_px: round(stay.projMax - p, 1),
          allowed_direction: z.cfg.allowed_direction!,
          heading: [round(hx / hl, 3), round(hy / hl, 3)],
        },
      }),
      t.box,
      o.ctx,
    );
  }

  private exit(t: Track, z: ZoneRt, stay: ZoneStay, reason: 'left' | 'track_ended', atMono: number, now: Stamp): void {
    stay.inside = false;
    z.occupants.delete(t.id);
    this.outlet.send(
      makeEvent({
        type: 'zone_exit',
        ...this.outlet.envelope(now),
        object: this.objectOf(t),
        rule: { kind: 'zone', id: z.cfg.id },
        attributes: { reason, dwell_s: round(Math.max(0, atMono - stay.enterMono) / 1000, 3), occupancy: z.occupants.size },
      }),
    );
  }
}
