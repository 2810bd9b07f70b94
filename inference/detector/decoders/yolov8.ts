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
 * The common YOLOv8 / YOLO11 export: one output `[1, 4 + C, N]` (cx, cy, w, h in input pixels, then C class
 * probabilities; no objectness). The transposed `[1, N, 4 + C]` some exporters write is accepted too.
 */
export function yolov8Factory(): DecoderFactory {
  return {
    name: 'yolov8',
    bind(outputs: readonly OutputInfo[], _input: InputSize, hint?: number): Decoder {
      const fail = (why: string) => mismatch('yolov8', outputs, why);
      const cands = outputs.filter((o) => o.dims.length === 3);
      if (cands.length === 0) throw fail('expected one output [1,4+C,N]');
      for (const o of cands) {
        const [, a, b] = o.dims;
        if (hint !== undefined) {
          if (a === 4 + hint) return new Yolov8Decoder(o.name, hint, true);
          if (b === 4 + hint) return new Yolov8Decoder(o.name, hint, false);
        }
      }
      const o = cands[0]!;
      const [, a, b] = o.dims;
      if (hint !== undefined && (a === 5 + hint || b === 5 + hint)) {
        throw fail(`4 + ${hint} classes + 1: an objectness column (YOLOv5/v7 layout) is not supported`);
      }
      if (hint !== undefined) throw fail(`expected [1,${4 + hint},N] for ${hint} class names`);
      // No class count to go by: the channel axis is the shorter one.
      if (isNum(a) && (!isNum(b) || a < b) && a > 4) return new Yolov8Decoder(o.name, a - 4, true);
      if (isNum(b) && b > 4) return new Yolov8Decoder(o.name, b - 4, false);
      throw fail('expected [1,4+C,N]');
    },
  };
}

class Yolov8Decoder implements Decoder {
  readonly name = 'yolov8' as const;
  readonly outputNames: readonly string[];
  private bestScore = new Float32Array(0);
  private bestClass = new Int32Array(0);

  constructor(
    private readonly output: string,
    readonly numClasses: number,
    /** [1, 4+C, N] (true) or [1, N, 4+C] (false). */
    private readonly channelsFirst: boolean,
  ) {
    this.outputNames = [output];
  }

  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void {
    const t = outputs[this.output]!;
    const C = this.numClasses;
    const d = t.data;
    if (this.channelsFirst) {
      const n = t.dims[2]!;
      if (this.bestScore.length < n) {
        this.bestScore = new Float32Array(n);
        this.bestClass = new Int32Array(n);
      }
      const bs = this.bestScore;
      const bc = this.bestClass;
      bs.fill(-Infinity, 0, n);
      bc.fill(-1, 0, n);
      // Class-major sweep: reads each row contiguously.
      for (let c = 0; c < C; c++) {
        const thr = gateFor(gate, c);
        if (thr === Infinity) continue;
        const row = (4 + c) * n;
        for (let j = 0; j < n; j++) {
          const v = d[row + j]!;
          if (v >= thr && v > bs[j]!) {
            bs[j] = v;
            bc[j] = c;
          }
        }
      }
      for (let j = 0; j < n; j++) {
        const c = bc[j]!;
        if (c < 0) continue;
        const cx = d[j]!;
        const cy = d[n + j]!;
        const hw = d[2 * n + j]! / 2;
        const hh = d[3 * n + j]! / 2;
        out.push(cx - hw, cy - hh, cx + hw, cy + hh, bs[j]!, c);
      }
      return;
    }
    const n = t.dims[1]!;
    const w = 4 + C;
    for (let j = 0; j < n; j++) {
      const base = j * w;
      let best = -1;
      let bestScore = -Infinity;
      for (let c = 0; c < C; c++) {
        const v = d[base + 4 + c]!;
        if (v >= gateFor(gate, c) && v > bestScore) {
          bestScore = v;
          best = c;
        }
      }
      if (best < 0) continue;
      const hw = d[base + 2]! / 2;
      const hh = d[base + 3]! / 2;
      out.push(d[base]! - hw, d[base + 1]! - hh, d[base]! + hw, d[base + 1]! + hh, bestScore, best);
    }
  }
}
