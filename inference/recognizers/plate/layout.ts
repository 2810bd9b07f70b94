/**
 * From read text regions to plate candidates. Regions side by side on one baseline are one line (a plate
 * whose `-` gap split it); every line is a one-line candidate, and every two lines stacked with their widths
 * overlapping and a gap under about a line height are a two-line candidate (motorbike plates: `59-X1` over
 * `234.56`). The format check decides between them.
 */
import type { Quad } from './tensor.js';

export interface RegionRead {
  quad: Quad;
  text: string;
  char_conf: number[];
}

export interface Bounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlateCandidate {
  layout: 'one_line' | 'two_line';
  /** Text of each line, top first. */
  lines: string[];
  char_conf: number[];
  /** Axis-aligned box around the candidate's regions, crop pixels. */
  box: Bounds;
}

interface Line {
  regions: RegionRead[];
  /** Line height (mean of its regions' heights), pixels. */
  h: number;
  cy: number;
  bounds: Bounds;
}

const len = (a: [number, number], b: [number, number]) => Math.hypot(b[0] - a[0], b[1] - a[1]);

function boundsOf(quads: readonly Quad[]): Bounds {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const q of quads) {
    const br: [number, number] = [q.tr[0] + q.bl[0] - q.tl[0], q.tr[1] + q.bl[1] - q.tl[1]];
    for (const p of [q.tl, q.tr, q.bl, br]) {
      xs.push(p[0]);
      ys.push(p[1]);
    }
  }
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

const heightOf = (q: Quad) => len(q.tl, q.bl);
const centreY = (q: Quad) => (q.tr[1] + q.bl[1]) / 2;

/** Groups regions into lines: left to right, same height band, gaps under 1.5 line heights. */
function lines(regions: readonly RegionRead[]): Line[] {
  const sorted = regions.slice().sort((a, b) => boundsOf([a.quad]).x - boundsOf([b.quad]).x);
  const out: Line[] = [];
  for (const r of sorted) {
    const h = heightOf(r.quad);
    const b = boundsOf([r.quad]);
    const line = out.find((l) => {
      const gap = b.x - (l.bounds.x + l.bounds.width);
      return Math.abs(centreY(r.quad) - l.cy) < 0.5 * Math.min(h, l.h) && h / l.h > 0.6 && h / l.h < 1.6 && gap < 1.5 * Math.max(h, l.h);
    });
    if (!line) {
      out.push({ regions: [r], h, cy: centreY(r.quad), bounds: b });
      continue;
    }
    line.regions.push(r);
    line.h = line.regions.reduce((s, x) => s + heightOf(x.quad), 0) / line.regions.length;
    line.cy = line.regions.reduce((s, x) => s + centreY(x.quad), 0) / line.regions.length;
    line.bounds = boundsOf(line.regions.map((x) => x.quad));
  }
  return out;
}

const lineText = (l: Line) => l.regions.map((r) => r.text.trim()).join(' ');
const lineConf = (l: Line) => l.regions.flatMap((r) => r.char_conf);

/** One-line candidates for every line, two-line candidates for every stacked pair. */
export function plateCandidates(regions: readonly RegionRead[]): PlateCandidate[] {
  const ls = lines(regions).filter((l) => lineText(l).length > 0);
  const out: PlateCandidate[] = ls.map((l) => ({ layout: 'one_line', lines: [lineText(l)], char_conf: lineConf(l), box: l.bounds }));
  for (const top of ls) {
    for (const bottom of ls) {
      if (top === bottom || bottom.cy <= top.cy) continue;
      const a = top.bounds;
      const b = bottom.bounds;
      const overlap = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const gap = b.y - (a.y + a.height);
      const h = Math.max(top.h, bottom.h);
      if (overlap < 0.5 * Math.min(a.width, b.width) || gap > 1.2 * h || gap < -0.5 * h || top.h / bottom.h < 0.5 || top.h / bottom.h > 2) continue;
      const x = Math.min(a.x, b.x);
      out.push({
        layout: 'two_line',
        lines: [lineText(top), lineText(bottom)],
        char_conf: [...lineConf(top), ...lineConf(bottom)],
        box: { x, y: a.y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: b.y + b.height - a.y },
      });
    }
  }
  return out;
}
