import { describe, expect, it } from 'vitest';
import {
  EVENT_SCHEMA,
  EVENT_TYPES,
  EventDraftSchema,
  eventJsonSchema,
  makeEvent,
  PRIORITY,
  uuidv7,
  uuidv7Time,
  WireEventSchema,
} from '../../../contract/event.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

const env = { device: 'box-1', site: 'site-1', camera: 'cam1', captured_at_ms: T0, mono_ms: 123_456.5, clock_synced: true };
const object = { track_id: 7, class: 'car', score: 0.81, box: [10, 20, 110, 90] as [number, number, number, number] };

describe('UUIDv7', () => {
  it('has the version and variant bits and the timestamp', () => {
    const id = uuidv7(T0);
    expect(id).toMatch(UUID_V7);
    expect(uuidv7Time(id)).toBe(T0);
  });

  it('is unique and strictly increasing, also many within one millisecond', () => {
    const ids: string[] = [];
    for (let i = 0; i < 50_000; i++) ids.push(uuidv7(T0 + 1000 + Math.floor(i / 10_000)));
    expect(new Set(ids).size).toBe(ids.length);
    let ordered = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i]! > ids[i - 1]!) ordered++;
    expect(ordered).toBe(ids.length - 1);
    for (const id of ids.slice(0, 100)) expect(id).toMatch(UUID_V7);
  });

  it('never goes backwards when the clock does', () => {
    const a = uuidv7(T0 + 10_000);
    const b = uuidv7(T0 + 5_000); // clock stepped back
    const c = uuidv7(T0 + 10_001);
    expect(b > a).toBe(true);
    expect(c > b).toBe(true);
    expect(uuidv7Time(b)).toBe(T0 + 10_000);
  });

  it('orders by time across milliseconds', () => {
    const a = uuidv7(T0 + 20_000);
    const b = uuidv7(T0 + 20_001);
    expect(b > a).toBe(true);
  });
});

describe('event envelope', () => {
  it('makeEvent fills version, id, priority and the ISO capture time', () => {
    const ev = makeEvent({ type: 'line_crossing', ...env, object, rule: { kind: 'line', id: 'mid' }, attributes: { direction: 'in', point_px: [60, 90], crossed_at: new Date(T0 - 40).toISOString() } });
    expect(ev).toMatchObject({ schema: EVENT_SCHEMA, type: 'line_crossing', priority: 'event', captured_at: '2025-06-01T12:00:00.000Z', mono_ms: 123_456.5 });
    expect(ev.id).toMatch(UUID_V7);
    expect(ev.seq).toBeUndefined();
    expect(EventDraftSchema.parse(ev)).toEqual(ev);
  });

  it('fixes a priority per type', () => {
    expect(PRIORITY.red_light).toBe('violation');
    expect(PRIORITY.wrong_way).toBe('violation');
    expect(PRIORITY.stopped_vehicle).toBe('violation');
    expect(PRIORITY.flow).toBe('statistics');
    expect(PRIORITY.object_update).toBe('event');
    const bad = { ...makeEvent({ type: 'zone_enter', ...env, object, rule: { kind: 'zone', id: 'lot' }, attributes: { occupancy: 1 } }), priority: 'violation' };
    expect(EventDraftSchema.safeParse(bad).success).toBe(false);
  });

  it('rejects attributes of another type, unknown keys, a wrong rule kind, bad values', () => {
    const ok = makeEvent({ type: 'zone_exit', ...env, object, rule: { kind: 'zone', id: 'lot' }, attributes: { reason: 'left', dwell_s: 3.2, occupancy: 0 } });
    expect(EventDraftSchema.safeParse(ok).success).toBe(true);
    const cases: unknown[] = [
      { ...ok, attributes: { direction: 'in', point_px: [1, 2], crossed_at: ok.captured_at } },
      { ...ok, extra: 1 },
      { ...ok, object: { ...object, colour: 'red' } },
      { ...ok, rule: { kind: 'line', id: 'lot' } },
      { ...ok, captured_at: '2025-06-01 12:00:00' },
      { ...ok, id: '0190a6a0-0000-4000-8000-000000000000' }, // v4
      { ...ok, object: { ...object, score: 1.5 } },
      { ...ok, object: { ...object, track_id: 0 } },
      { ...ok, camera: 'Cam 1' },
    ];
    for (const c of cases) expect(EventDraftSchema.safeParse(c).success).toBe(false);
  });

  it('requires a measured speed on speed events, and allows evidence only on violations', () => {
    const speed = makeEvent({
      type: 'speed',
      ...env,
      object: { ...object, speed_kmh: 52.3, speed_uncertainty_kmh: 2.1 },
      rule: { kind: 'line', id: 'trap' },
      attributes: { direction: 'in', window_s: 1.2, samples: 7, distance_m: 17.4 },
    });
    expect(EventDraftSchema.safeParse(speed).success).toBe(true);
    expect(EventDraftSchema.safeParse({ ...speed, object }).success).toBe(false);
    const evidence = { frame_sha256: 'a'.repeat(64), crop_sha256: 'b'.repeat(64), frame_file: 'x-frame.jpg', crop_file: 'x-crop.jpg' };
    expect(EventDraftSchema.safeParse({ ...speed, evidence }).success).toBe(false);
    const ww = makeEvent({
      type: 'wrong_way',
      ...env,
      object,
      rule: { kind: 'zone', id: 'road' },
      attributes: { distance_px: 70, allowed_direction: [0, 1], heading: [0, -1] },
      evidence,
    });
    expect(EventDraftSchema.safeParse(ww).success).toBe(true);
  });

  it('wire events need seq, sent_at and replayed; drafts may carry seq', () => {
    const draft = makeEvent({ type: 'object_new', ...env, object, attributes: { first_seen_at: new Date(T0).toISOString(), zones: [] } });
    expect(WireEventSchema.safeParse(draft).success).toBe(false);
    const wire = { ...draft, seq: 41, sent_at: '2025-06-01T12:00:01.250+02:00', replayed: false };
    expect(WireEventSchema.safeParse(wire).success).toBe(true);
    expect(EventDraftSchema.safeParse({ ...draft, seq: 41 }).success).toBe(true);
    expect(WireEventSchema.safeParse({ ...wire, seq: -1 }).success).toBe(false);
  });

  it('flow events have no object', () => {
    const dir = { volume: 0, volume_by_class: {}, speed_samples: 0 };
    const flow = makeEvent({
      type: 'flow',
      ...env,
      rule: { kind: 'line', id: 'mid' },
      attributes: { bin_start: new Date(T0 - 60_000).toISOString(), bin_end: new Date(T0).toISOString(), observed_s: 60, occupancy: 0, in: dir, out: dir },
    });
    expect(EventDraftSchema.safeParse(flow).success).toBe(true);
    expect(EventDraftSchema.safeParse({ ...flow, object }).success).toBe(false);
  });

  it('exports a JSON Schema with one branch per type', () => {
    const js = eventJsonSchema();
    const branches = js.oneOf as Array<{ properties: { type: { const: string }; priority: { const: string } }; required: string[] }>;
    expect(branches.map((b) => b.properties.type.const)).toEqual([...EVENT_TYPES]);
    for (const b of branches) {
      expect(b.properties.priority.const).toBe(PRIORITY[b.properties.type.const as keyof typeof PRIORITY]);
      expect(b.required).toEqual(expect.arrayContaining(['schema', 'id', 'seq', 'device', 'site', 'camera', 'captured_at', 'mono_ms', 'clock_synced', 'type', 'priority', 'attributes', 'sent_at', 'replayed']));
    }
    expect(JSON.stringify(js)).toContain('speed_uncertainty_kmh');
  });
});
