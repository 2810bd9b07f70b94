// Geometry of the line and zone editor: page positions to camera pixels and back, the "in" side of a line,
// and the YAML snippets. Pure functions (no DOM), shared with the overlay.

/**
 * Where the picture is inside an element of `rect` (CSS pixels) showing a `w` x `h` bitmap: the whole box
 * (object-fit fill, the page's style: the canvas keeps the bitmap's aspect ratio), or the centred fitted part
 * with bands around it (object-fit contain, a letterbox). Returns `{x, y, width, height}`.
 */
export function contentBox(rect, w, h, fit = 'fill') {
  if (fit !== 'contain' || !(w > 0 && h > 0) || !(rect.width > 0 && rect.height > 0)) return { x: rect.x, y: rect.y, width: rect.width, height: rect.height };
  const scale = Math.min(rect.width / w, rect.height / h);
  const width = w * scale;
  const height = h * scale;
  return { x: rect.x + (rect.width - width) / 2, y: rect.y + (rect.height - height) / 2, width, height };
}

/**
 * A page position (clientX/Y) as camera pixels, whole and inside the frame; null in a letterbox band. The
 * preview shows the camera's whole frame (the JPEG preview scales it, the MPEG-1 preview has the detector's
 * letterbox bands cropped off), stretched over `box` exactly as the overlay draws lines and zones.
 */
export function toCamera(clientX, clientY, box, frame) {
  const u = (clientX - box.x) / box.width;
  const v = (clientY - box.y) / box.height;
  if (!(u >= -0.01 && u <= 1.01 && v >= -0.01 && v <= 1.01)) return null;
  const clamp = (n, max) => Math.min(max, Math.max(0, Math.round(n)));
  return [clamp(u * frame.width, frame.width), clamp(v * frame.height, frame.height)];
}

/** Camera pixels to a canvas of `cw` x `ch` pixels covering `box`, itself within `rect` (the canvas's element). */
export function toCanvas(p, frame, box, rect, cw, ch) {
  const sx = cw / rect.width;
  const sy = ch / rect.height;
  return [(box.x - rect.x + (p[0] / frame.width) * box.width) * sx, (box.y - rect.y + (p[1] / frame.height) * box.height) * sy];
}

/**
 * The unit normal of a→b towards the "in" side. config/schema/cameras.ts: crossing from the left of a→b to its
 * right counts as "in"; in image coordinates (y down) the right-hand normal is (-dy, dx). [0, 0] when a = b.
 */
export function inNormal(a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = Math.hypot(dx, dy);
  return len === 0 ? [0, 0] : [-dy / len, dx / len];
}

/** The first `prefix-N` not in `taken` (line and zone ids share one namespace per camera). */
export function freeId(prefix, taken) {
  const used = new Set(taken);
  for (let n = 1; ; n++) if (!used.has(`${prefix}-${n}`)) return `${prefix}-${n}`;
}

/** An id as YAML: plain when YAML reads it back as that string, else quoted (`"12"`, `"null"`, anything odd). */
const yamlId = (id) => (/^[a-z][a-z0-9_-]*$/.test(id) && !/^(true|false|null)$/.test(id) ? id : JSON.stringify(id));
const pt = (p) => `[${p[0]}, ${p[1]}]`;

/** The YAML of a line, as an entry of `cameras[].lines`. */
export function lineSnippet(cameraId, id, a, b) {
  return [
    `# cameras → id: ${cameraId} → lines:`,
    `# "in": crossing from the left of a→b to its right (the arrow on the picture)`,
    `- id: ${yamlId(id)}`,
    `  a: ${pt(a)}`,
    `  b: ${pt(b)}`,
    '',
  ].join('\n');
}

/** The YAML of a zone, as an entry of `cameras[].zones`. */
export function zoneSnippet(cameraId, id, polygon) {
  return [`# cameras → id: ${cameraId} → zones:`, `- id: ${yamlId(id)}`, `  polygon: [${polygon.map(pt).join(', ')}]`, ''].join('\n');
}
