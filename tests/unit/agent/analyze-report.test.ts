// The summary table and progress bar of `analyze`, from hand-made events (the demo clip has no lanes).
import { describe, expect, it } from 'vitest';
import { AnalyzeTally, ProgressBar } from '../../../cli/analyze-report.js';
import { columns } from '../../../core/table.js';
import { LineSchema, ZoneSchema } from '../../../config/schema/index.js';
import { makeEvent, seededUuidv7, useEventIds, uuidv7Time, type EventDraft } from '../../../contract/event.js';

const camera = {
  lines: [
    LineSchema.parse({ id: 'road', a: [0, 100], b: [200, 100], lanes: [{ id: 'l1', from: 0, to: 0.5 }, { id: 'l2', from: 0.5, to: 0.9 }] }),
    LineSchema.parse({ id: 'path', a: [0, 50], b: [200, 50] }),
  ],
  zones: [ZoneSchema.parse({ id: 'stop', polygon: [[0, 0], [10, 0], [10, 10], [0, 10]] }), ZoneSchema.parse({ id: 'idle', polygon: [[0, 0], [10, 0], [10, 10]] })],
};

const env = { device: 'd', site: 's', camera: 'c', captured_at_ms: 1000, mono_ms: 1000, clock_synced: true };
const object = (cls: string) => ({ track_id: 1, class: cls, score: 0.9, box: [0, 0, 1, 1] as [number, number, number, number] });

function crossing(line: string, direction: 'in' | 'out', cls: string, lane?: string): EventDraft {
  return makeEvent({ type: 'line_crossing', ...env, object: object(cls), rule: { kind: 'line', id: line }, attributes: { direction, point_px: [1, 1], crossed_at: '1970-01-01T00:00:01.000Z', ...(lane ? { lane } : {}) } });
}

describe('analyze summary table', () => {
  it('counts crossings per line, direction, class and lane, and zone entries, peak and longest dwell', () => {
    const t = new AnalyzeTally(camera);
    for (const e of [
      crossing('road', 'in', 'car', 'l1'),
      crossing('road', 'in', 'car', 'l1'),
      crossing('road', 'in', 'truck', 'l2'),
      crossing('road', 'in', 'car'), // outside every lane
      crossing('road', 'out', 'car', 'l2'),
      crossing('path', 'out', 'person'),
      crossing('nowhere', 'in', 'car'), // not a line of this camera: ignored
      makeEvent({ type: 'zone_enter', ...env, object: object('car'), rule: { kind: 'zone', id: 'stop' }, attributes: { occupancy: 1 } }),
      makeEvent({ type: 'zone_enter', ...env, object: object('car'), rule: { kind: 'zone', id: 'stop' }, attributes: { occupancy: 2 } }),
      makeEvent({ type: 'stopped_vehicle', ...env, object: object('car'), rule: { kind: 'zone', id: 'stop' }, attributes: { dwell_s: 31.25, dwell_threshold_s: 30, entered_at: '1970-01-01T00:00:00.000Z' } }),
      makeEvent({ type: 'zone_exit', ...env, object: object('car'), rule: { kind: 'zone', id: 'stop' }, attributes: { reason: 'left', dwell_s: 12, occupancy: 1 } }),
    ]) {
      t.add(e);
    }
    expect(t.running()).toEqual({ lines: { road: { in: 4, out: 1 }, path: { in: 0, out: 1 } }, zones: { stop: 1, idle: 0 } });
    const table = t.table(['person', 'car']);
    expect(table.split('\n')).toEqual([
      'LINE  LANE    DIR  person  car  truck  total',
      'road  l1      in        0    2      0      2',
      'road  l2      in        0    0      1      1',
      'road  (none)  in        0    1      0      1',
      'road  all     in        0    3      1      4',
      'road  l1      out       0    0      0      0',
      'road  l2      out       0    1      0      1',
      'road  all     out       0    1      0      1',
      'path  -       in        0    0      0      0',
      'path  -       out       1    0      0      1',
      '',
      'ZONE  ENTRIES  PEAK  MAX DWELL S',
      'stop        2     2         31.3',
      'idle        0     0            -',
      '',
    ]);
  });

  it('prints nothing for a camera without lines and zones', () => {
    expect(new AnalyzeTally({ lines: [], zones: [] }).table()).toBe('');
  });

  it('aligns columns left or right, without trailing spaces', () => {
    expect(columns(['A', 'NUM'], [['long', '1'], ['x', '100']], ['left', 'right'])).toEqual(['A     NUM', 'long    1', 'x     100']);
  });
});

describe('analyze progress bar', () => {
  it('redraws one line in place and erases it when done', async () => {
    let out = '';
    const bar = new ProgressBar((t) => (out += t), 'analyze', 20_000, 10);
    bar.update(1, 0);
    await new Promise((r) => setTimeout(r, 150));
    bar.update(50, 10_000);
    const ERASE = '\u001b[K'; // to the end of the line
    const [first, second, rest] = out.split(ERASE);
    expect(first).toMatch(/^\ranalyze \[\.{10}\] +0% +1 frames +0\.0 fps$/);
    expect(second).toMatch(/^\ranalyze \[#{5}\.{5}\] +50% +50 frames +[\d.]+ fps +ETA \d+s$/);
    expect(rest).toBe('');
    bar.done();
    expect(out.endsWith(`\r${ERASE}`)).toBe(true);
  });
});

describe('deterministic event ids', () => {
  it('are the same for the same seed and capture times, valid UUIDv7 carrying the time, and unique', () => {
    const ids = (seed: string) => {
      const restore = useEventIds(seededUuidv7(seed));
      try {
        return [0, 0, 200, 100, 5000].map((ms) => makeEvent({ type: 'zone_enter', ...env, captured_at_ms: ms, object: object('car'), rule: { kind: 'zone', id: 'stop' }, attributes: { occupancy: 1 } }).id);
      } finally {
        restore();
      }
    };
    const a = ids('clip-a');
    expect(ids('clip-a')).toEqual(a);
    expect(new Set(a).size).toBe(a.length);
    for (const id of a) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The time never goes back (an event about an earlier frame keeps the order of ids).
    expect(a.map(uuidv7Time)).toEqual([0, 0, 200, 200, 5000]);
    expect([...a].sort()).toEqual(a);
    expect(ids('clip-b')).not.toEqual(a);
    // Restored: live ids are random again.
    expect(crossing('road', 'in', 'car').id).not.toBe(crossing('road', 'in', 'car').id);
  });
});
