/**
 * Traffic scenes with ground truth (simulated with traffic-sim.ts): `twoLaneRoad` (13 vehicles, the double
 * count of the field report), `denseTwoWheelers` (Vietnamese-style motorbike platoons with stop-and-go at a
 * stop line) and `speedTrap` (known constant speeds, entering and leaving through the frame edges). Ground
 * truth and scoring of the counts are in traffic-counts.ts.
 */
import type { Vec2 } from '../inference/analytics/geometry.js';
import { prng } from './synthetic-scenes.js';
import { CLEAN_DETECTOR, DIMS, drive, kinematics, RoadCamera, type DetectorModel, type Fault, type TrafficScene, type Vehicle } from './traffic-sim.js';

export * from './traffic-sim.js';

/** Vehicles come from and go to this far along the road, metres: too small to detect there (no popping up
 * or vanishing mid-image, where the far ends of both directions meet). */
const FAR_M = 200;

/**
 * A clean two-lane road, one lane each way, 13 vehicles each crossing the counting line once (7 towards the
 * camera, "in"; 6 away, "out"): cars, a pickup (class truck), a truck, a bus and motorbikes. With
 * `pickup_duplicate` the detector also gives a `car` box on the pickup for four frames around the line (the
 * double count of the field report); with `confused_car` a car going away is called a truck from when it
 * comes in until just past the line.
 */
export function twoLaneRoad(opts: { pickup_duplicate?: boolean; confused_car?: boolean; detector?: DetectorModel } = {}): TrafficScene {
  const camera = new RoadCamera({ width: 1280, height: 720, f_px: 1000, height_m: 7, pitch_deg: 14 });
  const LINE_Y = 22;
  const plan: Array<[Kind, number, number]> = [
    // kind, start s, speed m/s; towards the camera first, then away
    ['car', 0, 13],
    ['pickup', 3, 14],
    ['motorcycle', 6, 10],
    ['car', 8.5, 15],
    ['bus', 11, 11],
    ['car', 15, 14],
    ['motorcycle', 18, 9],
    ['car', 1, 14],
    ['truck', 4.5, 11],
    ['car', 8, 15],
    ['motorcycle', 11.5, 10],
    ['car', 14, 13],
    ['car', 17, 14],
  ];
  const vehicles: Vehicle[] = plan.map(([kind, t0, v], k) => {
    const towards = k < 7;
    const dims = DIMS[kind];
    const class_name = kind === 'pickup' ? 'truck' : kind;
    // Towards the camera from far beyond detection (at 95 m at t0), or away from behind the bottom edge into the distance.
    const from: Vec2 = towards ? [-1.75, FAR_M] : [1.75, 2];
    const heading: Vec2 = towards ? [0, -1] : [0, 1];
    const start = towards ? t0 - (FAR_M - 95) / v : t0;
    const k1 = kinematics(start, v);
    // The anchor (bottom of the box) is the end nearest the camera: on the line when the centre is l/2 beyond it.
    const tCross = t0 + (towards ? 95 - LINE_Y - dims.l / 2 : LINE_Y + dims.l / 2 - 2) / v;
    const faults: Fault[] = [];
    if (kind === 'pickup' && opts.pickup_duplicate) faults.push({ kind: 'duplicate', t0_s: tCross - 0.25, t1_s: tCross + 0.12, class_name: 'car' });
    // A car going away, called a truck from when it comes in until just past the line, a car afterwards.
    if (k === 9 && opts.confused_car) faults.push({ kind: 'confusion', t0_s: t0, t1_s: tCross + 0.3, class_name: 'truck' });
    return { id: k + 1, class_name, dims, at: drive(from, heading, FAR_M + 10, k1.s), faults, speed: k1.v };
  });
  return {
    camera,
    vehicles,
    duration_s: 28,
    detector: opts.detector ?? CLEAN_DETECTOR,
    config: { lines: [{ id: 'count', ...camera.groundLine([-4, LINE_Y], [4, LINE_Y]) }] },
    signals: [],
  };
}

export interface DenseOptions {
  seed?: number;
  detector?: DetectorModel;
  /** Detector faults: class confusion and duplicate boxes on cars, trucks and buses. Default false. */
  faults?: boolean;
  duration_s?: number;
}

/** Lateral slots of the motorbikes, metres: three per lane, two lanes each way (lane borders at ±3.75 and 0). */
const SLOTS_TOWARDS = [-6.6, -5.6, -4.6, -2.9, -1.9, -0.9];
const SLOTS_AWAY = [0.9, 1.9, 2.9, 4.6, 5.6, 6.6];
/** Gap between the rows of a platoon (and of a queue), metres. */
const ROW_GAP_M = 1.3;

/**
 * Dense mixed traffic on a four-lane two-way road: platoons of motorbikes riding two or three abreast, in
 * rows, with the odd car, truck or bus among them, both directions. Traffic towards the camera meets a red
 * light at a stop line (Y = 35 m) and queues, then moves off on green. Lines: `count` across the whole road
 * at Y = 25 m with four lanes (`in-1`, `in-2`, `out-1`, `out-2`), `stop` across the lanes towards the camera.
 */
export function denseTwoWheelers(opts: DenseOptions = {}): TrafficScene {
  const rand = prng(opts.seed ?? 7);
  const camera = new RoadCamera({ width: 1920, height: 1080, f_px: 1500, height_m: 8, pitch_deg: 15 });
  const duration = opts.duration_s ?? 70;
  const STOP_Y = 35;
  const RED: [number, number] = [8, 24];
  const vehicles: Vehicle[] = [];
  let queueTail = STOP_Y + 0.6; // where the next queued row's front stops (towards the camera: larger Y is further back)
  let queueRank = 0;
  for (const towards of [true, false]) {
    // Times are when a platoon's front row is at the start of its path; those towards the camera start far
    // away, so the first ones set off before t = 0.
    let t = towards ? 0.5 - (FAR_M - 100) / 8.6 : 1.5;
    while (t < duration - (towards ? 12 + (FAR_M - 100) / 8.6 : 12)) {
      const v = 8 + rand() * 1.2;
      const rows = platoon(rand, towards);
      const speedUp = towards ? 8.5 : v;
      // Towards the camera: a platoon reaching the stop line during red queues; none arrives while the queue drains.
      const start: Vec2 = towards ? [0, FAR_M] : [0, 3];
      const arrive = t + (FAR_M - STOP_Y) / v;
      const queued = towards && arrive > RED[0] - 1 && arrive < RED[1] + 1;
      // After green, the next platoon comes once the last queued row has moved off and past the stop line.
      const drained = RED[1] + 0.8 * queueRank + (queueTail - STOP_Y) / 4 + 3;
      if (towards && !queued && arrive >= RED[1] + 1 && arrive < drained) {
        t = drained - (FAR_M - STOP_Y) / v;
        continue;
      }
      const lens = rows.map((row) => Math.max(...row.map((x) => DIMS[x.kind].l)));
      const length = lens.reduce((acc, l) => acc + l + ROW_GAP_M, 0);
      if (queued && queueTail + length > 90) {
        t = RED[1] + 1 - (FAR_M - STOP_Y) / v; // the queue reaches too far back: no platoon until it drained
        continue;
      }
      // Row r's centre is `offset` behind the front row's: it starts offset / v later.
      let offset = 0;
      rows.forEach((row, r) => {
        const len = lens[r]!;
        if (r > 0) offset += lens[r - 1]! / 2 + ROW_GAP_M + len / 2;
        const t0 = t + offset / v;
        let k: ReturnType<typeof kinematics>;
        if (queued) {
          // Brake at 3 m/s² to stop with the front at the queue tail, wait for green (+0.8 s per row ahead), go at 2 m/s².
          const centreStop = FAR_M - queueTail - len / 2;
          const brakeAt = (centreStop - (v * v) / 6) / v;
          const stopAt = t0 + brakeAt + v / 3;
          const go = Math.max(stopAt, RED[1] + 0.8 * queueRank++);
          k = kinematics(t0, v, [
            [brakeAt, 0],
            [v / 3, -3],
            [go - stopAt, 0],
            [speedUp / 2, 2],
          ]);
          queueTail += len + ROW_GAP_M;
        } else k = kinematics(t0, v);
        for (const x of row) {
          const dims = DIMS[x.kind];
          const wobble = x.kind === 'motorcycle' ? { amp_m: 0.08, period_s: 2 + rand() * 2, phase: rand() * 6.28 } : undefined;
          vehicles.push({
            id: vehicles.length + 1,
            class_name: x.kind === 'pickup' ? 'truck' : x.kind,
            dims,
            at: drive([x.x, start[1]], towards ? [0, -1] : [0, 1], FAR_M + 10, k.s, wobble),
            faults: opts.faults && x.kind !== 'motorcycle' ? faultsFor(rand, x.kind, duration) : [],
            speed: k.v,
          });
        }
      });
      t += (offset + lens[lens.length - 1]!) / v + 2.2 + rand() * 1.5;
    }
  }
  const count = camera.groundLine([-7.5, 25], [7.5, 25]);
  const stop = camera.groundLine([-7.5, STOP_Y], [0, STOP_Y]);
  return {
    camera,
    vehicles,
    duration_s: duration,
    detector: opts.detector ?? CLEAN_DETECTOR,
    config: {
      lines: [
        {
          id: 'count',
          ...count,
          lanes: [
            { id: 'in-1', from: 0, to: 0.25 },
            { id: 'in-2', from: 0.25, to: 0.5 },
            { id: 'out-1', from: 0.5, to: 0.75 },
            { id: 'out-2', from: 0.75, to: 1 },
          ],
        },
        { id: 'stop', ...stop, stop_line: true, signal: 's1', stop_direction: 'in' },
      ],
    },
    signals: [
      [RED[0] - 3, 'amber'],
      [RED[0], 'red'],
      [RED[1], 'green'],
    ],
  };
}

type Kind = keyof typeof DIMS;

/** Rows of a platoon: mostly motorbikes two or three abreast; now and then a car, pickup, truck or bus takes a lane. */
function platoon(rand: () => number, towards: boolean): Array<Array<{ kind: Kind; x: number }>> {
  const slots = towards ? SLOTS_TOWARDS : SLOTS_AWAY;
  const nRows = 2 + Math.floor(rand() * 3);
  const rows: Array<Array<{ kind: Kind; x: number }>> = [];
  for (let r = 0; r < nRows; r++) {
    const row: Array<{ kind: Kind; x: number }> = [];
    const u = rand();
    let bikeLanes = [0, 1];
    if (u < 0.22) {
      const lane = rand() < 0.5 ? 0 : 1;
      const q = rand();
      const kind: Kind = q < 0.55 ? 'car' : q < 0.7 ? 'pickup' : q < 0.88 ? 'truck' : 'bus';
      row.push({ kind, x: slots[lane * 3 + 1]! });
      bikeLanes = [1 - lane];
    }
    for (const lane of bikeLanes) {
      for (let k = 0; k < 3; k++) if (rand() < 0.55) row.push({ kind: 'motorcycle', x: slots[lane * 3 + k]! });
    }
    if (row.length === 0) row.push({ kind: 'motorcycle', x: slots[Math.floor(rand() * 6)]! });
    rows.push(row);
  }
  return rows;
}

/** Random confusion and duplicate-box episodes of a few frames over a vehicle's life. */
function faultsFor(rand: () => number, kind: Kind, duration: number): Fault[] {
  const others = ['car', 'truck', 'bus'].filter((c) => c !== (kind === 'pickup' ? 'truck' : kind));
  const out: Fault[] = [];
  for (let k = 0; k < 25; k++) {
    const t0 = rand() * duration;
    out.push({ kind: rand() < 0.5 ? 'confusion' : 'duplicate', t0_s: t0, t1_s: t0 + 0.2 + rand() * 0.4, class_name: others[Math.floor(rand() * others.length)]! });
  }
  return out;
}

export interface SpeedTrapOptions {
  /** 'road': looking down the road, vehicles leave through the bottom edge (towards) or enter through it (away).
   * 'oblique': the road crosses the view at an angle, vehicles enter and leave through the side edges. */
  view: 'road' | 'oblique';
  speeds_kmh: readonly number[];
  detector?: DetectorModel;
}

/**
 * Vehicles at known constant speeds past a line close to the frame edge, so the ±0.6 s window around the
 * crossing holds boxes cut off by the edge. The camera is calibrated (four ground points).
 */
export function speedTrap(opts: SpeedTrapOptions): TrafficScene {
  const road = opts.view === 'road';
  const camera = road
    ? new RoadCamera({ width: 1920, height: 1080, f_px: 1500, height_m: 7, pitch_deg: 17 })
    : new RoadCamera({ width: 1920, height: 1080, f_px: 1500, height_m: 7, pitch_deg: 12, yaw_deg: 60, x_m: -15 });
  const vehicles: Vehicle[] = [];
  let t = 0.2;
  opts.speeds_kmh.forEach((kmh, k) => {
    const v = kmh / 3.6;
    const towards = k % 2 === 0;
    const kind: Kind = k % 3 === 2 ? 'truck' : 'car';
    const dims = DIMS[kind];
    const k1 = kinematics(t, v);
    const from: Vec2 = towards ? [-1.8, 70] : [1.8, -8];
    vehicles.push({ id: k + 1, class_name: kind, dims, at: drive(from, towards ? [0, -1] : [0, 1], 80, k1.s), faults: [], speed: k1.v });
    t += 80 / v + 0.5;
  });
  // Lines near the frame edge: vehicles towards the camera leave the view soon after; those going away have
  // just come in.
  // Road: the bottom edge is at Y ≈ 9.4 m. Oblique: the road runs from the left edge (Y ≈ 30 m) to the right
  // edge (Y ≈ -3 m).
  const lineY = road ? 12.5 : 22;
  const half = road ? 4.5 : 3;
  const ground: Vec2[] = road
    ? [
        [-4, 10],
        [4, 10],
        [4, 40],
        [-4, 40],
      ]
    : [
        [-3, 2],
        [3, 2],
        [3, 22],
        [-3, 22],
      ];
  return {
    camera,
    vehicles,
    duration_s: t + 0.5,
    detector: opts.detector ?? { ...CLEAN_DETECTOR, jitter_px: 1 },
    config: {
      lines: [{ id: 'trap', ...camera.groundLine([-half, lineY], [half, lineY]) }],
      calibration: { ...camera.calibration(ground), position_error_m: 0.5 },
    },
    signals: [],
  };
}
