// What the page draws over a camera's preview: zones, counting lines (arrow on the "in" side) and detections,
// in camera pixels scaled to the canvas; their labels kept inside the canvas and clear of each other.

import { inNormal } from './edit-geometry.js';

export const COLORS = { line: '#ffd400', zone: '#00c8ff', box: '#39ff14', shadow: 'rgba(0,0,0,0.65)' };

/**
 * Positions for labels (`{w, h, x, y}` wanted, in canvas pixels), in order: each is clamped inside the
 * `width` x `height` canvas, then nudged down or up (nearest first), else left, until it overlaps none placed
 * before it. A canvas too crowded for that keeps the clamped position. Returns `{x, y, w, h}` per label.
 */
export function placeLabels(labels, width, height, gap) {
  const placed = [];
  const clear = (r) => placed.every((p) => r.x + r.w <= p.x || p.x + p.w <= r.x || r.y + r.h <= p.y || p.y + p.h <= r.y);
  for (const l of labels) {
    const w = Math.min(l.w, width);
    const h = Math.min(l.h, height);
    const at = (x, y) => ({ x: Math.min(Math.max(0, x), width - w), y: Math.min(Math.max(0, y), height - h), w, h });
    const start = at(l.x, l.y);
    let spot = clear(start) ? start : null;
    for (let k = 1; !spot && k * (h + gap) < height; k++) {
      for (const dy of [k * (h + gap), -k * (h + gap)]) {
        const r = at(start.x, start.y + dy);
        if (r.y === start.y + dy && clear(r)) {
          spot = r;
          break;
        }
      }
    }
    for (let k = 1; !spot && k * gap * 4 < width; k++) {
      const r = at(start.x - k * gap * 4, start.y);
      if (clear(r)) spot = r;
    }
    placed.push(spot ?? start);
  }
  return placed;
}

/** A stroke from (x1, y1) to (x2, y2) with a head at its end; `px` scales CSS pixels to canvas pixels. */
export function arrow(ctx, x1, y1, x2, y2, color, px) {
  const a = Math.atan2(y2 - y1, x2 - x1);
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = px(2);
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x2, y2);
  ctx.lineTo(x2 - px(8) * Math.cos(a - 0.45), y2 - px(8) * Math.sin(a - 0.45));
  ctx.lineTo(x2 - px(8) * Math.cos(a + 0.45), y2 - px(8) * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

/**
 * Draws `overlay` ({frame, lines, zones}) and `detections` on `canvas`, sized to `preview` as displayed.
 * The label boxes drawn are left in `canvas.dataset.labels` (JSON `[{text, x, y, w, h}]`, canvas pixels).
 */
export function drawOverlay(canvas, preview, overlay, detections) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(preview.clientWidth * dpr));
  const h = Math.max(1, Math.round(preview.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, w, h);
  const o = overlay;
  if (!o) {
    canvas.dataset.labels = '[]';
    return;
  }
  const sx = w / o.frame.width;
  const sy = h / o.frame.height;
  const P = (p) => [p[0] * sx, p[1] * sy];
  const px = (n) => n * dpr;
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  ctx.font = `600 ${px(12)}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  const labelH = px(17);
  const labels = [];
  const label = (text, x, y, color) => labels.push({ text, x, y, color, w: ctx.measureText(text).width + px(8), h: labelH });

  for (const z of o.zones) {
    ctx.beginPath();
    z.polygon.forEach((p, i) => (i === 0 ? ctx.moveTo(...P(p)) : ctx.lineTo(...P(p))));
    ctx.closePath();
    ctx.fillStyle = 'rgba(0, 200, 255, 0.12)';
    ctx.fill();
    ctx.setLineDash([px(6), px(4)]);
    ctx.lineWidth = px(2);
    ctx.strokeStyle = COLORS.zone;
    ctx.stroke();
    ctx.setLineDash([]);
    const [x, y] = P(z.polygon[0]);
    label(`zone ${z.id}`, x + px(4), y + px(4), COLORS.zone);
  }

  for (const l of o.lines) {
    const [ax, ay] = P(l.a);
    const [bx, by] = P(l.b);
    for (const [width, color] of [[px(7), COLORS.shadow], [px(3), COLORS.line]]) {
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.lineWidth = width;
      ctx.strokeStyle = color;
      ctx.stroke();
    }
    const len = Math.hypot(bx - ax, by - ay) || 1;
    const [nx, ny] = inNormal([ax, ay], [bx, by]); // towards "in": the right of a→b
    const mx = (ax + bx) / 2 + ((bx - ax) / len) * px(30);
    const my = (ay + by) / 2 + ((by - ay) / len) * px(30);
    arrow(ctx, mx, my, mx + nx * px(22), my + ny * px(22), COLORS.line, px);
    label(`line ${l.id}`, ax + px(6), ay + px(8), COLORS.line);
  }

  for (const d of detections) {
    const [x1, y1] = P([d.box[0], d.box[1]]);
    const [x2, y2] = P([d.box[2], d.box[3]]);
    ctx.lineWidth = px(2);
    ctx.strokeStyle = COLORS.box;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const id = d.track_id === undefined || d.track_id === null ? '' : ` #${d.track_id}`;
    label(`${d.class_name}${id} ${Math.round(d.score * 100)}%`, x1, y1 - labelH, COLORS.box);
  }

  const spots = placeLabels(labels, w, h, px(2));
  labels.forEach((l, i) => {
    const r = spots[i];
    ctx.fillStyle = 'rgba(0, 0, 0, 0.7)';
    ctx.fillRect(r.x, r.y, r.w, r.h);
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.x, r.y, r.w, r.h); // a label wider than the canvas is cut, never drawn past its box
    ctx.clip();
    ctx.fillStyle = l.color;
    ctx.fillText(l.text, r.x + px(4), r.y + px(2));
    ctx.restore();
  });
  canvas.dataset.labels = JSON.stringify(labels.map((l, i) => ({ text: l.text, ...spots[i] })));
}

/** The legend of a camera: only what it has configured (a counting line, a zone), and detections. */
export function legendItems(overlay) {
  const items = [];
  if (overlay && overlay.lines.length > 0) items.push(['l-line', overlay.lines.length > 1 ? 'counting lines (arrow: "in")' : 'counting line (arrow: "in")']);
  if (overlay && overlay.zones.length > 0) items.push(['l-zone', overlay.zones.length > 1 ? 'zones' : 'zone']);
  items.push(['l-box', 'detection']);
  return items;
}
