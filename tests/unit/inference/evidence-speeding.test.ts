// The speeding rule on synthetic tracks (testkit/synthetic-scenes.ts) through the real analytics: a limit per
// line (the speed measured at the crossing) or zone (the running speed inside), fired only when the speed minus
// its stated uncertainty exceeds the limit; and the violation's evidence hook.
import { describe, expect, it } from 'vitest';
import { AnalyticsSchema, CameraSchema } from '../../../config/schema/index.js';
import { EventDraftSchema, type EventDraft, type EventOf } from '../../../contract/event.js';
import { CameraAnalytics } from '../../../inference/analytics/engine.js';
import type { ViolationCapture } from '../../../inference/analytics/evidence.js';
import { speedExcess } from '../../../inference/analytics/speeding.js';
import { linearPath, simulate, type SimObject } from '../../../testkit/synthetic-scenes.js';

const PX_PER_M = 20;
/** A tall view down the road (vehicles move along the image columns: no along-rows uncertainty). */
const FRAME = { width: 640, height: 2000 };

function camera(over: Record<string, unknown> = {}) {
  return CameraSchema.parse({
    id: 'cam1',
    url: 'clip.mp4',
    frame: FRAME,
    detection_fps: 10,
    motion: { enabled: false },
    calibration: {
      image: [[0, 0], [640, 0], [640, 2000], [0, 2000]],
      world: [[0, 0], [640 / PX_PER_M, 0], [640 / PX_PER_M, 2000 / PX_PER_M], [0, 2000 / PX_PER_M]],
      position_error_m: 0.5,
    },
    ...over,
  });
}

/** A car driving down the middle at `kmh`, entering at `t0` s. */
function car(kmh: number, t0: number): SimObject {
  const v = (kmh / 3.6) * PX_PER_M;
  return { class_name: 'car', w: 80, h: 120, at: linearPath([320, 60], [320, 1990], t0, t0 + 1930 / v) };
}

function run(cam: ReturnType<typeof camera>, cars: SimObject[], seconds: number, evidence?: (c: ViolationCapture) => void): EventDraft[] {
  const events: EventDraft[] = [];
  const ca = new CameraAnalytics(cam, AnalyticsSchema.parse({}), { id: 'box-1', site: 'site-1' }, (e) => events.push(e), undefined, {
    evidence: evidence
      ? {
          timeout_ms: 1000,
          capture: (c: ViolationCapture) => {
            evidence(c);
            return undefined;
          },
        }
      : false,
  });
  for (const f of simulate(cars, { fps: 10, duration_s: seconds })) ca.update(f.ctx, f.detections);
  void ca.flush();
  return events;
}

describe('speeding rule', () => {
  it('takes the low end of the measurement: speed − uncertainty must exceed the limit', () => {
    expect(speedExcess(55, 3, 50)).toBe(2);
    expect(speedExcess(52, 2.1, 50)).toBeLessThan(0);
    expect(speedExcess(52.1, 2.1, 50)).toBe(0); // exactly at the limit is not over it
  });

  it('fires on a line with a limit exactly for the cars whose measured speed minus its σ is over it', () => {
    const cam = camera({ lines: [{ id: 'trap', a: [0, 1000], b: [640, 1000], speed_limit_kmh: 50 }] });
    const kmh = [40, 52, 53, 80];
    const events = run(cam, kmh.map((k, i) => car(k, i * 6)), 26);
    const speeds = events.filter((e): e is EventOf<'speed'> => e.type === 'speed');
    expect(speeds.map((e) => Math.round(e.object.speed_kmh))).toEqual(kmh);
    // 52 km/h reads above the limit but not by more than its uncertainty (≈2.1 km/h): no violation.
    expect(speeds[1]!.object.speed_kmh).toBeGreaterThan(50);
    expect(speeds[1]!.object.speed_kmh - speeds[1]!.object.speed_uncertainty_kmh).toBeLessThan(50);
    const speeding = events.filter((e): e is EventOf<'speeding'> => e.type === 'speeding');
    expect(speeding.map((e) => e.object.track_id)).toEqual([speeds[2]!.object.track_id, speeds[3]!.object.track_id]);
    for (const e of speeding) {
      expect(EventDraftSchema.safeParse(e).error).toBeUndefined();
      expect(e.priority).toBe('violation');
      expect(e.rule).toEqual({ kind: 'line', id: 'trap' });
      const a = e.attributes;
      expect(a).toMatchObject({ limit_kmh: 50, measured: 'line', direction: expect.any(String) });
      expect(a.excess_kmh).toBeCloseTo(a.speed_kmh - a.uncertainty_kmh - 50, 6);
      // Stamped like the speed event it came from: the crossing's frame.
      const from = speeds.find((s) => s.object.track_id === e.object.track_id)!;
      expect([e.captured_at, e.mono_ms]).toEqual([from.captured_at, from.mono_ms]);
    }
  });

  it('fires in a zone with a limit once per stay, on the running speed', () => {
    const cam = camera({ zones: [{ id: 'school', polygon: [[0, 400], [640, 400], [640, 1600], [0, 1600]], speed_limit_kmh: 30 }] });
    const events = run(cam, [car(20, 0), car(60, 12)], 20);
    const speeding = events.filter((e): e is EventOf<'speeding'> => e.type === 'speeding');
    expect(speeding).toHaveLength(1);
    const e = speeding[0]!;
    expect(e.rule).toEqual({ kind: 'zone', id: 'school' });
    expect(e.attributes).toMatchObject({ limit_kmh: 30, measured: 'zone' });
    expect(e.attributes.speed_kmh - e.attributes.uncertainty_kmh).toBeGreaterThan(30);
    expect(e.object.speed_kmh).toBe(e.attributes.speed_kmh);
    expect(EventDraftSchema.safeParse(e).error).toBeUndefined();
  });

  it('hands the violation to the evidence with the box at the violation; without evidence it leaves at once', () => {
    const cam = camera({ lines: [{ id: 'trap', a: [0, 1000], b: [640, 1000], speed_limit_kmh: 50 }] });
    const captured: ViolationCapture[] = [];
    const events = run(cam, [car(90, 0)], 6, (c) => captured.push(c));
    const speeding = events.filter((e) => e.type === 'speeding');
    expect(speeding).toHaveLength(1); // the evidence refused (returned undefined): sent without
    expect(captured).toHaveLength(1);
    expect(captured[0]!.event.id).toBe(speeding[0]!.id);
    expect(captured[0]!.box).toEqual((speeding[0] as EventOf<'speeding'>).object.box);
  });

  it('no limit, no rule', () => {
    const events = run(camera({ lines: [{ id: 'trap', a: [0, 1000], b: [640, 1000] }] }), [car(100, 0)], 6);
    expect(events.some((e) => e.type === 'speed')).toBe(true);
    expect(events.some((e) => e.type === 'speeding')).toBe(false);
  });
});
