/**
 * Ground truth of a traffic scene's line crossings (traffic-scenes.ts) and the scoring of the line_crossing
 * events an analytics run emitted against it: every vehicle counted exactly once per line and direction,
 * precision and recall per class (with the class as corrected by object_end), per lane.
 */
import type { EventDraft, EventOf } from '../contract/event.js';
import { AnalyticsSchema } from '../config/schema/analytics.js';
import { CameraSchema, laneSpan, LineSchema, type LineConfig } from '../config/schema/cameras.js';
import { CameraAnalytics } from '../inference/analytics/engine.js';
import type { Vec2 } from '../inference/analytics/geometry.js';
import { match } from '../inference/tracking/associate.js';
import { SIM_EPOCH_MS } from './synthetic-scenes.js';
import { cameraInput, renderScene, type TrafficScene, type Vehicle } from './traffic-sim.js';

export interface SceneRun {
  events: EventDraft[];
  sightings: Sightings;
  analytics: CameraAnalytics;
}

/**
 * Plays a scene through a camera's analytics (signals switched at their times), then flushes it. `analytics`:
 * input of the analytics configuration (the scene's signal `s1` is added).
 */
export async function playScene(scene: TrafficScene, opts: { fps?: number; seed?: number; analytics?: Record<string, unknown> } = {}): Promise<SceneRun> {
  const fps = opts.fps ?? 10;
  const events: EventDraft[] = [];
  const an = AnalyticsSchema.parse({ signals: [{ id: 's1' }], ...opts.analytics });
  const analytics = new CameraAnalytics(CameraSchema.parse(cameraInput(scene)), an, { id: 'box-1', site: 'site-1' }, (e) => events.push(e), undefined, { evidence: false });
  const sightings = new Sightings();
  const signals = [...scene.signals];
  for (const f of renderScene(scene, { fps, seed: opts.seed ?? 1 })) {
    while (signals.length > 0 && signals[0]![0] <= f.t_s) {
      const [t, state] = signals.shift()!;
      analytics.setSignal('s1', state, SIM_EPOCH_MS + t * 1000);
    }
    analytics.update(f.ctx, f.detections);
    sightings.add(f, fps);
  }
  await analytics.flush();
  return { events, sightings, analytics };
}

export interface TruthCrossing {
  vehicle: Vehicle;
  line_id: string;
  direction: 'in' | 'out';
  t_s: number;
  point: Vec2;
  lane: string | undefined;
  /** Box width at the crossing, pixels. */
  width_px: number;
}

const STEP_S = 0.005;

/**
 * Where and when the anchor (bottom centre) of each vehicle's true box crosses each line of the scene, by
 * the same convention as the analytics ("in": from the left of a→b to its right), within the segment.
 */
export function truthCrossings(scene: TrafficScene): TruthCrossing[] {
  const lines = ((scene.config['lines'] as unknown[] | undefined) ?? []).map((l) => LineSchema.parse(l));
  const out: TruthCrossing[] = [];
  for (const v of scene.vehicles) {
    for (const line of lines) {
      const ax = line.a[0];
      const ay = line.a[1];
      const len = Math.hypot(line.b[0] - ax, line.b[1] - ay);
      const ux = (line.b[0] - ax) / len;
      const uy = (line.b[1] - ay) / len;
      let prev: { t: number; d: number; x: number; y: number } | undefined;
      for (let t = 0; t <= scene.duration_s; t += STEP_S) {
        const s = v.at(t);
        const box = s && scene.camera.boxOf(s, v.dims);
        if (!box) {
          prev = undefined;
          continue;
        }
        const x = (box[0] + box[2]) / 2;
        const y = box[3];
        const d = ux * (y - ay) - uy * (x - ax);
        if (prev && Math.sign(d) !== Math.sign(prev.d) && d !== 0) {
          const f = Math.abs(prev.d) / (Math.abs(prev.d) + Math.abs(d));
          const px = prev.x + f * (x - prev.x);
          const py = prev.y + f * (y - prev.y);
          const along = (px - ax) * ux + (py - ay) * uy;
          if (along >= 0 && along <= len) {
            out.push({
              vehicle: v,
              line_id: line.id,
              direction: d > 0 ? 'in' : 'out',
              t_s: prev.t + f * (t - prev.t),
              point: [px, py],
              lane: laneAt(line, along / len),
              width_px: box[2] - box[0],
            });
          }
        }
        prev = { t, d, x, y };
      }
    }
  }
  return out;
}

function laneAt(line: LineConfig, f: number): string | undefined {
  return line.lanes?.find((lane) => {
    const [a, b] = laneSpan(line, lane);
    return f >= a && f <= b;
  })?.id;
}

export interface ClassScore {
  truth: number;
  counted: number;
  /** Counted crossings matched to a true crossing of this class, and reported with this class. */
  correct: number;
  precision: number;
  recall: number;
}

export interface CountReport {
  /** Counting alone (any class): true crossings, events, matched pairs. */
  truth: number;
  counted: number;
  matched: number;
  precision: number;
  recall: number;
  /** Recall over the crossings the detector could see (opts.countable; all when not given). */
  countable: number;
  recall_countable: number;
  /** Per class, with the class object_end settled on (class_corrected_from applied). */
  by_class: Record<string, ClassScore>;
  /** Matched crossings whose line_crossing event already had the final class. */
  class_at_crossing_correct: number;
  /** Matched crossings whose lane is the true lane (only crossings with a true lane). */
  lane_correct: number;
  lane_total: number;
  /** Per line, lane and direction: [true count, counted]. */
  by_lane: Record<string, [number, number]>;
  missed: TruthCrossing[];
  extra: Array<EventOf<'line_crossing'>>;
  /** Matched crossings whose final class is not the vehicle's. */
  misclassified: Array<{ truth: TruthCrossing; event: EventOf<'line_crossing'>; class: string }>;
}

/**
 * Matches line_crossing events to true crossings one to one (same line and direction, crossing times within
 * `time_tol_s`, points within the larger of `dist_tol_px` and the box width), minimising time and distance.
 * `countable`: which true crossings the detector saw well enough to count at all (see `Sightings`).
 */
export function scoreCounts(
  truth: readonly TruthCrossing[],
  events: readonly EventDraft[],
  opts: { time_tol_s?: number; dist_tol_px?: number; countable?: (g: TruthCrossing) => boolean } = {},
): CountReport {
  const tolT = opts.time_tol_s ?? 0.6;
  const tolD = opts.dist_tol_px ?? 25;
  const crossings = events.filter((e): e is EventOf<'line_crossing'> => e.type === 'line_crossing');
  const finalClass = new Map<number, string>();
  for (const e of events) if (e.type === 'object_end') finalClass.set(e.object.track_id, e.object.class);
  const t0 = SIM_EPOCH_MS;
  const a = match(crossings.length, truth.length, (r, c) => {
    const e = crossings[r]!;
    const g = truth[c]!;
    if (e.rule.id !== g.line_id || e.attributes.direction !== g.direction) return undefined;
    const dt = Math.abs((Date.parse(e.attributes.crossed_at) - t0) / 1000 - g.t_s);
    const dd = Math.hypot(e.attributes.point_px[0] - g.point[0], e.attributes.point_px[1] - g.point[1]);
    const maxD = Math.max(tolD, g.width_px);
    if (dt > tolT || dd > maxD) return undefined;
    return dt / tolT + dd / maxD;
  });
  const by_class: Record<string, ClassScore> = {};
  const cls = (name: string) => (by_class[name] ??= { truth: 0, counted: 0, correct: 0, precision: 1, recall: 1 });
  for (const g of truth) cls(g.vehicle.class_name).truth++;
  const classOf = (e: EventOf<'line_crossing'>) => finalClass.get(e.object.track_id) ?? e.object.class;
  for (const e of crossings) cls(classOf(e)).counted++;
  let atCrossing = 0;
  let laneOk = 0;
  let laneTotal = 0;
  const misclassified: CountReport['misclassified'] = [];
  for (const [r, c] of a.pairs) {
    const e = crossings[r]!;
    const g = truth[c]!;
    if (classOf(e) === g.vehicle.class_name) cls(g.vehicle.class_name).correct++;
    else misclassified.push({ truth: g, event: e, class: classOf(e) });
    if (e.object.class === g.vehicle.class_name) atCrossing++;
    if (g.lane !== undefined) {
      laneTotal++;
      if (e.attributes.lane === g.lane) laneOk++;
    }
  }
  for (const s of Object.values(by_class)) {
    s.precision = s.counted > 0 ? s.correct / s.counted : 1;
    s.recall = s.truth > 0 ? s.correct / s.truth : 1;
  }
  const countable = truth.filter((g) => opts.countable?.(g) ?? true);
  const matchedCountable = a.pairs.filter(([, c]) => opts.countable?.(truth[c]!) ?? true).length;
  const by_lane: Record<string, [number, number]> = {};
  const lane = (line: string, l: string | undefined, dir: string) => (by_lane[`${line}/${l ?? '-'}/${dir}`] ??= [0, 0]);
  for (const g of truth) lane(g.line_id, g.lane, g.direction)[0]++;
  for (const e of crossings) lane(e.rule.id, e.attributes.lane, e.attributes.direction)[1]++;
  return {
    truth: truth.length,
    counted: crossings.length,
    matched: a.pairs.length,
    precision: crossings.length > 0 ? a.pairs.length / crossings.length : 1,
    recall: truth.length > 0 ? a.pairs.length / truth.length : 1,
    countable: countable.length,
    recall_countable: countable.length > 0 ? matchedCountable / countable.length : 1,
    by_class,
    class_at_crossing_correct: atCrossing,
    lane_correct: laneOk,
    lane_total: laneTotal,
    by_lane,
    missed: a.unmatchedCols.map((c) => truth[c]!),
    extra: a.unmatchedRows.map((r) => crossings[r]!),
    misclassified,
  };
}

/** A table of the report, for test output. */
export function formatCountReport(title: string, r: CountReport): string {
  const pct = (v: number) => v.toFixed(3);
  const rows = [
    `${title}: ${r.matched}/${r.truth} crossings counted, ${r.counted} events (precision ${pct(r.precision)}, recall ${pct(r.recall)}; ` +
      `recall ${pct(r.recall_countable)} over the ${r.countable} crossings the detector saw)`,
  ];
  rows.push('  class        truth counted correct precision recall');
  for (const [name, s] of Object.entries(r.by_class).sort()) {
    rows.push(`  ${name.padEnd(12)} ${String(s.truth).padStart(5)} ${String(s.counted).padStart(7)} ${String(s.correct).padStart(7)} ${pct(s.precision).padStart(9)} ${pct(s.recall).padStart(6)}`);
  }
  rows.push(`  class right at the crossing: ${r.class_at_crossing_correct}/${r.matched}; lane right: ${r.lane_correct}/${r.lane_total}`);
  return rows.join('\n');
}

/**
 * When the detector reported each vehicle with a score that can start or keep a track, from the rendered
 * frames (TrafficFrame.vehicle_ids). A crossing is countable when its vehicle was seen in at least
 * `min_fraction` of the frames within `window_s` of it: a vehicle hidden behind its neighbours all the way
 * through the line cannot be counted by any tracker.
 */
export class Sightings {
  private readonly seen = new Map<number, number[]>();
  private fps = 0;

  constructor(private readonly min_score = 0.45) {}

  add(frame: { t_s: number; detections: ReadonlyArray<{ score: number }>; vehicle_ids: readonly number[] }, fps: number): void {
    this.fps = fps;
    frame.detections.forEach((d, i) => {
      if (d.score < this.min_score) return;
      const id = frame.vehicle_ids[i]!;
      const list = this.seen.get(id);
      if (!list) this.seen.set(id, [frame.t_s]);
      else if (list[list.length - 1] !== frame.t_s) list.push(frame.t_s);
    });
  }

  countable(window_s = 1, min_fraction = 0.4): (g: TruthCrossing) => boolean {
    const frames = 2 * window_s * this.fps + 1;
    return (g) => (this.seen.get(g.vehicle.id) ?? []).filter((t) => Math.abs(t - g.t_s) <= window_s + 1e-9).length >= min_fraction * frames;
  }
}
