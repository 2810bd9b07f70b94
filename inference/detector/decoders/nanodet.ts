import {
  gateFor,
  isNum,
  mismatch,
  type Candidates,
  type Decoder,
  type DecoderFactory,
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

class NanodetDecoder implements Decoder {
  readonly name = 'nanodet' as const;
  readonly outputNames: readonly string[];
  private act: { ids: Int32Array; thr: Float32Array; min: number } | undefined;
  private gateSource: Float32Array | undefined;

  constructor(
    private readonly levels: readonly Level[],
    readonly numClasses: number,
    private readonly bins: number,
    private readonly opts: NanodetOptions,
  ) {
    this.outputNames = levels.flatMap((l) => [l.cls, l.reg]);
  }

  /**
   * The classes the gate keeps and their thresholds in the outputs' own domain (logit(t) for logits, so no
   * sigmoid runs per class), cached per gate: the scan reads only kept classes (6 of 80 by default).
   */
  private active(gate: ScoreGate): { ids: Int32Array; thr: Float32Array; min: number } {
    if (this.gateSource !== gate.byClass || !this.act) {
      const ids: number[] = [];
      const thr: number[] = [];
      for (let c = 0; c < this.numClasses; c++) {
        const p = gateFor(gate, c);
        if (p === Infinity) continue;
        ids.push(c);
        thr.push(!this.opts.logits ? p : p <= 0 ? -Infinity : p >= 1 ? Infinity : Math.log(p / (1 - p)));
      }
      this.act = { ids: Int32Array.from(ids), thr: Float32Array.from(thr), min: Math.min(...thr) };
      this.gateSource = gate.byClass;
    }
    return this.act;
  }

  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void {
    const C = this.numClasses;
    const bins = this.bins;
    const { ids, thr, min } = this.active(gate);
    const A = ids.length;
    if (A === 0) return;
    const all = A === C;
    const off = this.opts.centerOffset;
    for (const level of this.levels) {
      const cls = outputs[level.cls]!.data;
      const reg = outputs[level.reg]!.data;
      const n = level.cols * level.rows;
      const s = level.stride;
      for (let i = 0; i < n; i++) {
        const base = i * C;
        if (all) {
          // Most anchors score nothing anywhere: one plain max decides, before any per-class threshold.
          let m = cls[base]!;
          for (let c = 1; c < C; c++) if (cls[base + c]! > m) m = cls[base + c]!;
          if (m < min) continue;
        }
        let best = -1;
        let bestScore = -Infinity;
        for (let k = 0; k < A; k++) {
          const v = cls[base + ids[k]!]!;
          if (v > bestScore && v >= thr[k]!) {
            bestScore = v;
            best = ids[k]!;
          }
        }
        if (best < 0) continue;
        const score = this.opts.logits ? 1 / (1 + Math.exp(-bestScore)) : bestScore;
        const row = Math.floor(i / level.cols);
        const cx = (i - row * level.cols + off) * s;
        const cy = (row + off) * s;
        const rb = i * 4 * bins;
        const d0 = expectation(reg, rb, bins);
        const d1 = expectation(reg, rb + bins, bins);
        const d2 = expectation(reg, rb + 2 * bins, bins);
        const d3 = expectation(reg, rb + 3 * bins, bins);
        out.push(cx - d0 * s, cy - d1 * s, cx + d2 * s, cy + d3 * s, score, best);
      }
    }
  }
}

/** Softmax over `bins` logits starting at `at`, then the expected bin index. */
function expectation(reg: Float32Array, at: number, bins: number): number {
  let max = -Infinity;
  for (let j = 0; j < bins; j++) if (reg[at + j]! > max) max = reg[at + j]!;
  let sum = 0;
  let acc = 0;
  for (let j = 0; j < bins; j++) {
    const e = Math.exp(reg[at + j]! - max);
    sum += e;
    acc += e * j;
  }
  return acc / sum;
}
