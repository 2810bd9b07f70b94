import {
  gateFor,
  isNum,
  mismatch,
  type Candidates,
  type Decoder,
  type DecoderFactory,
  type DecoderInput,
  type InputSize,
  type OutputInfo,
  type OutputTensor,
  type ScoreGate,
} from './types.js';

/**
 * NanoDet GFL heads: per stride s a class map `[1, N, C]` and a box-distribution map `[1, N, 4 * bins]`,
 * N = ceil(H / s) * ceil(W / s) anchors in row-major order. Each box side (left, top, right, bottom) is a
 * distribution over `bins` integer distances 0..bins-1 in stride units; the distance is its expectation
 * (softmax · bin index), times the stride. Anchor centres are at (col + CENTER_OFFSET) * s.
 */
export interface NanodetOptions {
  /** Anchor centre offset in cells: 0 (NanoDet-Plus: col * s) or 0.5 (GFL: (col + 0.5) * s). */
  centerOffset: number;
  /** Class outputs are raw logits (apply a sigmoid) rather than probabilities. */
  logits: boolean;
}

/**
 * Verified on the bundled model (models/nanodet.onnx, converted from the TF.js NanoDet) with the darknet photos
 * in tests/fixtures/photos (tests/detector.real.test.ts): class outputs are already sigmoid probabilities
 * (0..0.72 on dog.jpg, never negative); anchor centres are at (col + 0.5) * stride (offset 0 shifts every box up
 * and left by half a cell: the dog's box lost its bottom 11 px and gained 14 px above its head); the 44
 * regression values are side-major (left, top, right, bottom) × 11 bins.
 */
export const NANODET_DEFAULTS: NanodetOptions = { centerOffset: 0.5, logits: false };

const STRIDES = [8, 16, 32, 64, 128];
const NAME = /(cls|reg)\D*?(\d+)$/i;

interface Level {
  stride: number;
  cols: number;
  rows: number;
  cls: string;
  reg: string;
}

export function nanodetFactory(opts: NanodetOptions = NANODET_DEFAULTS): DecoderFactory {
  return {
    name: 'nanodet',
    bind(outputs: readonly OutputInfo[], input: InputSize, numClassesHint?: number): Decoder {
      if (outputs.some((o) => /^anchors_s\d+$/.test(o.name))) return bindCandidates(outputs, input, numClassesHint, opts);
      const levels = bindLevels(outputs, input, numClassesHint);
      const first = outputs.find((o) => o.name === levels[0]!.cls)!;
      const regFirst = outputs.find((o) => o.name === levels[0]!.reg)!;
      const numClasses = first.dims[2] as number;
      const bins = (regFirst.dims[2] as number) / 4;
      return new NanodetDecoder(levels, numClasses, bins, opts);
    },
  };
}

function strideFor(n: number, input: InputSize): number | undefined {
  return STRIDES.find((s) => Math.ceil(input.width / s) * Math.ceil(input.height / s) === n);
}

function bindLevels(outputs: readonly OutputInfo[], input: InputSize, hint: number | undefined): Level[] {
  const fail = (why: string) => mismatch('nanodet', outputs, why);
  const expect = `expected pairs [1,N,C] + [1,N,4*bins] for strides 8/16/32 at ${input.width}x${input.height}`;
  const byStride = new Map<number, { cls?: OutputInfo; reg?: OutputInfo }>();
  for (const o of outputs) {
    if (o.dims.length !== 3 || !isNum(o.dims[2])) continue;
    const named = NAME.exec(o.name);
    const n = o.dims[1];
    let stride = isNum(n) ? strideFor(n, input) : undefined;
    if (stride === undefined && named && !isNum(n)) stride = Number(named[2]);
    if (stride === undefined) continue;
    let role: 'cls' | 'reg';
    if (named) role = named[1]!.toLowerCase() as 'cls' | 'reg';
    else role = hint !== undefined ? (o.dims[2] === hint ? 'cls' : 'reg') : o.dims[2] % 4 === 0 && o.dims[2] <= 4 * 17 ? 'reg' : 'cls';
    const slot = byStride.get(stride) ?? {};
    if (slot[role]) throw fail(`two ${role} outputs for stride ${stride}`);
    slot[role] = o;
    byStride.set(stride, slot);
  }
  const levels: Level[] = [];
  let classes: number | undefined;
  let regWidth: number | undefined;
  for (const [stride, { cls, reg }] of [...byStride].sort((a, b) => a[0] - b[0])) {
    if (!cls || !reg) continue;
    const c = cls.dims[2] as number;
    const r = reg.dims[2] as number;
    if (r % 4 !== 0 || r < 8) throw fail(`${reg.name}: last dimension ${r} is not 4 * bins`);
    if (classes !== undefined && (c !== classes || r !== regWidth)) throw fail('levels disagree on classes or bins');
    classes = c;
    regWidth = r;
    levels.push({ stride, cols: Math.ceil(input.width / stride), rows: Math.ceil(input.height / stride), cls: cls.name, reg: reg.name });
  }
  if (levels.length === 0) throw fail(expect);
  return levels;
}

/** The classes a gate keeps and their thresholds in the outputs' own domain, cached per gate. */
interface Active {
  ids: Int32Array;
  thr: Float32Array;
  min: number;
}

class ActiveClasses {
  private act: Active | undefined;
  private source: Float32Array | undefined;

  constructor(
    private readonly numClasses: number,
    private readonly logits: boolean,
  ) {}

  /** logit(t) for logit outputs, so no sigmoid runs per class; the scan reads only kept classes (6 of 80 by default). */
  of(gate: ScoreGate): Active {
    if (this.source !== gate.byClass || !this.act) {
      const ids: number[] = [];
      const thr: number[] = [];
      for (let c = 0; c < this.numClasses; c++) {
        const p = gateFor(gate, c);
        if (p === Infinity) continue;
        ids.push(c);
        thr.push(!this.logits ? p : p <= 0 ? -Infinity : p >= 1 ? Infinity : Math.log(p / (1 - p)));
      }
      this.act = { ids: Int32Array.from(ids), thr: Float32Array.from(thr), min: Math.min(...thr) };
      this.source = gate.byClass;
    }
    return this.act;
  }
}

/** The kept class k scoring highest at values[base + (ids ? ids[k] : k)] among those reaching thr[k]; -1 if none. */
function bestKept(values: Float32Array | Int32Array, base: number, ids: Int32Array | null, thr: Float32Array): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let k = 0; k < thr.length; k++) {
    const v = values[base + (ids ? ids[k]! : k)]!;
    if (v > bestScore && v >= thr[k]!) [best, bestScore] = [k, v];
  }
  return best;
}

function probability(v: number, logits: boolean): number {
  return logits ? 1 / (1 + Math.exp(-v)) : v;
}

/** Appends anchor `i`'s box: its four distances are the expectations of the `bins` logits at reg[at..]. */
function pushBox(out: Candidates, level: Level, off: number, i: number, reg: Float32Array, at: number, bins: number, score: number, cls: number): void {
  const s = level.stride;
  const row = Math.floor(i / level.cols);
  const cx = (i - row * level.cols + off) * s;
  const cy = (row + off) * s;
  const d0 = expectation(reg, at, bins);
  const d1 = expectation(reg, at + bins, bins);
  const d2 = expectation(reg, at + 2 * bins, bins);
  const d3 = expectation(reg, at + 3 * bins, bins);
  out.push(cx - d0 * s, cy - d1 * s, cx + d2 * s, cy + d3 * s, score, cls);
}

class NanodetDecoder implements Decoder {
  readonly name = 'nanodet' as const;
  readonly outputNames: readonly string[];
  private readonly active: ActiveClasses;

  constructor(
    private readonly levels: readonly Level[],
    readonly numClasses: number,
    private readonly bins: number,
    private readonly opts: NanodetOptions,
  ) {
    this.outputNames = levels.flatMap((l) => [l.cls, l.reg]);
    this.active = new ActiveClasses(numClasses, opts.logits);
  }

  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void {
    const C = this.numClasses;
    const bins = this.bins;
    const { ids, thr, min } = this.active.of(gate);
    const A = ids.length;
    if (A === 0) return;
    const all = A === C;
    const off = this.opts.centerOffset;
    for (const level of this.levels) {
      const cls = outputs[level.cls]!.data;
      const reg = outputs[level.reg]!.data as Float32Array;
      const n = level.cols * level.rows;
      for (let i = 0; i < n; i++) {
        const base = i * C;
        // Most anchors score nothing anywhere: one plain max over the kept classes, inline (V8's lite mode makes a
        // call per anchor the cost), decides before any per-class threshold.
        let m = -Infinity;
        if (all) for (let c = 0; c < C; c++) m = cls[base + c]! > m ? cls[base + c]! : m;
        else for (let a = 0; a < A; a++) m = cls[base + ids[a]!]! > m ? cls[base + ids[a]!]! : m;
        if (m < min) continue;
        const k = bestKept(cls, base, ids, thr);
        if (k >= 0) pushBox(out, level, off, i, reg, i * 4 * bins, bins, probability(cls[base + ids[k]!]!, this.opts.logits), ids[k]!);
      }
    }
  }
}

interface CandidateLevel extends Level {
  anchors: string;
}

/**
 * The candidate layout (models/build/candidates.mjs, the bundled int8 model): the graph keeps the dense heads and
 * returns per stride s only the anchors whose best kept class reaches `min_score`: `anchors_s{s}` int32 [n],
 * `scores_s{s}` [1,n,K] for the K classes fed in `classes` (in that order), `dists_s{s}` [1,n,4*bins]. A run
 * returns kilobytes instead of the dense heads' 1.7 MB.
 */
function bindCandidates(outputs: readonly OutputInfo[], input: InputSize, hint: number | undefined, opts: NanodetOptions): Decoder {
  const fail = (why: string) => mismatch('nanodet', outputs, why);
  if (hint === undefined) throw fail('a candidate model needs the class names to feed the kept classes');
  const levels: CandidateLevel[] = [];
  let bins: number | undefined;
  for (const a of outputs) {
    const m = /^anchors_s(\d+)$/.exec(a.name);
    if (!m) continue;
    const stride = Number(m[1]);
    const scores = outputs.find((o) => o.name === `scores_s${stride}`);
    const dists = outputs.find((o) => o.name === `dists_s${stride}`);
    const width = dists?.dims[2];
    if (!scores || !dists || scores.dims.length !== 3 || dists.dims.length !== 3 || !isNum(width) || width % 4 !== 0 || width < 8) {
      throw fail(`${a.name} needs scores_s${stride} [1,n,K] and dists_s${stride} [1,n,4*bins]`);
    }
    if (bins !== undefined && width / 4 !== bins) throw fail('levels disagree on bins');
    bins = width / 4;
    const cols = Math.ceil(input.width / stride);
    const rows = Math.ceil(input.height / stride);
    levels.push({ stride, cols, rows, anchors: a.name, cls: scores.name, reg: dists.name });
  }
  levels.sort((x, y) => x.stride - y.stride);
  return new NanodetCandidateDecoder(levels, hint, bins!, opts);
}

class NanodetCandidateDecoder implements Decoder {
  readonly name = 'nanodet' as const;
  /** The model does not say how many classes it scores: it returns the ones it is fed. */
  readonly numClasses = undefined;
  readonly outputNames: readonly string[];
  readonly inputNames = ['classes', 'min_score'] as const;
  private readonly active: ActiveClasses;
  private readonly anchorOutputs: ReadonlySet<string>;

  constructor(
    private readonly levels: readonly CandidateLevel[],
    numClasses: number,
    private readonly bins: number,
    private readonly opts: NanodetOptions,
  ) {
    this.outputNames = levels.flatMap((l) => [l.anchors, l.cls, l.reg]);
    this.anchorOutputs = new Set(levels.map((l) => l.anchors));
    this.active = new ActiveClasses(numClasses, opts.logits);
  }

  outputType(name: string): 'int32' | undefined {
    return this.anchorOutputs.has(name) ? 'int32' : undefined;
  }

  /** The kept classes and the lowest of their thresholds; none kept: class 0 behind an unreachable threshold. */
  feeds(gate: ScoreGate): Record<string, DecoderInput> {
    const { ids, min } = this.active.of(gate);
    const kept = ids.length > 0;
    return {
      classes: { data: kept ? BigInt64Array.from(ids, (c) => BigInt(c)) : BigInt64Array.of(0n), dims: [kept ? ids.length : 1] },
      min_score: { data: Float32Array.of(kept ? min : Infinity), dims: [] },
    };
  }

  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void {
    const { ids, thr } = this.active.of(gate);
    const K = ids.length;
    if (K === 0) return;
    const bins = this.bins;
    const off = this.opts.centerOffset;
    for (const level of this.levels) {
      const anchors = outputs[level.anchors]!.data;
      const scores = outputs[level.cls]!.data;
      const dists = outputs[level.reg]!.data as Float32Array;
      for (let j = 0; j < anchors.length; j++) {
        const k = bestKept(scores, j * K, null, thr);
        if (k >= 0) pushBox(out, level, off, anchors[j]!, dists, j * 4 * bins, bins, probability(scores[j * K + k]!, this.opts.logits), ids[k]!);
      }
    }
  }
}

/**
 * Softmax over `bins` logits at `at`, then the expected bin index. Unshifted: one pass, where the agent's
 * interpreter-only V8 (core/runtime-env.ts) pays per loop; a row whose logits overflow or underflow exp goes again.
 */
function expectation(reg: Float32Array, at: number, bins: number): number {
  let sum = 0;
  let acc = 0;
  for (let j = 0; j < bins; j++) {
    const e = Math.exp(reg[at + j]!);
    sum += e;
    acc += e * j;
  }
  return sum > 0 && sum < Infinity ? acc / sum : shiftedExpectation(reg, at, bins, Math.max(...reg.subarray(at, at + bins)));
}

function shiftedExpectation(reg: Float32Array, at: number, bins: number, max: number): number {
  let sum = 0;
  let acc = 0;
  for (let j = 0; j < bins; j++) {
    const e = Math.exp(reg[at + j]! - max);
    sum += e;
    acc += e * j;
  }
  return acc / sum;
}
