import { gateFor, mismatch, type Candidates, type Decoder, type DecoderFactory, type OutputInfo, type OutputTensor, type ScoreGate } from './types.js';

/** Boxes decoded inside the graph: `[1, K, 6]` (or `[K, 6]`) rows of x1, y1, x2, y2, score, class in input pixels. */
export function decodedFactory(): DecoderFactory {
  return {
    name: 'decoded',
    bind(outputs: readonly OutputInfo[]): Decoder {
      const o = outputs.find((x) => (x.dims.length === 3 || x.dims.length === 2) && x.dims[x.dims.length - 1] === 6);
      if (!o) throw mismatch('decoded', outputs, 'expected one output [1,K,6] of x1,y1,x2,y2,score,class');
      return new DecodedDecoder(o.name);
    },
  };
}

class DecodedDecoder implements Decoder {
  readonly name = 'decoded' as const;
  readonly numClasses = undefined;
  readonly outputNames: readonly string[];

  constructor(private readonly output: string) {
    this.outputNames = [output];
  }

  decode(outputs: Readonly<Record<string, OutputTensor>>, gate: ScoreGate, out: Candidates): void {
    const d = outputs[this.output]!.data;
    for (let base = 0; base + 6 <= d.length; base += 6) {
      const score = d[base + 4]!;
      const cls = Math.round(d[base + 5]!);
      if (cls < 0 || !(score >= gateFor(gate, cls))) continue;
      out.push(d[base]!, d[base + 1]!, d[base + 2]!, d[base + 3]!, score, cls);
    }
  }
}
