// Flow statistics per counting line in fixed time bins aligned to the wall clock, and their `flow` events.
import { isoTime, makeEvent } from '../../contract/event.js';
import type { LineConfig } from '../../config/schema/index.js';
import type { Crossing } from './lines.js';
import { round, type EventOutlet, type Stamp } from './outlet.js';
import { percentile, SPEED_HALF_WINDOW_MS, SPEED_WIDE_HALF_WINDOW_MS, type SpeedListener } from './speed.js';

/** A flow bin waits at most this long after its end for the speeds of its last crossings (the window after a
 * crossing, widened near the frame edge), ms. */
export const FLOW_GRACE_MS = Math.max(SPEED_HALF_WINDOW_MS + 1000, SPEED_WIDE_HALF_WINDOW_MS + 400);

export interface FlowDirection {
  volume: number;
  by_class: Map<string, number>;
  /** Speeds measured at the line, km/h. */
  speeds_kmh: number[];
}

export interface FlowCounts {
  /** Time at least one counted object's box lay across the line (or lane), ms. */
  occupied_ms: number;
  in: FlowDirection;
  out: FlowDirection;
}

export interface FlowLine extends FlowCounts {
  /** Per lane of the line, in configuration order. */
  lanes: FlowCounts[];
}

/** A crossing counted in a bin: to move it to another class while the bin is still open. */
export interface Tally {
  bin: FlowBin;
  /** The line's and the lane's direction counts it was added to. */
  dirs: FlowDirection[];
  cls: string;
}

export interface FlowBin {
  start_wall_ms: number;
  end_wall_ms: number;
  start_mono_ms: number;
  end_mono_ms: number;
  /** Wall minus monotonic clock when the bin was laid out. */
  offset_ms: number;
  /** Analysed time within the bin, ms. */
  observed_ms: number;
  lines: FlowLine[];
  /** Speed measurements still to come for crossings counted in this bin. */
  pending: number;
  emitted: boolean;
}

/** A wall-clock step larger than this re-aligns the next bin (NTP sync, manual change). */
const CLOCK_JUMP_MS = 1000;

/**
 * Time keeping of the bins. The interval between two frames is observed time, up to `gap_cap_ms` (a longer
 * gap is an outage, not an empty road); occupancy is sample-and-hold: the line state seen at a frame holds
 * until the next one. Bins are laid out on the wall clock once and then run on the monotonic clock, so a
 * clock step never makes a bin negative; after a step the next bin is re-aligned. A bin ends when a frame at
 * or past its end arrives, and is handed to `onBin` once the speeds of its crossings are measured (they need
 * a little time after the crossing) or `grace_ms` after its end.
 */
export class FlowBins {
  private cur: FlowBin | undefined;
  private readonly closing: FlowBin[] = [];
  private lastMono: number | undefined;
  private readonly occupied: boolean[];
  private readonly laneOccupied: boolean[][];

  /** `lanesPerLine`: how many lanes each line has (default none). */
  constructor(
    private readonly nLines: number,
    private readonly binMs: number,
    private readonly gapCapMs: number,
    private readonly graceMs: number,
    private readonly onBin: (bin: FlowBin) => void,
    private readonly lanesPerLine: readonly number[] = [],
  ) {
    this.occupied = new Array<boolean>(nLines).fill(false);
    this.laneOccupied = Array.from({ length: nLines }, (_, i) => new Array<boolean>(lanesPerLine[i] ?? 0).fill(false));
  }

  /** The bin in progress. */
  get current(): FlowBin | undefined {
    return this.cur;
  }

  /** Accounts the time since the previous frame and ends the bins it completes. */
  advance(mono_ms: number, wall_ms: number): void {
    if (this.nLines === 0) return;
    if (!this.cur || this.lastMono === undefined) {
      this.cur = this.open(mono_ms, wall_ms);
      this.lastMono = mono_ms;
      return;
    }
    let from = this.lastMono;
    if (mono_ms < from) return; // not monotonic: ignore the frame for timing
    const observedEnd = from + Math.min(mono_ms - from, this.gapCapMs);
    while (mono_ms >= this.cur.end_mono_ms) {
      const prev: FlowBin = this.cur;
      this.integrate(prev, from, Math.min(observedEnd, prev.end_mono_ms));
      this.closing.push(prev);
      const jumped: boolean = Math.abs(wall_ms - mono_ms - prev.offset_ms) > CLOCK_JUMP_MS;
      this.cur = jumped || mono_ms >= prev.end_mono_ms + this.binMs ? this.open(mono_ms, wall_ms) : this.next(prev);
      from = Math.max(from, prev.end_mono_ms);
    }
    this.integrate(this.cur, from, Math.min(observedEnd, mono_ms));
    this.lastMono = mono_ms;
  }

  /** The bin holding a monotonic time: the current one, or one ending and still open for late speeds. */
  binAt(mono_ms: number): FlowBin | undefined {
    if (!this.cur || mono_ms >= this.cur.start_mono_ms) return this.cur;
    for (let i = this.closing.length - 1; i >= 0; i--) {
      const b = this.closing[i]!;
      if (mono_ms >= b.start_mono_ms && mono_ms < b.end_mono_ms) return b;
    }
    return this.cur;
  }

  /** Line (and lane) occupancy seen in the frame just analysed (holds until the next frame). */
  setOccupied(flags: readonly boolean[], laneFlags?: ReadonlyArray<readonly boolean[]>): void {
    for (let i = 0; i < this.nLines; i++) {
      this.occupied[i] = flags[i] ?? false;
      const lanes = this.laneOccupied[i]!;
      for (let k = 0; k < lanes.length; k++) lanes[k] = laneFlags?.[i]?.[k] ?? false;
    }
  }

  /** Hands over the ended bins that are complete. */
  release(mono_ms: number, force = false): void {
    for (let i = 0; i < this.closing.length; ) {
      const b = this.closing[i]!;
      if (force || b.pending <= 0 || mono_ms >= b.end_mono_ms + this.graceMs) {
        this.closing.splice(i, 1);
        this.emit(b);
      } else i++;
    }
  }

  /** Ends the bin in progress (shutdown) and hands over everything. */
  flush(mono_ms?: number, wall_ms?: number): void {
    if (mono_ms !== undefined && wall_ms !== undefined) this.advance(mono_ms, wall_ms);
    if (this.cur) this.closing.push(this.cur);
    this.cur = undefined;
    this.lastMono = undefined;
    this.release(mono_ms ?? 0, true);
  }

  private emit(b: FlowBin): void {
    b.emitted = true;
    const counted = b.lines.some((l) => l.in.volume + l.out.volume > 0);
    if (b.observed_ms <= 0 && !counted) return; // never analysed: no statistics rather than false zeros
    this.onBin(b);
  }

  private integrate(b: FlowBin, a: number, z: number): void {
    const from = Math.max(a, b.start_mono_ms);
    const dt = z - from;
    if (!(dt > 0)) return;
    b.observed_ms += dt;
    for (let i = 0; i < this.nLines; i++) {
      const line = b.lines[i]!;
      if (this.occupied[i]) line.occupied_ms += dt;
      const lanes = this.laneOccupied[i]!;
      for (let k = 0; k < lanes.length; k++) if (lanes[k]) line.lanes[k]!.occupied_ms += dt;
    }
  }

  private open(mono_ms: number, wall_ms: number): FlowBin {
    const offset = wall_ms - mono_ms;
    const start = Math.floor(wall_ms / this.binMs) * this.binMs;
    return this.bin(start, start - offset, offset);
  }

  private next(prev: FlowBin): FlowBin {
    return this.bin(prev.end_wall_ms, prev.end_mono_ms, prev.offset_ms);
  }

  private bin(start_wall: number, start_mono: number, offset: number): FlowBin {
    const dir = (): FlowDirection => ({ volume: 0, by_class: new Map(), speeds_kmh: [] });
    return {
      start_wall_ms: start_wall,
      end_wall_ms: start_wall + this.binMs,
      start_mono_ms: start_mono,
      end_mono_ms: start_mono + this.binMs,
      offset_ms: offset,
      observed_ms: 0,
      lines: Array.from({ length: this.nLines }, (_, i) => ({
        occupied_ms: 0,
        in: dir(),
        out: dir(),
        lanes: Array.from({ length: this.lanesPerLine[i] ?? 0 }, () => ({ occupied_ms: 0, in: dir(), out: dir() })),
      })),
      pending: 0,
      emitted: false,
    };
  }
}

/**
 * Flow of the camera's counting lines: volume per direction and class, speeds measured at the line and
 * occupancy, for the line and for each of its lanes; one `flow` event per line and bin (see FlowBins for the
 * time keeping).
 */
export class LineFlow {
  private readonly bins: FlowBins;
  /** The frame analysed last: a bin's event carries its time when that is before the bin's end. */
  private last: Stamp | undefined;

  constructor(
    private readonly lines: readonly LineConfig[],
    bin_ms: number,
    gap_cap_ms: number,
    private readonly outlet: EventOutlet,
  ) {
    this.bins = new FlowBins(
      lines.length,
      bin_ms,
      gap_cap_ms,
      FLOW_GRACE_MS,
      (bin) => this.emit(bin),
      lines.map((l) => l.lanes?.length ?? 0),
    );
  }

  /** A frame is being analysed: accounts the time since the previous one. */
  advance(now: Stamp): void {
    this.last = now;
    this.bins.advance(now.mono, now.wall);
  }

  /**
   * Counts a crossing in the bin of its time, for the line and its lane. With `speedFollows` the bin waits
   * for the speed measured at the crossing: the returned listener takes it. The tally lets `reclass` move
   * the crossing to another class while the bin is open.
   */
  count(c: Crossing, speedFollows: boolean): { listener: SpeedListener | undefined; tally: Tally } | undefined {
    const bin = this.bins.binAt(c.mono);
    if (!bin) return undefined;
    const line = bin.lines[c.index]!;
    const dirs = [line[c.direction]];
    if (c.laneIndex !== undefined) {
      const lane = line.lanes[c.laneIndex];
      if (lane) dirs.push(lane[c.direction]);
    }
    const cls = c.track.class_name;
    for (const fd of dirs) {
      fd.volume++;
      fd.by_class.set(cls, (fd.by_class.get(cls) ?? 0) + 1);
    }
    const tally: Tally = { bin, dirs, cls };
    if (!speedFollows) return { listener: undefined, tally };
    bin.pending++;
    const listener: SpeedListener = (kmh) => {
      bin.pending--;
      if (kmh !== undefined && !bin.emitted) for (const fd of dirs) fd.speeds_kmh.push(kmh);
    };
    return { listener, tally };
  }

  /** Moves a counted crossing to class `cls` if its bin was not sent yet; returns whether it did. */
  reclass(tally: Tally, cls: string): boolean {
    if (tally.bin.emitted) return false;
    if (tally.cls === cls) return true;
    for (const fd of tally.dirs) {
      const n = (fd.by_class.get(tally.cls) ?? 0) - 1;
      if (n > 0) fd.by_class.set(tally.cls, n);
      else fd.by_class.delete(tally.cls);
      fd.by_class.set(cls, (fd.by_class.get(cls) ?? 0) + 1);
    }
    tally.cls = cls;
    return true;
  }

  /** End of a frame: the line and lane occupancy it showed (held until the next frame), then the bins that are complete. */
  endFrame(occupied: readonly boolean[], mono: number, laneOccupied?: ReadonlyArray<readonly boolean[]>): void {
    this.bins.setOccupied(occupied, laneOccupied);
    this.bins.release(mono);
  }

  /** Shutdown: ends the bin in progress (partial: see its `observed_s`) and hands over everything. */
  flush(now: Stamp): void {
    this.bins.flush(now.mono, now.wall);
  }

  private emit(bin: FlowBin): void {
    const last = this.last;
    const wall = Math.min(bin.end_wall_ms, last?.wall ?? bin.end_wall_ms);
    const mono = Math.max(0, Math.min(bin.end_mono_ms, last?.mono ?? bin.end_mono_ms));
    const occupancy = (ms: number) => (bin.observed_ms > 0 ? round(Math.min(1, ms / bin.observed_ms), 4) : 0);
    this.lines.forEach((line, i) => {
      const fl = bin.lines[i]!;
      const lanes = line.lanes?.map((lane, k) => {
        const fk = fl.lanes[k]!;
        return { lane: lane.id, occupancy: occupancy(fk.occupied_ms), in: directionStats(fk.in), out: directionStats(fk.out) };
      });
      this.outlet.send(
        makeEvent({
          type: 'flow',
          ...this.outlet.envelope({ wall, mono, synced: last?.synced ?? false }),
          rule: { kind: 'line', id: line.id },
          attributes: {
            bin_start: isoTime(bin.start_wall_ms),
            bin_end: isoTime(bin.end_wall_ms),
            observed_s: round(bin.observed_ms / 1000, 3),
            occupancy: occupancy(fl.occupied_ms),
            in: directionStats(fl.in),
            out: directionStats(fl.out),
            ...(lanes ? { lanes } : {}),
          },
        }),
      );
    });
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
