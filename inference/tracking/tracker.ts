import type { AnalyticsConfig } from '../../config/schema/index.js';
import { classGrouper, DEFAULT_CLASS_GROUPS } from '../detector/classes.js';
import { associate, iou, match, type Gated } from './associate.js';
import { BoxKalman } from './kalman.js';
import { mergeDetections } from './merge.js';
import type { Box, Detection } from './types.js';

export type TrackerConfig = AnalyticsConfig['tracker'];

export interface TrackerOptions {
  /** First id handed out (default 1). Seed it from persisted state to keep ids unique across restarts. */
  first_id?: number;
  /** Frame size in camera pixels: a lost track predicted entirely out of the frame ends at once. */
  frame?: { width: number; height: number };
  /** Overrides `max_age_s` (e.g. raised above the motion gate's forced interval). */
  max_age_s?: number;
}

/**
 * `tentative`: fewer than `min_hits` hits yet, invisible to analytics. `tracked`: confirmed and seen in the
 * last update. `lost`: confirmed, unseen, predicted forward until `max_age_s`.
 */
export type TrackState = 'tentative' | 'tracked' | 'lost';

interface Vote {
  name: string;
  id: number;
  sum: number;
}

/** Margin of the buffered IoU, in standard deviations of the predicted centre, and its cap in box sizes. */
const MARGIN_SIGMAS = 1.5;
const MARGIN_MAX = 1;
/** Gate on the squared Mahalanobis distance of the centre for tracks seen once (χ², 2 dof, 99 %). */
const CHI2_99 = 9.21;
/** Tracks seen once match detections whose width and height are within this factor of theirs. */
const SIZE_RATIO = 1.5;
/** Added to a pair's matching cost (1 − IoU) when the detection's class is not the track's: between two
 * equally good boxes the track keeps its class, yet a car track still follows its vehicle called a truck. */
const CLASS_MISMATCH_COST = 0.05;
/** A detection of another class (of the group) matches a track only this close to its predicted box, by plain
 * IoU (not widened by the track's uncertainty): the same vehicle under another name sits where the track
 * expects it, while a lost car track must not take over the motorbike riding next to where it vanished. */
const CLASS_SWITCH_IOU = 0.3;
/** A detection matches a confirmed or tentative track only if its width and its height are within this factor of
 * the track's: the buffered IoU of an uncertain (lost) track spans a box size around it, which would otherwise
 * let a big near vehicle's lost track take over a small far one. A side at the frame edge is exempt: a box
 * cut off there grows quickly as the object comes in. */
const SIZE_GATE = 2.5;
/** A box side this close to the frame edge is at the edge, pixels. */
const EDGE_PX = 2;
/** A new track whose first box overlaps a confirmed track's box of its group but of another class this much
 * (IoU) is born beside it: likely a second box on the same object (see Track.born_beside). */
const BORN_BESIDE_IOU = 0.3;

export class Track {
  /** Stable per-camera id, assigned at confirmation (0 while tentative); ids only increase. */
  id = 0;
  state: TrackState = 'tentative';
  /** Filtered box (posterior when seen this frame, prediction otherwise), camera pixels. */
  box: Box;
  /** The detection matched in the last update, if any (its raw box feeds speed measurement). */
  detection: Detection | undefined;
  /** True when a detection was matched in the last update. */
  observed = true;
  /** Score of the last matched detection. */
  score: number;
  class_name: string;
  class_id: number;
  /** Hits: high-score detections matched where the motion model expected them (confirmation counts these). */
  hits = 1;
  /** Detections matched, any score. */
  matches = 1;
  /** Monotonic ms of the first and the last matched detection. */
  readonly first_seen_ms: number;
  last_seen_ms: number;
  /** Box of the first detection (analytics start from it when the track is confirmed). */
  readonly first_box: Box;
  /** Class group (see classGrouper): tracks only match detections of their group. */
  readonly group: string;
  /**
   * Id of a confirmed track of the same group but another class whose box overlapped this track's first box
   * when it was born, if any: the new track may well be a second box on that object that escaped merging
   * (analytics do not let it count a line it was born on). Another class only: the detector's NMS already
   * keeps one box per object and class, so two overlapping boxes of one class are two objects (a queue of
   * motorbikes).
   */
  born_beside: number | undefined;
  readonly kf: BoxKalman;
  private readonly votes: Vote[] = [];

  constructor(det: Detection, mono_ms: number, group: string = det.class_name) {
    this.group = group;
    this.kf = new BoxKalman(det.box);
    this.box = this.kf.box();
    this.first_box = [...det.box];
    this.detection = det;
    this.score = det.score;
    this.class_name = det.class_name;
    this.class_id = det.class_id;
    this.first_seen_ms = mono_ms;
    this.last_seen_ms = mono_ms;
    this.vote(det);
  }

  get confirmed(): boolean {
    return this.state !== 'tentative';
  }

  /** Centre velocity from the filter, pixels per second. */
  get velocity(): [number, number] {
    return [this.kf.vel[0]!, this.kf.vel[1]!];
  }

  /** Whether a detection is of the class the track has now (one of its classes, for a merged detection). */
  sameClass(det: Detection): boolean {
    if (det.class_name === this.class_name) return true;
    return det.class_scores?.some((c) => c.class_name === this.class_name) ?? false;
  }

  /**
   * Score-weighted class vote over the whole track, so a flickering label does not flip the class. A merged
   * detection votes for each of its classes with that class's score.
   */
  private vote(det: Detection): void {
    if (det.class_scores) for (const c of det.class_scores) this.tally(c.class_name, c.class_id, c.score);
    else this.tally(det.class_name, det.class_id, det.score);
    let best = this.votes[0]!;
    for (const x of this.votes) if (x.sum > best.sum) best = x;
    this.class_name = best.name;
    this.class_id = best.id;
  }

  private tally(name: string, id: number, score: number): void {
    let v = this.votes.find((x) => x.name === name);
    if (!v) this.votes.push((v = { name, id, sum: 0 }));
    v.sum += score;
  }

  /** @internal `hit`: counts towards confirmation (a high-score detection where the motion model expected it). */
  match(det: Detection, mono_ms: number, hit: boolean): void {
    this.kf.update(det.box);
    this.box = this.kf.box();
    this.detection = det;
    this.observed = true;
    this.score = det.score;
    this.last_seen_ms = mono_ms;
    this.matches++;
    if (hit) this.hits++;
    this.vote(det);
  }

  /** @internal */
  gated(): Gated {
    const w = this.kf.pos[2]!;
    const h = this.kf.pos[3]!;
    return {
      box: this.box,
      mx: Math.min(MARGIN_SIGMAS * this.kf.std(0), MARGIN_MAX * w),
      my: Math.min(MARGIN_SIGMAS * this.kf.std(1), MARGIN_MAX * h),
    };
  }
}

export interface TrackerUpdate {
  /** Confirmed tracks, seen (`observed`) or lost, in id order. */
  active: readonly Track[];
  /** Tracks confirmed in this update (also in `active`). */
  confirmed: readonly Track[];
  /** Confirmed tracks that ended in this update (unseen for `max_age_s` or predicted out of the frame). */
  ended: readonly Track[];
}

/**
 * ByteTrack-style multi-object tracker (Zhang et al. 2022): high-score detections are matched first to every
 * confirmed track, low-score ones then rescue the tracks still unmatched (an object partly hidden, a score
 * that dips), and only high-score leftovers may start tentative tracks. Matching is optimal (Hungarian) on a
 * buffered IoU widened by the Kalman uncertainty; a track seen only once may also match on distance (step 3b).
 * Matching ignores the class within a class group (car, truck, bus, motorcycle are one "vehicle"), and boxes
 * of different classes of a group on one object are merged into one detection first (mergeDetections): one
 * vehicle, one track. Time is monotonic ms; frames may come at any interval. Ids are given at confirmation, so
 * tentative tracks (false positives that never repeat) use none.
 */
export class Tracker {
  private readonly tracks: Track[] = [];
  private nextId: number;
  private lastMs: number | undefined;
  private readonly maxAgeMs: number;
  private readonly groupOf: (class_name: string) => string;

  constructor(
    private readonly cfg: TrackerConfig,
    private readonly opts: TrackerOptions = {},
  ) {
    this.nextId = opts.first_id ?? 1;
    this.maxAgeMs = (opts.max_age_s ?? cfg.max_age_s) * 1000;
    this.groupOf = classGrouper(cfg.class_groups ?? DEFAULT_CLASS_GROUPS);
  }

  /** Ids handed out so far (the next id minus the first). */
  get issued(): number {
    return this.nextId - (this.opts.first_id ?? 1);
  }

  /** All live tracks, tentative included. */
  get size(): number {
    return this.tracks.length;
  }

  update(input: readonly Detection[], mono_ms: number): TrackerUpdate {
    const detections = mergeDetections(input, this.groupOf, this.cfg.merge_iou);
    const dt = this.lastMs === undefined ? 0 : (mono_ms - this.lastMs) / 1000;
    this.lastMs = mono_ms;
    for (const t of this.tracks) {
      t.kf.predict(dt);
      t.box = t.kf.box();
      t.observed = false;
      t.detection = undefined;
    }

    const high: Detection[] = [];
    const low: Detection[] = [];
    for (const d of detections) {
      if (d.score >= this.cfg.high_score) high.push(d);
      else if (d.score >= this.cfg.low_score) low.push(d);
    }

    const frame = this.opts.frame;
    const confirmed: Track[] = [];
    const tentative: Track[] = [];
    for (const t of this.tracks) (t.confirmed ? confirmed : tentative).push(t);

    // 1. High-score detections against every confirmed track (seen or lost).
    const a1 = associate(
      confirmed.map((t) => t.gated()),
      high.map((d) => d.box),
      this.cfg.match_iou,
      this.compat(confirmed, high),
    );
    for (const [r, c] of a1.pairs) confirmed[r]!.match(high[c]!, mono_ms, true);

    // 2. Low-score detections rescue confirmed tracks seen last frame (not lost ones: a weak detection is too
    //    easily something else).
    const rest = a1.unmatchedRows.map((r) => confirmed[r]!).filter((t) => t.state === 'tracked');
    if (rest.length > 0 && low.length > 0) {
      const a2 = associate(
        rest.map((t) => t.gated()),
        low.map((d) => d.box),
        this.cfg.match_iou,
        this.compat(rest, low),
      );
      for (const [r, c] of a2.pairs) rest[r]!.match(low[c]!, mono_ms, false);
    }

    // 3. Remaining high-score detections against tentative tracks; what is still left starts new ones.
    const leftHigh = a1.unmatchedCols.map((c) => high[c]!);
    const a3 = associate(
      tentative.map((t) => t.gated()),
      leftHigh.map((d) => d.box),
      this.cfg.match_iou,
      this.compat(tentative, leftHigh),
    );
    for (const [r, c] of a3.pairs) tentative[r]!.match(leftHigh[c]!, mono_ms, true);
    let spare = a3.unmatchedCols.map((c) => leftHigh[c]!);

    // 3b. A track seen once has no velocity yet: an object moving more than its own size per frame (fast, near,
    //     or a low frame rate) has no IoU with it. Those match on the distance their filter allows instead
    //     (Mahalanobis gate on the centre), same class and a similar size. Such a match only gives the track its
    //     velocity, not a hit: confirmation waits for a detection where that velocity predicted it, so a wrong
    //     pairing (two objects appearing side by side) dies as a tentative track instead of becoming a ghost.
    const young = a3.unmatchedRows.map((r) => tentative[r]!).filter((t) => t.matches === 1);
    if (young.length > 0 && spare.length > 0) {
      const a4 = match(young.length, spare.length, (r, c) => youngCost(young[r]!, spare[c]!, this.groupOf(spare[c]!.class_name)));
      for (const [r, c] of a4.pairs) young[r]!.match(spare[c]!, mono_ms, false);
      spare = a4.unmatchedCols.map((c) => spare[c]!);
    }
    for (const d of spare) {
      const t = new Track(d, mono_ms, this.groupOf(d.class_name));
      t.born_beside = bornBeside(t, confirmed);
      this.tracks.push(t);
    }

    // 4. States, confirmation, ends.
    const newly: Track[] = [];
    const ended: Track[] = [];
    let w = 0;
    for (const t of this.tracks) {
      if (t.observed) {
        if (t.state !== 'tentative') t.state = 'tracked';
        else if (t.hits >= this.cfg.min_hits) {
          t.id = this.nextId++;
          t.state = 'tracked';
          newly.push(t);
        }
      } else {
        if (t.state === 'tracked') {
          t.state = 'lost';
          t.kf.freezeSize();
        }
        const gone = mono_ms - t.last_seen_ms > this.maxAgeMs || (frame !== undefined && t.state === 'lost' && outsideFrame(t.box, frame));
        if (gone) {
          if (t.confirmed) ended.push(t);
          continue;
        }
      }
      this.tracks[w++] = t;
    }
    this.tracks.length = w;

    const active = this.tracks.filter((t) => t.confirmed);
    active.sort((x, y) => x.id - y.id);
    return { active, confirmed: newly, ended };
  }

  /** Matching rule of tracks and detections: same class group only; another class of it only close by, at a small cost. */
  private compat(tracks: readonly Track[], dets: readonly Detection[]): (r: number, c: number) => number | undefined {
    const groups = dets.map((d) => this.groupOf(d.class_name));
    return (r, c) => {
      const t = tracks[r]!;
      const d = dets[c]!;
      if (t.group !== groups[c] || !similarSize(t, d.box, SIZE_GATE, this.opts.frame)) return undefined;
      if (t.sameClass(d)) return 0;
      return iou(t.box, d.box) >= CLASS_SWITCH_IOU ? CLASS_MISMATCH_COST : undefined;
    };
  }

  /** Ends every track (shutdown); returns the confirmed ones. */
  endAll(): Track[] {
    const out = this.tracks.filter((t) => t.confirmed);
    this.tracks.length = 0;
    return out;
  }
}

/** The confirmed track of the new track's group, another class, whose box overlaps its first box most, if by BORN_BESIDE_IOU. */
function bornBeside(t: Track, confirmed: readonly Track[]): number | undefined {
  let best: Track | undefined;
  let bestIou = BORN_BESIDE_IOU;
  for (const c of confirmed) {
    if (c.group !== t.group || c.class_name === t.class_name) continue;
    const v = iou(c.box, t.first_box);
    if (v >= bestIou) {
      bestIou = v;
      best = c;
    }
  }
  return best?.id;
}

/**
 * Whether the box's width and height are within `ratio` of the track's; with `frame`, a width (height) is not
 * compared when either box touches the left or right (top or bottom) edge.
 */
function similarSize(t: Track, b: Box, ratio: number, frame?: { width: number; height: number }): boolean {
  const w = b[2] - b[0];
  const h = b[3] - b[1];
  const tw = t.kf.pos[2]!;
  const th = t.kf.pos[3]!;
  const tb = t.box;
  const edgeX = frame !== undefined && (Math.min(b[0], tb[0]) <= EDGE_PX || Math.max(b[2], tb[2]) >= frame.width - EDGE_PX);
  const edgeY = frame !== undefined && (Math.min(b[1], tb[1]) <= EDGE_PX || Math.max(b[3], tb[3]) >= frame.height - EDGE_PX);
  return (edgeX || (w <= ratio * tw && tw <= ratio * w)) && (edgeY || (h <= ratio * th && th <= ratio * h));
}

function youngCost(t: Track, d: Detection, group: string): number | undefined {
  if (group !== t.group || !similarSize(t, d.box, SIZE_RATIO)) return undefined;
  const dx = ((d.box[0] + d.box[2]) / 2 - t.kf.pos[0]!) / t.kf.innovationStd(0);
  const dy = ((d.box[1] + d.box[3]) / 2 - t.kf.pos[1]!) / t.kf.innovationStd(1);
  const d2 = dx * dx + dy * dy;
  return d2 > CHI2_99 ? undefined : d2;
}

/** The whole box is beyond an edge of the frame. */
export function outsideFrame(b: Box, f: { width: number; height: number }): boolean {
  return b[2] <= 0 || b[3] <= 0 || b[0] >= f.width || b[1] >= f.height;
}
