// Live traffic of the fleet for the center's view: vehicles counted per line and direction (line_crossing events)
// over the last minutes, by capture time, so a backlog replayed after an outage does not show up as a rush now.
import type { WireEvent } from '../contract/event.js';

const MINUTE_MS = 60_000;

export interface TrafficRow {
  /** site/device */
  device: string;
  camera: string;
  line: string;
  in: number;
  out: number;
}

export class TrafficCounter {
  /** Per capture minute: counts by `device\tcamera\tline\tdirection`. */
  private readonly minutes = new Map<number, Map<string, number>>();

  /** Minutes kept (the longest window asked for). Default 60. */
  constructor(private readonly keep_min = 60) {}

  add(ev: WireEvent, now: number): void {
    if (ev.type !== 'line_crossing') return;
    const minute = Math.floor(Date.parse(ev.captured_at) / MINUTE_MS);
    const current = Math.floor(now / MINUTE_MS);
    // Older than the window (a replayed backlog) or from a clock ahead of ours: not live traffic.
    if (!(minute > current - this.keep_min && minute <= current + 1)) return;
    let counts = this.minutes.get(minute);
    if (!counts) {
      counts = new Map();
      this.minutes.set(minute, counts);
      for (const m of this.minutes.keys()) if (m <= current - this.keep_min) this.minutes.delete(m);
    }
    const key = `${ev.site}/${ev.device}\t${ev.camera}\t${ev.rule.id}\t${ev.attributes.direction}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }

  /** Counts of the last `window_min` minutes (the current one included), one row per line, sorted. */
  rows(now: number, window_min = 5): TrafficRow[] {
    const current = Math.floor(now / MINUTE_MS);
    const byLine = new Map<string, TrafficRow>();
    for (const [minute, counts] of this.minutes) {
      if (minute <= current - window_min) continue;
      for (const [key, n] of counts) {
        const [device = '', camera = '', line = '', direction] = key.split('\t');
        const id = `${device}\t${camera}\t${line}`;
        let row = byLine.get(id);
        if (!row) {
          row = { device, camera, line, in: 0, out: 0 };
          byLine.set(id, row);
        }
        if (direction === 'in') row.in += n;
        else row.out += n;
      }
    }
    return [...byLine.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  }
}
