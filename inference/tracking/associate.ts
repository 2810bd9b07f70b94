import { hungarian } from './hungarian.js';
import type { Box } from './types.js';

export function iou(a: Box, b: Box): number {
  return bufferedIou(a, b, 0, 0);
}

/**
 * IoU of the two boxes, each grown by `mx` pixels left and right and `my` up and down (Yang et al., "Hard to
 * track objects with irregular motions and similar appearances? Make it easier by buffering the matching
 * space", 2023). The tracker sets the margin from the predicted position's uncertainty: an object seen once
 * (velocity unknown) or unseen for a while matches over a larger distance, a steady track almost by plain IoU.
 */
export function bufferedIou(a: Box, b: Box, mx: number, my: number): number {
  const ix = Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + 2 * mx;
  if (ix <= 0) return 0;
  const iy = Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + 2 * my;
  if (iy <= 0) return 0;
  const inter = ix * iy;
  const areaA = (a[2] - a[0] + 2 * mx) * (a[3] - a[1] + 2 * my);
  const areaB = (b[2] - b[0] + 2 * mx) * (b[3] - b[1] + 2 * my);
  return inter / (areaA + areaB - inter);
}

export interface Gated {
  box: Box;
  /** Matching margins, pixels. */
  mx: number;
  my: number;
}

export interface Association {
  /** [row, col] pairs, row indexing `tracks`, col indexing `dets`. */
  pairs: Array<[number, number]>;
  unmatchedRows: number[];
  unmatchedCols: number[];
}

const FORBIDDEN = 1e6;

/**
 * Optimal one-to-one matching of tracks to detections on buffered IoU, pairs below `minIou` never matched.
 * Candidate pairs come from a sweep over the detections sorted by left edge, not from all n × m pairs.
 * `extra(row, col)`: a cost added to the pair's 1 − IoU, or undefined when the pair must not match (a track
 * of another class group).
 */
export function associate(tracks: readonly Gated[], dets: readonly Box[], minIou: number, extra?: (r: number, c: number) => number | undefined): Association {
  const edges: Edges = { r: [], c: [], w: [] };
  const m = dets.length;
  if (tracks.length > 0 && m > 0) {
    const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => dets[a]![0] - dets[b]![0]);
    const x1 = new Float64Array(m);
    let maxW = 0;
    for (let k = 0; k < m; k++) {
      const d = dets[order[k]!]!;
      x1[k] = d[0];
      if (d[2] - d[0] > maxW) maxW = d[2] - d[0];
    }
    for (let r = 0; r < tracks.length; r++) {
      const t = tracks[r]!;
      const tb = t.box;
      const from = tb[0] - 2 * t.mx - maxW;
      const to = tb[2] + 2 * t.mx;
      // First detection whose left edge is ≥ from.
      let lo = 0;
      let hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x1[mid]! < from) lo = mid + 1;
        else hi = mid;
      }
      for (let k = lo; k < m && x1[k]! <= to; k++) {
        const c = order[k]!;
        const d = dets[c]!;
        if (d[2] + t.mx < tb[0] - t.mx || d[1] - t.my > tb[3] + t.my || d[3] + t.my < tb[1] - t.my) continue;
        const w = bufferedIou(tb, d, t.mx, t.my);
        if (w < minIou || w <= 0) continue;
        const add = extra ? extra(r, c) : 0;
        if (add === undefined) continue;
        edges.r.push(r);
        edges.c.push(c);
        edges.w.push(1 - w + add);
      }
    }
  }
  return matchEdges(tracks.length, m, edges);
}

/** Allowed pairs (row, col) with their cost. */
export interface Edges {
  r: number[];
  c: number[];
  w: number[];
}

/** Minimum-cost matching over all pairs; `cost` returns undefined for pairs that must not match. */
export function match(rows: number, cols: number, cost: (r: number, c: number) => number | undefined): Association {
  const edges: Edges = { r: [], c: [], w: [] };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const w = cost(r, c);
      if (w === undefined) continue;
      edges.r.push(r);
      edges.c.push(c);
      edges.w.push(w);
    }
  }
  return matchEdges(rows, cols, edges);
}

/**
 * Minimum-cost one-to-one matching of `rows` to `cols` over the allowed pairs. The pairs are split into
 * connected components first: in traffic most objects have a single candidate, so the Hungarian solver only
 * runs on the few clusters of nearby objects. Within a cluster the number of matches is maximised first,
 * then the cost minimised.
 */
export function matchEdges(rows: number, cols: number, edges: Edges): Association {
  const n = rows;
  const m = cols;
  const pairs: Array<[number, number]> = [];
  if (n === 0 || m === 0) {
    return { pairs, unmatchedRows: range(n), unmatchedCols: range(m) };
  }
  const { r: edgeR, c: edgeC, w: edgeW } = edges;
  const parent = new Int32Array(n + m);
  for (let i = 0; i < n + m; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (let e = 0; e < edgeR.length; e++) {
    const a = find(edgeR[e]!);
    const b = find(n + edgeC[e]!);
    if (a !== b) parent[a] = b;
  }
  const rowDone = new Uint8Array(n);
  const colDone = new Uint8Array(m);
  // Group edges per component.
  const comp = new Map<number, number[]>();
  for (let e = 0; e < edgeR.length; e++) {
    const root = find(edgeR[e]!);
    let list = comp.get(root);
    if (!list) comp.set(root, (list = []));
    list.push(e);
  }
  for (const list of comp.values()) {
    if (list.length === 1) {
      const e = list[0]!;
      pairs.push([edgeR[e]!, edgeC[e]!]);
      rowDone[edgeR[e]!] = 1;
      colDone[edgeC[e]!] = 1;
      continue;
    }
    const rs: number[] = [];
    const cs: number[] = [];
    const rowIdx = new Map<number, number>();
    const colIdx = new Map<number, number>();
    for (const e of list) {
      if (!rowIdx.has(edgeR[e]!)) {
        rowIdx.set(edgeR[e]!, rs.length);
        rs.push(edgeR[e]!);
      }
      if (!colIdx.has(edgeC[e]!)) {
        colIdx.set(edgeC[e]!, cs.length);
        cs.push(edgeC[e]!);
      }
    }
    const mat = new Float64Array(rs.length * cs.length).fill(FORBIDDEN);
    for (const e of list) mat[rowIdx.get(edgeR[e]!)! * cs.length + colIdx.get(edgeC[e]!)!] = edgeW[e]!;
    const assign = hungarian(mat, rs.length, cs.length);
    for (let i = 0; i < rs.length; i++) {
      const j = assign[i]!;
      if (j < 0 || mat[i * cs.length + j]! >= FORBIDDEN) continue;
      pairs.push([rs[i]!, cs[j]!]);
      rowDone[rs[i]!] = 1;
      colDone[cs[j]!] = 1;
    }
  }
  const unmatchedRows: number[] = [];
  const unmatchedCols: number[] = [];
  for (let r = 0; r < n; r++) if (!rowDone[r]) unmatchedRows.push(r);
  for (let c = 0; c < m; c++) if (!colDone[c]) unmatchedCols.push(c);
  return { pairs, unmatchedRows, unmatchedCols };
}

function range(n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
