// `analyze --overlay`: the clip with what the analysis saw drawn over it, for placing lines and zones. Lines
// (with an arrow to the side a crossing "in" goes to), zones, the confirmed tracks with their ids and boxes,
// and the running counts. Drawn at the camera frame size (cameras[].frame: the pixels lines, zones and boxes
// are given in), whatever the detector's input size: an SVG composited with sharp on each RGB frame, the video
// encoded by piping the raw frames into ffmpeg (libx264).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import sharp from 'sharp';
import type { CameraConfig } from '../config/schema/index.js';
import { isoTime } from '../contract/event.js';
import { AgentError } from '../core/errors.js';
import type { AnalysedFrame } from '../agent/analyze/clip.js';
import { readClip } from '../ingest/clip.js';
import type { RunningCounts } from './analyze-report.js';

/** An analysed frame with the counts as they stood after it. */
export interface OverlayFrame extends AnalysedFrame {
  counts: RunningCounts;
}

type OverlayCamera = Pick<CameraConfig, 'frame' | 'lines' | 'zones'>;

/** Line colours in config order (the tests look for them along the drawn line). */
export const LINE_COLORS = ['#ffea00', '#ff00ff', '#00b0ff', '#ff6d00'] as const;
const ZONE_COLORS = ['#00e676', '#2979ff', '#ff1744', '#d500f9'];
/** Track boxes by class; none of them a line colour. */
const TRACK_COLORS = ['#00e5ff', '#76ff03', '#ff3d00', '#ea80fc', '#1de9b6', '#f50057', '#ffffff', '#ffab40'];

export const lineColor = (index: number): string => LINE_COLORS[index % LINE_COLORS.length]!;
const zoneColor = (index: number): string => ZONE_COLORS[index % ZONE_COLORS.length]!;
function trackColor(cls: string): string {
  let h = 0;
  for (const c of cls) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return TRACK_COLORS[h % TRACK_COLORS.length]!;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const n1 = (v: number): string => String(Math.round(v * 10) / 10);

/** Text on a dark box, its top-left corner at (x, y), kept inside the frame. */
function label(text: string, x: number, y: number, font: number, color: string, frame: { width: number; height: number }): string {
  const w = Math.round(text.length * font * 0.6) + 8;
  const h = font + 6;
  const lx = Math.min(Math.max(0, x), Math.max(0, frame.width - w));
  const ly = Math.min(Math.max(0, y), Math.max(0, frame.height - h));
  return `<rect x="${lx}" y="${ly}" width="${w}" height="${h}" fill="#000" fill-opacity="0.6"/><text x="${lx + 4}" y="${ly + font + 1}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="${color}">${esc(text)}</text>`;
}

/**
 * The SVG drawn over one frame of `camera`: zones (with objects inside), the tracks after `f` (a lost one
 * dashed), lines on top with the "in" arrow and their counts, and the clip time in the corner.
 */
export function overlaySvg(camera: OverlayCamera, f: OverlayFrame | undefined, at: { mono_ms: number; captured_at_ms: number }): string {
  const { width, height } = camera.frame;
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(11, Math.round(Math.min(width, height) / 42));
  const parts: string[] = [];
  camera.zones.forEach((z, i) => {
    const c = zoneColor(i);
    parts.push(`<polygon points="${z.polygon.map((p) => `${p[0]},${p[1]}`).join(' ')}" fill="${c}" fill-opacity="0.12" stroke="${c}" stroke-width="${stroke}" stroke-dasharray="${stroke * 4},${stroke * 2}"/>`);
    const top = z.polygon.reduce((a, p) => (p[1] < a[1] ? p : a), z.polygon[0]!);
    parts.push(label(`${z.id}: ${f?.counts.zones[z.id] ?? 0} inside`, top[0] + stroke, top[1] + stroke, font, c, camera.frame));
  });
  for (const t of f?.tracks ?? []) {
    const c = trackColor(t.class);
    const [x1, y1, x2, y2] = t.box;
    const dash = t.seen ? '' : ` stroke-dasharray="${stroke * 3},${stroke * 2}"`;
    parts.push(`<rect x="${n1(x1)}" y="${n1(y1)}" width="${n1(Math.max(0, x2 - x1))}" height="${n1(Math.max(0, y2 - y1))}" fill="none" stroke="${c}" stroke-width="${stroke}"${dash}/>`);
    parts.push(label(`#${t.track_id} ${t.class}`, Math.round(x1), Math.round(y1) - font - 6, Math.max(10, font - 2), c, camera.frame));
  }
  camera.lines.forEach((l, i) => {
    const c = lineColor(i);
    const [ax, ay] = l.a;
    const [bx, by] = l.b;
    const len = Math.hypot(bx - ax, by - ay) || 1;
    // "in" is towards the right of a→b as seen in the image (y down): the normal (-uy, ux).
    const nx = -(by - ay) / len;
    const ny = (bx - ax) / len;
    const mx = (ax + bx) / 2;
    const my = (ay + by) / 2;
    const arrow = Math.max(24, font * 2);
    const tx = mx + nx * arrow;
    const ty = my + ny * arrow;
    const head = stroke * 3;
    parts.push(`<line x1="${ax}" y1="${ay}" x2="${bx}" y2="${by}" stroke="${c}" stroke-width="${stroke + 1}"/>`);
    parts.push(`<line x1="${n1(mx)}" y1="${n1(my)}" x2="${n1(tx)}" y2="${n1(ty)}" stroke="${c}" stroke-width="${stroke}"/>`);
    const hx = (dx: number, dy: number) => `${n1(tx - nx * head + dx * head)},${n1(ty - ny * head + dy * head)}`;
    parts.push(`<polygon points="${n1(tx + nx * head * 0.5)},${n1(ty + ny * head * 0.5)} ${hx(-ny, nx)} ${hx(ny, -nx)}" fill="${c}"/>`);
    parts.push(`<text x="${n1(tx + nx * head * 1.5 - font * 0.4)}" y="${n1(ty + ny * head * 1.5 + font * 0.4)}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="${c}">in</text>`);
    const counts = f?.counts.lines[l.id] ?? { in: 0, out: 0 };
    const text = `${l.id}: in ${counts.in} · out ${counts.out}`;
    // On the "out" side of the line, clear of it, so the line itself stays visible.
    const w = text.length * font * 0.6 + 8;
    const off = font + 6 + stroke * 2;
    parts.push(label(text, Math.round(mx - nx * off - w / 2), Math.round(my - ny * off - (font + 6) / 2), font, c, camera.frame));
  });
  parts.push(label(`${(at.mono_ms / 1000).toFixed(1)} s · ${isoTime(at.captured_at_ms)}`, 4, 4, font, '#ffffff', camera.frame));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** `frame` (RGB, camera frame size) with the SVG drawn over it, as RGB bytes. */
async function drawn(data: Uint8Array, camera: OverlayCamera, svg: string): Promise<Buffer> {
  const { width, height } = camera.frame;
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer();
}

/** The recorded frame nearest to `mono_ms`, if any. */
export function nearestFrame(frames: readonly OverlayFrame[], mono_ms: number): OverlayFrame | undefined {
  let best: OverlayFrame | undefined;
  for (const f of frames) if (!best || Math.abs(f.mono_ms - mono_ms) < Math.abs(best.mono_ms - mono_ms)) best = f;
  return best;
}

/** One frame of the clip at clip time `t_s`, scaled to `size` (exact seek: the frame shown at that time). */
async function clipFrameAt(clip: string, t_s: number, size: { width: number; height: number }, ffmpegPath = 'ffmpeg'): Promise<Uint8Array> {
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-ss', t_s.toFixed(3), '-i', clip, '-map', '0:v:0', '-frames:v', '1'];
  args.push('-vf', `scale=${size.width}:${size.height}:flags=bilinear,format=rgb24`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const [code] = (await Promise.race([once(child, 'close'), once(child, 'error').then(([e]) => Promise.reject(e as Error))])) as [number | null];
  const data = Buffer.concat(chunks);
  if (code !== 0 || data.length < size.width * size.height * 3) {
    throw new AgentError('OVERLAY_FAILED', `cannot read the frame at ${t_s.toFixed(3)} s of ${clip}: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}`);
  }
  return data.subarray(0, size.width * size.height * 3);
}

export interface PngOverlay {
  clip: string;
  camera: OverlayCamera;
  frames: readonly OverlayFrame[];
  /** Clip time wanted, seconds: the analysed frame nearest to it is drawn. */
  at_s: number;
  start_ms: number;
  out: string;
}

/** Writes the analysed frame nearest to `at_s` with the overlay as a PNG; resolves its clip time in ms. */
export async function writeOverlayPng(o: PngOverlay): Promise<number> {
  const f = nearestFrame(o.frames, o.at_s * 1000);
  const mono_ms = f?.mono_ms ?? o.at_s * 1000;
  const data = await clipFrameAt(o.clip, mono_ms / 1000, o.camera.frame);
  const rgb = await drawn(data, o.camera, overlaySvg(o.camera, f, { mono_ms, captured_at_ms: f?.captured_at_ms ?? o.start_ms + mono_ms }));
  const { width, height } = o.camera.frame;
  await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(o.out);
  return mono_ms;
}

export interface Mp4Overlay {
  clip: string;
  camera: OverlayCamera;
  frames: readonly OverlayFrame[];
  /** The analysis' frame selection: frames per second taken from the clip; undefined: every frame. */
  fps: number | undefined;
  /** Frame rate of the video written (the analysed rate). */
  frame_rate: number;
  start_ms: number;
  out: string;
  /** Each frame written (progress). */
  onFrame?: (frames: number, mono_ms: number) => void;
  ffmpegPath?: string;
}

/**
 * Writes the analysed frames of the clip (the same selection as the analysis) with the overlay as an H.264 mp4
 * at `frame_rate`, so it lasts as long as the analysed part of the clip. Resolves the frames written.
 */
export async function writeOverlayMp4(o: Mp4Overlay): Promise<number> {
  const { width, height } = o.camera.frame;
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(o.frame_rate), '-i', 'pipe:0'];
  // yuv420p needs even sides.
  args.push('-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', o.out);
  const enc = spawn(o.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  enc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const closed = new Promise<number | null>((resolve, reject) => {
    enc.on('error', (e) => reject(new AgentError('FFMPEG_MISSING', `cannot run ffmpeg: ${e.message}`)));
    enc.on('close', resolve);
  });
  closed.catch(() => undefined);
  enc.stdin.on('error', () => undefined); // an encoder that died is reported from its exit code below
  const failed = (why: string) => new AgentError('OVERLAY_FAILED', `cannot write ${o.out}: ${stderr.trim().split('\n').pop() ?? why}`);
  const frames = [...o.frames].sort((a, b) => a.mono_ms - b.mono_ms);
  let k = -1;
  let written = 0;
  try {
    for await (const frame of readClip(o.clip, { width, height, resize: 'stretch' }, { fps: o.fps, source: o.camera.frame, start_ms: o.start_ms })) {
      // The latest analysed frame at or before this one (a frame the detector skipped keeps the tracks before it).
      while (k + 1 < frames.length && frames[k + 1]!.mono_ms <= frame.mono_ms + 0.5) k++;
      const svg = overlaySvg(o.camera, frames[k], { mono_ms: frame.mono_ms, captured_at_ms: frame.captured_at_ms });
      const rgb = await drawn(frame.data, o.camera, svg);
      if (enc.exitCode !== null || enc.stdin.destroyed) throw failed('the encoder exited');
      if (!enc.stdin.write(rgb)) await Promise.race([once(enc.stdin, 'drain'), closed]);
      written += 1;
      o.onFrame?.(written, frame.mono_ms);
    }
  } catch (err) {
    enc.kill('SIGKILL');
    throw err;
  }
  enc.stdin.end();
  const code = await closed;
  if (code !== 0) throw failed(`ffmpeg exit ${code}`);
  return written;
}
