// What the analytics parts share: the outlet their events leave by, the time of the frame being analysed
// and one observation of a confirmed track.
import type { EventDraft, EventObject, EventType } from '../../contract/event.js';
import type { Logger } from '../../core/log.js';
import type { Track } from '../tracking/tracker.js';
import type { Box, FrameContext } from '../tracking/types.js';

export interface DeviceRef {
  id: string;
  site: string;
}

export type EventSink = (event: EventDraft) => void;

/** Time of the frame being processed, for event envelopes. */
export interface Stamp {
  wall: number;
  mono: number;
  synced: boolean;
}

/** Where a track touched the road (bottom centre of its filtered box) and when. */
export interface Sample {
  x: number;
  y: number;
  mono: number;
  wall: number;
}

/** One observation of a confirmed track, as the lines and zones see it. */
export interface Observation {
  track: Track;
  at: Sample;
  /** The frame being analysed (envelope time); for a replayed first detection, the time of that detection. */
  now: Stamp;
  /** The frame, for evidence; undefined for a replayed first detection. */
  ctx: FrameContext | undefined;
}

/** The `object` of an event about a track, as it is now (box, class, running speed). */
export type ObjectOf = (track: Track) => EventObject;

export const round = (v: number, digits: number): number => {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
};
export const roundBox = (b: Box): Box => [round(b[0], 1), round(b[1], 1), round(b[2], 1), round(b[3], 1)];

/**
 * Hands events to the sink and counts them. A sink that throws is logged, never propagated into the frame
 * loop. While held (a newly confirmed track replays its first detections) events wait, so the track's
 * `object_new` goes out before the crossings and zone entries it made while still tentative.
 */
export class EventOutlet {
  private held: EventDraft[] | undefined;
  private readonly counts: Partial<Record<EventType, number>> = {};
  private total = 0;

  constructor(
    private readonly device: DeviceRef,
    private readonly cameraId: string,
    private readonly emit: EventSink,
    private readonly log: Logger | undefined,
  ) {}

  /** The envelope fields of an event about the frame of `now`. */
  envelope(now: Stamp) {
    return {
      device: this.device.id,
      site: this.device.site,
      camera: this.cameraId,
      captured_at_ms: now.wall,
      mono_ms: now.mono,
      clock_synced: now.synced,
    };
  }

  send(ev: EventDraft): void {
    if (this.held) {
      this.held.push(ev);
      return;
    }
    this.counts[ev.type] = (this.counts[ev.type] ?? 0) + 1;
    this.total++;
    try {
      this.emit(ev);
    } catch (err) {
      this.log?.error({ err, type: ev.type }, 'event sink threw');
    }
  }

  /** Holds every event sent from now until `release`. */
  hold(): void {
    this.held = [];
  }

  /** Sends `first`, then the events held since `hold`. */
  release(first: EventDraft): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.send(first);
    for (const ev of held) this.send(ev);
  }

  stats(): { events: Partial<Record<EventType, number>>; events_total: number } {
    return { events: { ...this.counts }, events_total: this.total };
  }
}
