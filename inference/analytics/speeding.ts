// Speeding: a vehicle faster than the speed limit of a line or a zone by more than the uncertainty of its
// measurement. Only the low end of the measurement counts (speed − one σ > limit): a reading just above the
// limit that the measurement cannot tell from it is not a violation.
import { makeEvent, type EventDraft, type EventObject } from '../../contract/event.js';
import type { LineConfig, ZoneConfig } from '../../config/schema/index.js';
import type { Track } from '../tracking/tracker.js';
import type { FrameContext } from '../tracking/types.js';
import { round, type EventOutlet, type Stamp } from './outlet.js';
import type { SpeedEstimate } from './speed.js';
import type { Violations } from './violations.js';

/** By how much the low end of a measurement exceeds a limit, km/h, to 0.01; not positive: no violation. */
export function speedExcess(speed_kmh: number, uncertainty_kmh: number, limit_kmh: number): number {
  return round(speed_kmh - uncertainty_kmh - limit_kmh, 2);
}

/**
 * Lines with `speed_limit_kmh` are checked against the speed measured at each crossing (their `speed` events);
 * zones with one against the running speed of each track inside, once per stay.
 */
export class Speeding {
  private readonly lineLimits = new Map<string, number>();
  private readonly zoneLimits: Array<{ id: string; limit: number }>;
  /** Per track, the zones it was caught speeding in during its current stay there. */
  private readonly caught = new Map<number, Set<string>>();

  constructor(
    lines: readonly LineConfig[],
    zones: readonly ZoneConfig[],
    private readonly outlet: EventOutlet,
    private readonly violations: Violations,
  ) {
    for (const l of lines) if (l.speed_limit_kmh !== undefined) this.lineLimits.set(l.id, l.speed_limit_kmh);
    this.zoneLimits = zones.filter((z) => z.speed_limit_kmh !== undefined).map((z) => ({ id: z.id, limit: z.speed_limit_kmh! }));
  }

  /** Whether a zone has a limit (else `observe` has nothing to do: callers skip it). */
  get zoned(): boolean {
    return this.zoneLimits.length > 0;
  }

  /** Every event the camera sends: a `speed` event on a line with a limit is checked. */
  seen(ev: EventDraft): void {
    if (ev.type !== 'speed') return;
    const limit = this.lineLimits.get(ev.rule.id);
    if (limit === undefined) return;
    const { speed_kmh, speed_uncertainty_kmh } = ev.object;
    const excess = speedExcess(speed_kmh, speed_uncertainty_kmh, limit);
    if (!(excess > 0)) return;
    const a = ev.attributes;
    this.violations.send(
      makeEvent({
        type: 'speeding',
        device: ev.device,
        site: ev.site,
        camera: ev.camera,
        captured_at_ms: Date.parse(ev.captured_at),
        mono_ms: ev.mono_ms,
        clock_synced: ev.clock_synced,
        object: ev.object,
        rule: { kind: 'line', id: ev.rule.id },
        attributes: {
          limit_kmh: limit,
          speed_kmh,
          uncertainty_kmh: speed_uncertainty_kmh,
          excess_kmh: excess,
          measured: 'line',
          direction: a.direction,
          ...(a.lane !== undefined ? { lane: a.lane } : {}),
          window_s: a.window_s,
        },
      }),
      ev.object.box,
      undefined,
    );
  }

  /** A confirmed track observed in a frame: `zones` it is in now, `speed` its running speed. */
  observe(t: Track, zones: readonly string[], speed: SpeedEstimate | undefined, object: (t: Track) => EventObject, now: Stamp, ctx: FrameContext | undefined): void {
    if (this.zoneLimits.length === 0) return;
    let caught = this.caught.get(t.id);
    // Left a zone: a later stay may be caught again.
    if (caught) for (const z of caught) if (!zones.includes(z)) caught.delete(z);
    if (!speed) return;
    // Rounded as the event states them, so excess_kmh = speed_kmh − uncertainty_kmh − limit_kmh exactly.
    const kmh = round(speed.speed_ms * 3.6, 1);
    const sigma = round(speed.sigma_ms * 3.6, 1);
    for (const { id, limit } of this.zoneLimits) {
      if (!zones.includes(id) || caught?.has(id)) continue;
      const excess = speedExcess(kmh, sigma, limit);
      if (!(excess > 0)) continue;
      if (!caught) this.caught.set(t.id, (caught = new Set()));
      caught.add(id);
      const o = object(t);
      this.violations.send(
        makeEvent({
          type: 'speeding',
          ...this.outlet.envelope(now),
          object: { ...o, speed_kmh: kmh, speed_uncertainty_kmh: sigma },
          rule: { kind: 'zone', id },
          attributes: { limit_kmh: limit, speed_kmh: kmh, uncertainty_kmh: sigma, excess_kmh: excess, measured: 'zone', window_s: round(speed.span_s, 3) },
        }),
        t.box,
        ctx,
      );
    }
  }

  drop(trackId: number): void {
    this.caught.delete(trackId);
  }
}
