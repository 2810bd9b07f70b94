// The PostgreSQL sink's row mapping (center/pg/rows.ts) on events that pass the wire contract: which events
// become violations rows and what lands in their columns. The sink itself runs against PostgreSQL in
// tests/integration/center/pg.test.ts.
import { describe, expect, it } from 'vitest';
import { makeEvent, WireEventSchema, type EventInput, type EventType, type WireEvent } from '../../../contract/event.js';
import { eventRow, violationRow } from '../../../center/pg/rows.js';
import type { ReceivedEvent } from '../../../center/sinks.js';

const CAPTURED_MS = Date.parse('2026-03-02T08:15:00.000Z');
const RECEIVED_MS = CAPTURED_MS + 1_250;
const base = { device: 'box-1', site: 'site-a', camera: 'cam-1', captured_at_ms: CAPTURED_MS, mono_ms: 5_000, clock_synced: true };
const object = { track_id: 7, class: 'car', score: 0.8, box: [100, 120, 180, 200] as [number, number, number, number] };
const evidence = { package_id: '0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', manifest_sha256: 'a'.repeat(64), files: 5 };

/** A wire event (validated against the contract, so the test cannot drift from it) as the receiver hands it on. */
function received<T extends EventType>(input: Omit<EventInput<T>, keyof typeof base> & { type: T }, seq: number): ReceivedEvent {
  const draft = makeEvent({ ...base, ...input } as EventInput<T> & { type: T });
  const event: WireEvent = WireEventSchema.parse({ ...draft, seq, sent_at: new Date(RECEIVED_MS - 200).toISOString(), replayed: false });
  return { topic: `roadside/site-a/box-1/events/cam-1`, site: 'site-a', device: 'box-1', received_at: RECEIVED_MS, event };
}

const speeding = received(
  {
    type: 'speeding',
    object: { ...object, speed_kmh: 78.4, speed_uncertainty_kmh: 2.1 },
    rule: { kind: 'line', id: 'stop-a' },
    attributes: { limit_kmh: 60, speed_kmh: 78.4, uncertainty_kmh: 2.1, excess_kmh: 16.3, measured: 'line', direction: 'in', lane: 'lane-1', window_s: 0.8 },
    evidence,
  },
  41,
);

describe('violationRow', () => {
  it('routes a speeding event into the violations table with its speed, rule and evidence', () => {
    const row = violationRow(speeding);
    expect(row).toEqual({
      site: 'site-a',
      device: 'box-1',
      seq: 41,
      id: speeding.event.id,
      camera: 'cam-1',
      type: 'speeding',
      captured_at: '2026-03-02T08:15:00.000Z',
      received_at: '2026-03-02T08:15:01.250Z',
      clock_synced: true,
      rule_kind: 'line',
      rule_id: 'stop-a',
      direction: 'in',
      object_class: 'car',
      track_id: 7,
      speed_kmh: 78.4,
      evidence,
      payload: speeding.event,
    });
    // Limit and uncertainty have no columns: they are read from the payload.
    expect((row?.payload as { attributes: { limit_kmh: number; uncertainty_kmh: number } }).attributes).toMatchObject({ limit_kmh: 60, uncertainty_kmh: 2.1 });
  });

  it('routes a zone speeding event without evidence (no direction, evidence null)', () => {
    const zone = received(
      {
        type: 'speeding',
        object: { ...object, speed_kmh: 55, speed_uncertainty_kmh: 1 },
        rule: { kind: 'zone', id: 'school' },
        attributes: { limit_kmh: 30, speed_kmh: 55, uncertainty_kmh: 1, excess_kmh: 24, measured: 'zone' },
      },
      42,
    );
    expect(violationRow(zone)).toMatchObject({ type: 'speeding', rule_kind: 'zone', rule_id: 'school', direction: null, speed_kmh: 55, evidence: null });
  });

  it('keeps routing the other violation types and nothing of lower priority', () => {
    const stopped = received(
      {
        type: 'stopped_vehicle',
        object,
        rule: { kind: 'zone', id: 'shoulder' },
        attributes: { dwell_s: 31, dwell_threshold_s: 30, entered_at: '2026-03-02T08:14:29.000Z' },
        evidence,
      },
      43,
    );
    expect(violationRow(stopped)).toMatchObject({ type: 'stopped_vehicle', rule_id: 'shoulder', speed_kmh: null, evidence });

    // The speed measurement behind a speeding event is an ordinary event: events table only.
    const speed = received(
      {
        type: 'speed',
        object: { ...object, speed_kmh: 78.4, speed_uncertainty_kmh: 2.1 },
        rule: { kind: 'line', id: 'stop-a' },
        attributes: { direction: 'in', window_s: 0.8, samples: 12, distance_m: 17.4 },
      },
      44,
    );
    expect(violationRow(speed)).toBeNull();
    expect(eventRow(speed)).toMatchObject({ type: 'speed', priority: 'event', speed_kmh: 78.4, direction: 'in' });
  });
});
