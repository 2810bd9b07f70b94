/**
 * CTC greedy decoding of the PP-OCR recogniser's output ([N, T, C] class probabilities after softmax).
 * Class 0 is the CTC blank, classes 1..K the dictionary's lines, class K+1 a space.
 */

export interface CtcRead {
  text: string;
  /** Probability of each emitted character (the best frame of its run). */
  char_conf: number[];
}

/**
 * The dictionary as class labels: blank, the file's lines, space. Only characters a plate can show (digits,
 * Latin letters, `-`, `.`, space) are decoded; at every frame the best of those and the blank wins, so the
 * Chinese classes of the multilingual model cannot be emitted, and a frame they dominate yields a
 * low-probability character (the confidence shows it) or a blank.
 */
export class CtcDictionary {
  readonly labels: string[];
  /** Class indices decoding considers, blank first. */
  readonly allowed: Int32Array;

  constructor(dictionaryText: string) {
    const lines = dictionaryText.split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    this.labels = ['', ...lines, ' '];
    const plate = /^[0-9A-Za-z.\- ]$/;
    this.allowed = Int32Array.from([0, ...this.labels.flatMap((l, i) => (i > 0 && plate.test(l) ? [i] : []))]);
  }

  get classes(): number {
    return this.labels.length;
  }

  /**
   * Decodes item `n` of a [N, T, C] output, its first `frames` frames (default all): best allowed class per
   * frame, repeats merged, blanks dropped.
   */
  decode(probs: Float32Array, n: number, steps: number, classes: number, frames = steps): CtcRead {
    let text = '';
    const conf: number[] = [];
    let prev = -1;
    const base = n * steps * classes;
    for (let t = 0; t < Math.min(frames, steps); t++) {
      const row = base + t * classes;
      let best = 0;
      let bestP = -1;
      for (const k of this.allowed) {
        const p = probs[row + k]!;
        if (p > bestP) {
          bestP = p;
          best = k;
        }
      }
      if (best !== 0 && best === prev) {
        conf[conf.length - 1] = Math.max(conf[conf.length - 1]!, bestP);
      } else if (best !== 0) {
        text += this.labels[best]!.toUpperCase();
        conf.push(bestP);
      }
      prev = best;
    }
    return { text, char_conf: conf };
  }
}
