// What `analyze` tells the technician beside the events: a progress bar while it runs (stderr, terminals only)
// and, at the end, a table of what every line and zone counted, from the events themselves.
import type { CameraConfig } from '../config/schema/index.js';
import type { EventDraft } from '../contract/event.js';
import { columns } from '../core/table.js';

/** Crossings of one line in one direction: per class, and per lane (by lane id; '' outside every lane). */
interface DirectionCount {
  byClass: Map<string, number>;
  byLane: Map<string, Map<string, number>>;
}

interface ZoneCount {
  entries: number;
  /** Objects inside now, and the most at once. */
  inside: number;
  peak: number;
  max_dwell_s: number;
}

/** Running counts for the overlay: crossings per line and direction, objects inside each zone. */
export interface RunningCounts {
  lines: Record<string, { in: number; out: number }>;
  zones: Record<string, number>;
}

const bump = (m: Map<string, number>, key: string): void => {
  m.set(key, (m.get(key) ?? 0) + 1);
};

/**
 * Counts the events of an analysis per line, direction, class and lane, and per zone (entries, peak occupancy,
 * longest dwell). Crossings are counted with the class the line_crossing event reported.
 */
export class AnalyzeTally {
  private readonly lines = new Map<string, { in: DirectionCount; out: DirectionCount }>();
  private readonly zones = new Map<string, ZoneCount>();

  constructor(private readonly camera: Pick<CameraConfig, 'lines' | 'zones'>) {
    for (const l of camera.lines) this.lines.set(l.id, { in: emptyDirection(), out: emptyDirection() });
    for (const z of camera.zones) this.zones.set(z.id, { entries: 0, inside: 0, peak: 0, max_dwell_s: 0 });
  }

  add(e: EventDraft): void {
    if (e.type === 'line_crossing') {
      const line = this.lines.get(e.rule.id);
      if (!line) return;
      const d = line[e.attributes.direction];
      bump(d.byClass, e.object.class);
      const lane = e.attributes.lane ?? '';
      let m = d.byLane.get(lane);
      if (!m) d.byLane.set(lane, (m = new Map<string, number>()));
      bump(m, e.object.class);
    } else if (e.type === 'zone_enter' || e.type === 'zone_exit' || e.type === 'stopped_vehicle') {
      const z = this.zones.get(e.rule.id);
      if (!z) return;
      if (e.type === 'zone_enter') z.entries += 1;
      if (e.type !== 'stopped_vehicle') {
        z.inside = e.attributes.occupancy;
        z.peak = Math.max(z.peak, z.inside);
      }
      if (e.type !== 'zone_enter') z.max_dwell_s = Math.max(z.max_dwell_s, e.attributes.dwell_s);
    }
  }

  running(): RunningCounts {
    const total = (d: DirectionCount): number => [...d.byClass.values()].reduce((a, b) => a + b, 0);
    const lines: RunningCounts['lines'] = {};
    for (const [id, l] of this.lines) lines[id] = { in: total(l.in), out: total(l.out) };
    const zones: RunningCounts['zones'] = {};
    for (const [id, z] of this.zones) zones[id] = z.inside;
    return { lines, zones };
  }

  /**
   * The table: per line and direction the crossings by class (columns in `classOrder`, then any other seen),
   * with a row per lane where the line has lanes; per zone the entries, peak occupancy and longest dwell.
   */
  table(classOrder: readonly string[] = []): string {
    const seen = new Set<string>();
    for (const l of this.lines.values()) for (const d of [l.in, l.out]) for (const c of d.byClass.keys()) seen.add(c);
    const classes = [...classOrder.filter((c) => seen.has(c)), ...[...seen].filter((c) => !classOrder.includes(c)).sort()];
    const withLanes = this.camera.lines.some((l) => l.lanes);
    const out: string[] = [];
    if (this.camera.lines.length > 0) {
      const rows: string[][] = [];
      const row = (line: string, lane: string | undefined, dir: string, counts: Map<string, number>): void => {
        const n = classes.map((c) => counts.get(c) ?? 0);
        rows.push([line, ...(withLanes ? [lane ?? '-'] : []), dir, ...n.map(String), String(n.reduce((a, b) => a + b, 0))]);
      };
      for (const cfg of this.camera.lines) {
        const l = this.lines.get(cfg.id)!;
        for (const dir of ['in', 'out'] as const) {
          const d = l[dir];
          if (cfg.lanes) {
            for (const lane of cfg.lanes) row(cfg.id, lane.id, dir, d.byLane.get(lane.id) ?? new Map<string, number>());
            if (d.byLane.has('')) row(cfg.id, '(none)', dir, d.byLane.get('')!);
            row(cfg.id, 'all', dir, d.byClass);
          } else row(cfg.id, undefined, dir, d.byClass);
        }
      }
      const head = ['LINE', ...(withLanes ? ['LANE'] : []), 'DIR', ...classes, 'total'];
      out.push(...columns(head, rows, head.map((_, i) => (i < head.length - classes.length - 1 ? 'left' : 'right'))));
    }
    if (this.camera.zones.length > 0) {
      if (out.length > 0) out.push('');
      const rows = this.camera.zones.map((cfg) => {
        const z = this.zones.get(cfg.id)!;
        return [cfg.id, String(z.entries), String(z.peak), z.entries > 0 ? z.max_dwell_s.toFixed(1) : '-'];
      });
      out.push(...columns(['ZONE', 'ENTRIES', 'PEAK', 'MAX DWELL S'], rows, ['left', 'right', 'right', 'right']));
    }
    return out.length > 0 ? `${out.join('\n')}\n` : '';
  }
}

const emptyDirection = (): DirectionCount => ({ byClass: new Map(), byLane: new Map() });

/** Seconds as 1:05:09 / 5:09 / 9s. */
function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  if (h > 0) return `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return m > 0 ? `${m}:${String(sec).padStart(2, '0')}` : `${sec}s`;
}

/**
 * One line redrawn in place on a terminal: a bar over the clip's duration, frames, frames per second and the
 * time left. At most ~8 redraws a second; `done()` erases it so the summary starts on a clean line.
 */
export class ProgressBar {
  /** The first update (the model has loaded by then): rates count from there. */
  private first: { t: number; frames: number; mono_ms: number } | undefined;
  private lastDraw = -Infinity;
  private shown = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly label: string,
    /** The clip's duration in ms; undefined: no bar, no ETA. */
    private readonly total_ms: number | undefined,
    private readonly width = 24,
  ) {}

  update(frames: number, mono_ms: number): void {
    const now = performance.now();
    this.first ??= { t: now, frames, mono_ms };
    if (now - this.lastDraw < 125) return;
    this.lastDraw = now;
    const wall_s = (now - this.first.t) / 1000;
    const fps = wall_s > 0 ? (frames - this.first.frames) / wall_s : 0;
    let bar = '';
    let eta = '';
    if (this.total_ms !== undefined && this.total_ms > 0) {
      const f = Math.min(1, Math.max(0, mono_ms / this.total_ms));
      const filled = Math.round(f * this.width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${String(Math.round(f * 100)).padStart(3)}%  `;
      const rate = wall_s > 0 ? (mono_ms - this.first.mono_ms) / wall_s : 0; // clip ms per wall second
      if (rate > 0) eta = `  ETA ${clock((this.total_ms - mono_ms) / rate)}`;
    }
    this.write(`\r${this.label} ${bar}${frames} frames  ${fps.toFixed(1)} fps${eta}\x1b[K`);
    this.shown = true;
  }

  done(): void {
    if (this.shown) this.write('\r\x1b[K');
    this.shown = false;
  }
}
