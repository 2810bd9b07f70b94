import { describe, expect, it } from 'vitest';
import { AnalyticsSchema } from '../../../config/schema/index.js';
import { linearPath, prng, simulate, waypoints, type SceneOptions, type SimObject } from '../../../testkit/synthetic-scenes.js';
import { associate, bufferedIou, iou } from '../../../inference/tracking/associate.js';
import { hungarian } from '../../../inference/tracking/hungarian.js';
import { BoxKalman } from '../../../inference/tracking/kalman.js';
import { mergeDetections } from '../../../inference/tracking/merge.js';
import { Tracker, type TrackerUpdate } from '../../../inference/tracking/tracker.js';
import type { Box, Detection } from '../../../inference/tracking/types.js';
import { classGrouper } from '../../../inference/detector/classes.js';

const cfg = (over: Record<string, unknown> = {}) => AnalyticsSchema.parse({ tracker: over }).tracker;

const car = (at: SimObject['at'], extra: Partial<SimObject> = {}): SimObject => ({ class_name: 'car', class_id: 2, w: 80, h: 60, at, ...extra });

interface Run {
  /** Per ground-truth object, the track ids it was matched to, in order, without repeats. */
  ids: number[][];
  /** Tracks that ended (confirmed) during the run. */
  ended: number;
  /** Every confirmed track id. */
  all: Set<number>;
  updates: TrackerUpdate[];
}

/** Runs the tracker over a scene and attributes observed tracks to ground-truth objects by IoU. */
function run(objects: SimObject[], scene: Partial<SceneOptions> & { duration_s: number }, tracker = new Tracker(cfg())): Run {
  const ids: number[][] = objects.map(() => []);
  const all = new Set<number>();
  const updates: TrackerUpdate[] = [];
  let ended = 0;
  for (const f of simulate(objects, { fps: 10, jitter_px: 1.5, ...scene })) {
    const u = tracker.update(f.detections, f.ctx.mono_ms);
    updates.push(u);
    ended += u.ended.length;
    // Ground-truth boxes; an object overlapping another is not attributed in that frame (ambiguous).
    const gt = objects.map((o): Box | undefined => {
      const p = o.at(f.t_s);
      if (!p) return undefined;
      const w = o.w as number;
      const h = o.h as number;
      return [p[0] - w / 2, p[1] - h, p[0] + w / 2, p[1]];
    });
    const clear = gt.map((b, k) => b !== undefined && gt.every((o, j) => j === k || o === undefined || iou(b, o) < 0.05));
    for (const t of u.active) {
      all.add(t.id);
      if (!t.observed) continue;
      let best = -1;
      let bestIou = 0.3;
      gt.forEach((b, k) => {
        if (!b || !clear[k]) return;
        const v = iou(t.box, b);
        if (v > bestIou) {
          bestIou = v;
          best = k;
        }
      });
      if (best >= 0) {
        const seq = ids[best]!;
        if (seq[seq.length - 1] !== t.id) seq.push(t.id);
      }
    }
  }
  return { ids, ended, all, updates };
}

describe('hungarian', () => {
  const brute = (c: number[][]): number => {
    const n = c.length;
    const m = c[0]!.length;
    let best = Infinity;
    const used = new Array<boolean>(m).fill(false);
    const rec = (r: number, acc: number, assigned: number) => {
      if (r === n) {
        if (assigned === Math.min(n, m)) best = Math.min(best, acc);
        return;
      }
      if (n > m) rec(r + 1, acc, assigned); // a row may stay unassigned when there are more rows
      for (let j = 0; j < m; j++) {
        if (used[j]) continue;
        used[j] = true;
        rec(r + 1, acc + c[r]![j]!, assigned + 1);
        used[j] = false;
      }
    };
    rec(0, 0, 0);
    return best;
  };

  it('finds the minimum-cost assignment (random square and rectangular matrices against brute force)', () => {
    const rand = prng(7);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 6);
      const m = 1 + Math.floor(rand() * 6);
      const c = Array.from({ length: n }, () => Array.from({ length: m }, () => Math.round(rand() * 100) / 10));
      const a = hungarian(c.flat(), n, m);
      const cols = [...a].filter((j) => j >= 0);
      expect(new Set(cols).size).toBe(cols.length);
      expect(cols.length).toBe(Math.min(n, m));
      const cost = [...a].reduce((s, j, i) => (j >= 0 ? s + c[i]![j]! : s), 0);
      expect(cost).toBeCloseTo(brute(c), 9);
    }
  });

  it('beats greedy where greedy is wrong', () => {
    // Greedy takes (0,0)=0.1 and is left with (1,1)=0.9; optimal is 0.2 + 0.3.
    const a = hungarian([0.1, 0.2, 0.3, 0.9], 2, 2);
    expect([...a]).toEqual([1, 0]);
  });
});

describe('association', () => {
  it('matches on IoU, never below the gate, and reports the leftovers', () => {
    const tracks = [
      { box: [0, 0, 10, 10] as Box, mx: 0, my: 0 },
      { box: [100, 100, 110, 110] as Box, mx: 0, my: 0 },
    ];
    const a = associate(tracks, [[1, 1, 11, 11], [300, 300, 310, 310]], 0.3);
    expect(a.pairs).toEqual([[0, 0]]);
    expect(a.unmatchedRows).toEqual([1]);
    expect(a.unmatchedCols).toEqual([1]);
  });

  it('buffered IoU widens the match for uncertain tracks', () => {
    const a: Box = [0, 0, 10, 10];
    const b: Box = [9, 0, 19, 10];
    expect(iou(a, b)).toBeLessThan(0.1);
    expect(bufferedIou(a, b, 5, 5)).toBeGreaterThan(0.3);
  });
});

describe('kalman', () => {
  it('learns a constant velocity and predicts across an irregular gap', () => {
    const kf = new BoxKalman([0, 0, 40, 30]);
    let t = 0;
    const times = [0.1, 0.3, 0.35, 0.6, 1.0, 1.1, 1.5];
    for (const tt of times) {
      kf.predict(tt - t);
      t = tt;
      const x = 100 * tt;
      kf.update([x, 0, x + 40, 30]);
    }
    expect(kf.vel[0]).toBeCloseTo(100, 0);
    kf.predict(0.5);
    expect(kf.box()[0]).toBeCloseTo(200, -1);
  });
});

describe('tracker', () => {
  it('keeps one id along a steady path', () => {
    const r = run([car(linearPath([100, 400], [1100, 400], 0, 6))], { duration_s: 9 });
    expect(r.ids[0]).toEqual([1]);
    expect(r.all.size).toBe(1);
    expect(r.ended).toBe(1);
  });

  it('confirms only after min_hits high-score detections, ids increasing from first_id', () => {
    const tracker = new Tracker(cfg({ min_hits: 3 }), { first_id: 41 });
    const b: Box = [0, 0, 50, 50];
    const det = (score: number) => [{ box: b, score, class_id: 2, class_name: 'car' }];
    expect(tracker.update(det(0.9), 0).confirmed).toHaveLength(0);
    expect(tracker.update(det(0.3), 100).confirmed).toHaveLength(0); // low score: keeps it, not a hit
    expect(tracker.update(det(0.9), 200).confirmed).toHaveLength(0);
    const u = tracker.update(det(0.9), 300);
    expect(u.confirmed.map((t) => t.id)).toEqual([41]);
  });

  it('never starts tracks from low-score detections (flicker of false positives)', () => {
    const tracker = new Tracker(cfg());
    const rand = prng(3);
    for (let i = 0; i < 200; i++) {
      const x = rand() * 1000;
      const y = rand() * 600;
      const u = tracker.update([{ box: [x, y, x + 40, y + 40], score: 0.2 + rand() * 0.2, class_id: 0, class_name: 'car' }], i * 100);
      expect(u.active).toHaveLength(0);
    }
    expect(tracker.issued).toBe(0);
  });

  it('survives an occlusion gap without id churn', () => {
    // Hidden from 2.0 s to 3.2 s (12 frames at 10 fps, below max_age_s = 2).
    const o = car(linearPath([100, 400], [1100, 400], 0, 6), { score: (t) => (t >= 2 && t < 3.2 ? undefined : 0.85) });
    const r = run([o], { duration_s: 7 });
    expect(r.ids[0]).toEqual([1]);
    expect(r.all.size).toBe(1);
  });

  it('survives an occlusion behind a stopped vehicle while slowing down', () => {
    // Slows from 200 px/s to 100 px/s while hidden for 1 s.
    const path = waypoints([
      [0, 100, 400],
      [2, 500, 400],
      [3, 650, 400],
      [6, 950, 400],
    ]);
    const o = car(path, { score: (t) => (t > 2 && t < 3 ? undefined : 0.8) });
    const r = run([o], { duration_s: 7 });
    expect(r.ids[0]).toEqual([1]);
  });

  it('keeps the id through hard braking to a stop and a start (5 fps)', () => {
    // 400 px/s (a car length is 80 px: ~80 km/h), braking at 150 px/s² (~0.8 g) to a stop, 10 s still, then off.
    const at = (t: number): [number, number] | undefined => {
      const stopT = 400 / 150;
      const stopX = 100 + 400 * stopT - 75 * stopT * stopT;
      if (t < stopT) return [100 + 400 * t - 75 * t * t, 400];
      if (t < stopT + 10) return [stopX, 400];
      const s = t - stopT - 10;
      return s < 3 ? [stopX + 60 * s * s, 400] : undefined;
    };
    const r = run([car(at)], { duration_s: 17, fps: 5 });
    expect(r.ids[0]).toEqual([1]);
    expect(r.all.size).toBe(1);
  });

  it('keeps ids when two objects pass each other (one hidden behind the other)', () => {
    const a = car(linearPath([100, 400], [1100, 400], 0, 5));
    const bPath = linearPath([1100, 410], [100, 410], 0, 5);
    const b = car(bPath, {
      // Hidden while it is behind A (centres closer than 60 px).
      score: (t) => {
        const pa = a.at(t)!;
        const pb = bPath(t)!;
        return Math.abs(pa[0] - pb[0]) < 60 ? undefined : 0.85;
      },
    });
    const r = run([a, b], { duration_s: 6 });
    expect(r.ids[0]).toHaveLength(1);
    expect(r.ids[1]).toHaveLength(1);
    expect(r.ids[0]![0]).not.toBe(r.ids[1]![0]);
    expect(r.all.size).toBe(2);
  });

  it('keeps ids when two objects overtake side by side with overlapping boxes', () => {
    const a = car(linearPath([100, 400], [1100, 400], 0, 5));
    const b = car(linearPath([300, 420], [900, 420], 0, 5));
    const r = run([a, b], { duration_s: 6, jitter_px: 2 });
    expect(r.ids[0]).toHaveLength(1);
    expect(r.ids[1]).toHaveLength(1);
    expect(r.all.size).toBe(2);
  });

  it('rides out score flicker around the thresholds (no churn, no gap ends)', () => {
    const rand = prng(11);
    const scores = Array.from({ length: 100 }, () => {
      const r = rand();
      return r < 0.15 ? undefined : r < 0.55 ? 0.22 + rand() * 0.2 : 0.46 + rand() * 0.4;
    });
    scores[0] = 0.8;
    scores[1] = 0.8;
    const o = car(linearPath([100, 400], [1000, 400], 0, 9.9), { score: (_t, i) => scores[i] });
    const r = run([o], { duration_s: 9.9 });
    expect(r.ids[0]).toEqual([1]);
    expect(r.all.size).toBe(1);
  });

  it('votes the class over the track, weighted by score', () => {
    const tracker = new Tracker(cfg());
    let last: TrackerUpdate | undefined;
    for (let i = 0; i < 20; i++) {
      const label = i % 3 === 0 ? 'truck' : 'car';
      const score = label === 'truck' ? 0.9 : 0.6;
      last = tracker.update([{ box: [i * 10, 0, i * 10 + 80, 60], score, class_id: label === 'car' ? 2 : 7, class_name: label }], i * 100);
    }
    // 7 × 0.9 = 6.3 for truck against 13 × 0.6 = 7.8 for car.
    expect(last?.active[0]?.class_name).toBe('car');
    expect(last?.active[0]?.class_id).toBe(2);
  });

  it('ends tracks by time, not by frame count (irregular frames)', () => {
    const tracker = new Tracker(cfg({ max_age_s: 2 }));
    const det = [{ box: [0, 0, 50, 50] as Box, score: 0.9, class_id: 0, class_name: 'car' }];
    tracker.update(det, 0);
    tracker.update(det, 100);
    // One frame 1.9 s later without the object: still alive (lost).
    let u = tracker.update([], 2000);
    expect(u.active.map((t) => t.state)).toEqual(['lost']);
    // Seen again at 2.05 s: same id.
    u = tracker.update(det, 2050);
    expect(u.active.map((t) => [t.id, t.state])).toEqual([[1, 'tracked']]);
    // Gone for 2.5 s, in a single frame gap: ended.
    u = tracker.update([], 4600);
    expect(u.ended.map((t) => t.id)).toEqual([1]);
    expect(u.active).toHaveLength(0);
  });

  it('keeps a parked object across sparse frames (motion gating) when max_age_s allows', () => {
    const tracker = new Tracker(cfg(), { max_age_s: 3 });
    const det = [{ box: [500, 300, 580, 360] as Box, score: 0.8, class_id: 2, class_name: 'car' }];
    let ended = 0;
    for (let t = 0; t < 60_000; t += 2000) ended += tracker.update(det, t).ended.length;
    expect(ended).toBe(0);
    expect(tracker.issued).toBe(1);
  });

  it('ends a lost track as soon as it is predicted out of the frame', () => {
    const tracker = new Tracker(cfg({ max_age_s: 5 }), { frame: { width: 640, height: 480 } });
    let u: TrackerUpdate | undefined;
    for (let i = 0; i < 10; i++) u = tracker.update([{ box: [300 + i * 20, 200, 360 + i * 20, 250], score: 0.9, class_id: 0, class_name: 'car' }], i * 100);
    expect(u?.active).toHaveLength(1);
    let endedAt = -1;
    for (let i = 10; i < 40 && endedAt < 0; i++) if (tracker.update([], i * 100).ended.length > 0) endedAt = i;
    expect(endedAt).toBeGreaterThan(10);
    expect(endedAt).toBeLessThan(20); // well before 5 s
  });

  it('handles 50 crossing objects without id churn', () => {
    const rand = prng(5);
    const objects: SimObject[] = [];
    // Ten lanes, alternating directions, five vehicles per lane at the lane's speed, 250 px apart.
    for (let lane = 0; lane < 10; lane++) {
      const y = 120 + lane * 55;
      const dir = lane % 2 === 0 ? 1 : -1;
      const speed = 120 + rand() * 80;
      for (let k = 0; k < 5; k++) {
        const x0 = dir > 0 ? 100 - k * 250 : 1180 + k * 250;
        objects.push({ class_name: 'car', w: 70, h: 45, at: linearPath([x0, y], [x0 + dir * speed * 12, y], 0, 12) });
      }
    }
    const r = run(objects, { duration_s: 12, jitter_px: 1.5 });
    let switches = 0;
    for (const seq of r.ids) switches += Math.max(0, seq.length - 1);
    expect(switches).toBe(0);
    expect(r.all.size).toBe(50);
  });

  it('keeps ids when vehicles in one lane overtake through each other, both detected (5 and 10 fps)', () => {
    for (const fps of [5, 10]) {
      const a = car(linearPath([0, 300], [2000, 300], 0, 10));
      const b = car(linearPath([500, 300], [1500, 300], 0, 10));
      const r = run([a, b], { duration_s: 6, fps });
      expect(r.ids).toEqual([[1], [2]]);
    }
  });
});

const det = (box: Box, class_name: string, score = 0.9): Detection => ({ box, score, class_name, class_id: { car: 2, motorcycle: 3, bus: 5, truck: 7, person: 0 }[class_name] ?? 99 });

describe('one vehicle, one detection (merging boxes of a class group)', () => {
  const groupOf = classGrouper();

  it('merges a car box and a truck box on one vehicle into one detection: the best box, every class score', () => {
    const merged = mergeDetections([det([100, 100, 200, 180], 'car', 0.6), det([98, 96, 204, 182], 'truck', 0.8), det([400, 100, 440, 180], 'person', 0.9)], groupOf, 0.5);
    expect(merged).toHaveLength(2);
    const v = merged.find((d) => d.class_name === 'truck')!;
    expect(v.box).toEqual([98, 96, 204, 182]);
    expect(v.score).toBe(0.8);
    expect(v.class_scores).toEqual([
      { class_name: 'truck', class_id: 7, score: 0.8 },
      { class_name: 'car', class_id: 2, score: 0.6 },
    ]);
  });

  it('never merges two boxes of one class (motorbikes side by side), other groups, or below merge_iou', () => {
    const bikes = [det([100, 100, 140, 180], 'motorcycle'), det([110, 100, 150, 180], 'motorcycle')];
    expect(mergeDetections(bikes, groupOf, 0.5)).toBe(bikes);
    const mixed = [det([100, 100, 200, 200], 'car'), det([100, 100, 200, 200], 'person')];
    expect(mergeDetections(mixed, groupOf, 0.5)).toBe(mixed);
    const apart = [det([100, 100, 200, 200], 'car'), det([150, 100, 250, 200], 'truck')];
    expect(mergeDetections(apart, groupOf, 0.5)).toBe(apart);
    const same = [det([100, 100, 200, 200], 'car'), det([100, 100, 200, 200], 'truck')];
    expect(mergeDetections(same, groupOf, 1)).toBe(same); // merging off
    // A motorbike inside a car's box (riding in front of it) is no duplicate: IoU far below merge_iou.
    expect(mergeDetections([det([100, 100, 300, 250], 'car'), det([180, 150, 220, 250], 'motorcycle')], groupOf, 0.5)).toHaveLength(2);
  });

  it('one track per vehicle while the detector gives two boxes of different classes on it, the class voted over both', () => {
    const tracker = new Tracker(cfg());
    let u: TrackerUpdate | undefined;
    for (let i = 0; i < 20; i++) {
      const x = 100 + i * 12;
      const dets = [det([x, 300, x + 120, 380], 'truck', 0.8)];
      if (i >= 8 && i < 12) dets.push(det([x + 8, 304, x + 118, 378], 'car', 0.7));
      u = tracker.update(dets, i * 100);
    }
    expect(tracker.issued).toBe(1);
    expect(u!.active.map((t) => t.class_name)).toEqual(['truck']);
  });

  it('matches across the classes of a group, never across groups', () => {
    const tracker = new Tracker(cfg());
    const labels = ['car', 'car', 'truck', 'bus', 'car', 'truck', 'car', 'car'];
    let u: TrackerUpdate | undefined;
    labels.forEach((label, i) => {
      u = tracker.update([det([100 + i * 10, 300, 180 + i * 10, 360], label)], i * 100);
    });
    expect(tracker.issued).toBe(1);
    expect(u!.active.map((t) => [t.id, t.class_name])).toEqual([[1, 'car']]);
    // A person where the car was expected starts a track of its own; the car's track goes on unseen.
    for (let i = 8; i < 11; i++) u = tracker.update([det([100 + i * 10, 300, 180 + i * 10, 360], 'person')], i * 100);
    expect(u!.active.map((t) => [t.id, t.class_name, t.state])).toEqual([
      [1, 'car', 'lost'],
      [2, 'person', 'tracked'],
    ]);
  });

  it('tells a new track born on a vehicle tracked under another class (born_beside), not one beside its own class', () => {
    const tracker = new Tracker(cfg({ merge_iou: 0.9 }));
    for (let i = 0; i < 5; i++) tracker.update([det([100 + i * 10, 300, 220 + i * 10, 380], 'truck'), det([600, 300 + i * 10, 640, 380 + i * 10], 'motorcycle')], i * 100);
    // A car box on the truck (IoU ≈ 0.6, under merge_iou here) and a motorbike beside the motorbike.
    let u: TrackerUpdate | undefined;
    for (let i = 5; i < 8; i++) {
      u = tracker.update(
        [det([100 + i * 10, 300, 220 + i * 10, 380], 'truck'), det([130 + i * 10, 310, 220 + i * 10, 380], 'car', 0.7), det([600, 300 + i * 10, 640, 380 + i * 10], 'motorcycle'), det([620, 300 + i * 10, 660, 380 + i * 10], 'motorcycle')],
        i * 100,
      );
    }
    const born = u!.active.filter((t) => t.id > 2).map((t) => [t.class_name, t.born_beside]);
    expect(born).toEqual([
      ['car', 1],
      ['motorcycle', undefined],
    ]);
  });

  it('does not let a lost big vehicle track take over a small far one (size gate)', () => {
    const tracker = new Tracker(cfg());
    for (let i = 0; i < 6; i++) tracker.update([det([500, 500 - i * 20, 700, 800 - i * 20], 'car')], i * 100);
    // The car is hidden for 1.5 s (its predicted box is uncertain by now); then a small far car shows up where
    // the big one is predicted.
    for (let i = 6; i < 21; i++) tracker.update([], i * 100);
    const u = tracker.update([det([585, 160, 615, 210], 'car')], 2100);
    expect(u.active.map((t) => [t.id, t.observed])).toEqual([[1, false]]);
  });
});
