// Where the picture moved relative to a reference: phase correlation of two thumbnails. Translation shows as one
// sharp peak of the inverse normalised cross-power spectrum, whatever the brightness and contrast; a view that
// no longer resembles the reference shows no peak. About 0.1 ms for 64×48 (FFT size 64×64).

/** A shift between two thumbnails, thumbnail pixels: the content of the current one sits at reference + (dx, dy). */
export interface Registration {
  dx: number;
  dy: number;
  /** Height of the correlation peak, 0-1: 1 for a copy, above ~0.1 for the same view, ~0.02 for unrelated pictures. */
  peak: number;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** In-place radix-2 FFT of `n` complex values spaced `step` apart from `start` (`inverse`: no 1/n scaling). */
class Fft {
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly rev: Uint32Array;

  constructor(readonly n: number) {
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.cos[i] = Math.cos((2 * Math.PI * i) / n);
      this.sin[i] = Math.sin((2 * Math.PI * i) / n);
    }
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
  }

  run(re: Float64Array, im: Float64Array, start: number, step: number, inverse: boolean): void {
    const { n, rev, cos, sin } = this;
    for (let i = 0; i < n; i++) {
      const j = rev[i]!;
      if (j > i) {
        const a = start + i * step;
        const b = start + j * step;
        let t = re[a]!;
        re[a] = re[b]!;
        re[b] = t;
        t = im[a]!;
        im[a] = im[b]!;
        im[b] = t;
      }
    }
    const sign = inverse ? 1 : -1;
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const tstep = n / size;
      const hs = half * step;
      for (let k = 0; k < half; k++) {
        const wr = cos[k * tstep]!;
        const wi = sign * sin[k * tstep]!;
        for (let a = start + k * step, end = start + n * step; a < end; a += size * step) {
          const b = a + hs;
          const br = re[b]!;
          const bi = im[b]!;
          const xr = br * wr - bi * wi;
          const xi = br * wi + bi * wr;
          const ar = re[a]!;
          const ai = im[a]!;
          re[b] = ar - xr;
          im[b] = ai - xi;
          re[a] = ar + xr;
          im[a] = ai + xi;
        }
      }
    }
  }
}

/**
 * Phase correlation of w × h images against a reference set once. The images are real, so the spectra are
 * Hermitian: two rows go through one complex FFT, and only the columns u ≤ fw/2 are transformed and compared.
 */
export class PhaseCorrelator {
  private readonly fw: number;
  private readonly fh: number;
  private readonly half: number;
  private readonly rowFft: Fft;
  private readonly colFft: Fft;
  private readonly window: Float64Array;
  /** Frequency weight: phase at high frequencies is mostly noise (rain, grain, compression). */
  private readonly weight: Float64Array;
  /** Sum of the weights over the whole spectrum: the peak of a perfect match. */
  private readonly weightSum: number;
  private readonly refRe: Float64Array;
  private readonly refIm: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly corr: Float64Array;
  private readonly zr: Float64Array;
  private readonly zi: Float64Array;
  private hasRef = false;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.fw = Math.max(2, nextPow2(width));
    this.fh = Math.max(2, nextPow2(height));
    this.half = this.fw / 2;
    this.rowFft = new Fft(this.fw);
    this.colFft = new Fft(this.fh);
    const size = this.fw * this.fh;
    this.refRe = new Float64Array(size);
    this.refIm = new Float64Array(size);
    this.re = new Float64Array(size);
    this.im = new Float64Array(size);
    this.corr = new Float64Array(size);
    this.zr = new Float64Array(this.fw);
    this.zi = new Float64Array(this.fw);
    // Hann window over the image, so its borders (and the zero padding) do not correlate.
    this.window = new Float64Array(width * height);
    for (let y = 0; y < height; y++) {
      const wy = 0.5 - 0.5 * Math.cos((2 * Math.PI * (y + 0.5)) / height);
      for (let x = 0; x < width; x++) this.window[y * width + x] = wy * (0.5 - 0.5 * Math.cos((2 * Math.PI * (x + 0.5)) / width));
    }
    this.weight = new Float64Array(size);
    let sum = 0;
    for (let v = 0; v < this.fh; v++) {
      const fy = Math.min(v, this.fh - v) / this.fh;
      for (let u = 0; u < this.fw; u++) {
        const fx = Math.min(u, this.fw - u) / this.fw;
        const w = Math.exp(-(fx * fx + fy * fy) / (2 * 0.2 * 0.2));
        this.weight[v * this.fw + u] = w;
        sum += w;
      }
    }
    this.weightSum = sum;
  }

  setReference(img: ArrayLike<number>): void {
    this.spectrum(img);
    this.refRe.set(this.re);
    this.refIm.set(this.im);
    this.hasRef = true;
  }

  /** Registration of `img` against the reference. */
  match(img: ArrayLike<number>): Registration {
    if (!this.hasRef) throw new Error('PhaseCorrelator: no reference set');
    this.spectrum(img);
    const { re, im, refRe, refIm, weight, fw, fh, half } = this;
    for (let v = 0; v < fh; v++) {
      for (let u = 0; u <= half; u++) {
        const i = v * fw + u;
        // cur · conj(ref), normalised to unit magnitude, weighted.
        const cr = re[i]! * refRe[i]! + im[i]! * refIm[i]!;
        const ci = im[i]! * refRe[i]! - re[i]! * refIm[i]!;
        const mag = Math.sqrt(cr * cr + ci * ci);
        const k = mag > 1e-9 ? weight[i]! / mag : 0;
        re[i] = cr * k;
        im[i] = ci * k;
      }
    }
    const corr = this.inverse();
    let best = 0;
    for (let i = 1; i < fw * fh; i++) if (corr[i]! > corr[best]!) best = i;
    const px = best % fw;
    const py = (best - px) / fw;
    const at = (x: number, y: number) => corr[((y + fh) % fh) * fw + ((x + fw) % fw)]!;
    const peak = corr[best]!;
    const sub = (m: number, c: number, p: number) => {
      const d = m - 2 * c + p;
      return d < 0 ? (0.5 * (m - p)) / d : 0;
    };
    let dx = px + sub(at(px - 1, py), peak, at(px + 1, py));
    let dy = py + sub(at(px, py - 1), peak, at(px, py + 1));
    if (dx > fw / 2) dx -= fw;
    if (dy > fh / 2) dy -= fh;
    return { dx, dy, peak: Math.max(0, peak / this.weightSum) };
  }

  /** Windowed, mean-free, zero-padded image → its spectrum in re/im, columns u ≤ fw/2. */
  private spectrum(img: ArrayLike<number>): void {
    const { width: w, height: h, window, re, im, fw, fh, half, zr, zi } = this;
    if (img.length !== w * h) throw new RangeError(`image has ${img.length} values, expected ${w}x${h}`);
    let mean = 0;
    for (let i = 0; i < w * h; i++) mean += img[i]!;
    mean /= w * h;
    re.fill(0);
    im.fill(0);
    // Rows y and y+1 as the real and imaginary part of one FFT, then split (Z[k] ± conj(Z[n-k])).
    for (let y = 0; y < h; y += 2) {
      zr.fill(0);
      zi.fill(0);
      for (let x = 0; x < w; x++) {
        zr[x] = (img[y * w + x]! - mean) * window[y * w + x]!;
        if (y + 1 < h) zi[x] = (img[(y + 1) * w + x]! - mean) * window[(y + 1) * w + x]!;
      }
      this.rowFft.run(zr, zi, 0, 1, false);
      for (let k = 0; k <= half; k++) {
        const j = (fw - k) % fw;
        const a = y * fw + k;
        re[a] = 0.5 * (zr[k]! + zr[j]!);
        im[a] = 0.5 * (zi[k]! - zi[j]!);
        if (y + 1 < fh) {
          re[a + fw] = 0.5 * (zi[k]! + zi[j]!);
          im[a + fw] = -0.5 * (zr[k]! - zr[j]!);
        }
      }
    }
    for (let u = 0; u <= half; u++) this.colFft.run(re, im, u, fw, false);
  }

  /** Inverse of the half spectrum in re/im (destroyed) → the real correlation surface. */
  private inverse(): Float64Array {
    const { re, im, fw, fh, half, zr, zi, corr } = this;
    for (let u = 0; u <= half; u++) this.colFft.run(re, im, u, fw, true);
    // Each row is Hermitian in u: two rows through one complex inverse FFT give both real rows.
    for (let y = 0; y < fh; y += 2) {
      for (let u = 0; u < fw; u++) {
        const m = u <= half ? u : fw - u;
        const s = u <= half ? 1 : -1;
        const a = y * fw + m;
        const g1r = re[a]!;
        const g1i = s * im[a]!;
        const g2r = re[a + fw]!;
        const g2i = s * im[a + fw]!;
        zr[u] = g1r - g2i;
        zi[u] = g1i + g2r;
      }
      this.rowFft.run(zr, zi, 0, 1, true);
      corr.set(zr, y * fw);
      corr.set(zi, (y + 1) * fw);
    }
    return corr;
  }
}

/** Gradient magnitude |dx| + |dy| (forward differences; 0 in the last row and column) of a w × h image into `out`. */
export function edgeMap(img: ArrayLike<number>, w: number, h: number, out: Float32Array): Float32Array {
  out.fill(0);
  for (let y = 0; y < h - 1; y++) {
    for (let x = 0; x < w - 1; x++) {
      const i = y * w + x;
      const v = img[i]!;
      out[i] = Math.abs(img[i + 1]! - v) + Math.abs(img[i + w]! - v);
    }
  }
  return out;
}

/**
 * Normalised correlation (-1..1) of two edge maps where `cur` sits at `ref` + (dx, dy) (whole pixels), over
 * their overlap without a 1-pixel border: about 0.5-0.9 for the same view, below 0.2 for unrelated ones. 0 when
 * the overlap is too small or flat.
 */
export function edgeMatch(cur: Float32Array, ref: Float32Array, w: number, h: number, dx: number, dy: number): number {
  const x0 = Math.max(1, 1 + dx);
  const x1 = Math.min(w - 2, w - 2 + dx);
  const y0 = Math.max(1, 1 + dy);
  const y1 = Math.min(h - 2, h - 2 + dy);
  const n = (x1 - x0) * (y1 - y0);
  if (x1 <= x0 || y1 <= y0 || n < (w * h) / 8) return 0;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const a = cur[y * w + x]!;
      const b = ref[(y - dy) * w + (x - dx)]!;
      sa += a;
      sb += b;
      saa += a * a;
      sbb += b * b;
      sab += a * b;
    }
  }
  const cov = sab - (sa * sb) / n;
  const va = saa - (sa * sa) / n;
  const vb = sbb - (sb * sb) / n;
  return va > 1e-9 && vb > 1e-9 ? cov / Math.sqrt(va * vb) : 0;
}
