// The center's traffic view: vehicles per line and direction over the last minutes (by capture time), shown beside
// the delivery table (or below it on a narrow terminal) and in the JSON summary lines.
import { describe, expect, it } from 'vitest';
import { FleetReceiver } from '../../../center/receiver.js';
import { TrafficCounter } from '../../../center/traffic.js';
import { renderTable, summaryLine } from '../../../center/view.js';
import { makeEvent, type WireEvent } from '../../../contract/event.js';
import { silentLogger } from '../../../core/log.js';

const NOW = Date.parse('2026-11-26T12:00:30Z');

function crossing(device: string, line: string, direction: 'in' | 'out', captured_ms: number): WireEvent {
  const draft = makeEvent({
    type: 'line_crossing',
    site: 's',
    device,
    camera: 'cam1',
    mono_ms: 1,
    clock_synced: true,
    captured_at_ms: captured_ms,
    object: { track_id: 1, class: 'car', score: 0.9, box: [1, 2, 3, 4] },
    rule: { kind: 'line', id: line },
    attributes: { direction, point_px: [1, 1], crossed_at: new Date(captured_ms).toISOString() },
  });
  return { ...draft, seq: 1, sent_at: draft.captured_at, replayed: false };
}

describe('TrafficCounter', () => {
  it('counts crossings per line and direction over the last minutes, by capture time', () => {
    const t = new TrafficCounter(60);
    for (let i = 0; i < 3; i++) t.add(crossing('a', 'north', 'in', NOW - i * 1000), NOW);
    t.add(crossing('a', 'north', 'out', NOW - 2 * 60_000), NOW);
    t.add(crossing('a', 'north', 'in', NOW - 10 * 60_000), NOW); // outside 5 min, inside 15
    t.add(crossing('b', 'south', 'out', NOW - 30_000), NOW);
    t.add(crossing('b', 'south', 'out', NOW - 2 * 3_600_000), NOW); // a replayed backlog: not live traffic
    t.add(crossing('b', 'south', 'out', NOW + 3_600_000), NOW); // a clock far ahead
    const flow = { ...crossing('a', 'north', 'in', NOW), type: 'flow' } as unknown as WireEvent;
    t.add(flow, NOW); // statistics are not crossings
    expect(t.rows(NOW, 5)).toEqual([
      { device: 's/a', camera: 'cam1', line: 'north', in: 3, out: 1 },
      { device: 's/b', camera: 'cam1', line: 'south', in: 0, out: 1 },
    ]);
    expect(t.rows(NOW, 15)[0]).toEqual({ device: 's/a', camera: 'cam1', line: 'north', in: 4, out: 1 });
    expect(t.rows(NOW + 20 * 60_000, 5)).toEqual([]);
  });
});

describe('fleet table with traffic', () => {
  const totals = new FleetReceiver({ url: 'mqtt://127.0.0.1:1' }, silentLogger()).totals();
  const traffic = {
    window_min: 5,
    rows: [
      { device: 's/a', camera: 'cam1', line: 'north', in: 12, out: 9 },
      { device: 's/b', camera: 'cam2', line: 'south', in: 0, out: 4 },
    ],
  };
  const sinks = [{ name: 'postgres', written: 1200, rows_per_s: 340, pending: 12, dropped: 0, rejected: 0, error: null }];

  it('puts the traffic beside the delivery table when the terminal is wide enough, below it otherwise', () => {
    const wide = renderTable([], totals, { now: NOW, width: 200, traffic, sinks }).split('\n');
    expect(wide[2]).toBe('postgres: 340 rows/s  written 1200  waiting 12');
    expect(wide[4]).toMatch(/^DEVICE\s+STATE\s.*INVALID\s+TRAFFIC 5 MIN\s+CAM\s+LINE\s+IN\s+OUT$/);
    expect(wide[5]).toMatch(/\s{4}s\/a\s+cam1\s+north\s+12\s+9$/);
    expect(wide[6]).toMatch(/^\s+s\/b\s+cam2\s+south\s+0\s+4$/);

    const narrow = renderTable([], totals, { now: NOW, width: 80, traffic }).split('\n');
    expect(narrow[3]).toMatch(/^DEVICE\s+STATE/);
    expect(narrow[4]).toBe('');
    expect(narrow[5]).toMatch(/^TRAFFIC 5 MIN\s+CAM\s+LINE\s+IN\s+OUT$/);
    expect(narrow[6]).toMatch(/^s\/a\s+cam1\s+north\s+12\s+9$/);
  });

  it('adds sinks and traffic to the JSON summary line', () => {
    const line = JSON.parse(summaryLine([], totals, NOW, { sinks, traffic })) as { sinks: unknown; traffic: { window_min: number; lines: unknown[] } };
    expect(line.sinks).toEqual(sinks);
    expect(line.traffic).toEqual({ window_min: 5, lines: traffic.rows });
  });
});
