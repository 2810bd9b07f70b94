/**
 * Violation scenes rendered to H.264 clips with ffmpeg (lavfi): a road, a stop line and a speed trap, and
 * vehicles (testkit/plates.ts renders their rears with real plates) driving across at known speeds. Every frame
 * carries its frame number as a 12-bit barcode strip at the top left, read back without OCR (`readBarcode`),
 * so a test can tell exactly which frame a still or a detector frame is.
 *
 * The real detector does not find drawn boxes reliably, so tests drive the analytics with the known boxes
 * (`sceneDetections`) while the camera, its recording ring and the stills are the real ffmpeg path on the
 * rendered clip. Cached under tests/fixtures/cache/ by the scene's content.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { RgbFrame } from '../ingest/frame.js';
import type { Box, Detection } from '../inference/tracking/types.js';
import { CACHE_DIR } from './clips.js';
import { PLATE_FONTS, renderPlate, type PlateSpec } from './plates.js';

const execFileP = promisify(execFile);

export const FRAME = { width: 1280, height: 720 } as const;
export const FPS = 25;
/** Barcode cells: bit b is a 40x48 box at x = 16 + 48 b, y = 8; white for 1. */
const BITS = 12;
const CELL = { x0: 16, step: 48, y: 8, w: 40, h: 48 };
/** Camera pixels per metre of road (the scene's calibration). */
export const PX_PER_M = 40;

export interface SceneVehicle {
  plate: string;
  speed_kmh: number;
  /** When its front enters the frame from the left, s. */
  enter_s: number;
}

export interface ViolationScene {
  vehicles: SceneVehicle[];
  duration_s: number;
  /** Bottom edge of the vehicles (the lane), pixels. */
  lane_y: number;
  /** Speed trap line (x) and stop line (x). */
  trap_x: number;
  stop_x: number;
  /** The signal turns red at this clip time, s. */
  red_from_s: number;
}

/**
 * Four cars left to right: 30 and 45 km/h under a 50 km/h limit, 70 and 90 over it; the signal turns red at
 * 6 s, so the first crosses the stop line on green and the three others on red.
 */
export const DEFAULT_SCENE: ViolationScene = {
  vehicles: [
    { plate: '51F-123.45', speed_kmh: 30, enter_s: 0.2 },
    { plate: '29A-456.78', speed_kmh: 45, enter_s: 5.4 },
    { plate: '59C-246.80', speed_kmh: 70, enter_s: 8.9 },
    { plate: '43B-135.79', speed_kmh: 90, enter_s: 11.2 },
  ],
  duration_s: 16,
  lane_y: 690,
  trap_x: 640,
  stop_x: 900,
  red_from_s: 6,
};

interface RenderedVehicle extends SceneVehicle {
  png: string;
  width: number;
  height: number;
  /** Pixels per second. */
  v_px: number;
}

export interface RenderedScene {
  clip: string;
  scene: ViolationScene;
  vehicles: RenderedVehicle[];
}

const plateSpec = (text: string, seed: number): PlateSpec => ({
  text,
  layout: 'one_line',
  font: PLATE_FONTS[0]!,
  plate_w_px: 130,
  blur_sigma: 0,
  rotate_deg: 0,
  noise: 0,
  jpeg_quality: 0,
  seed,
});

/** The clip (and the vehicle images), rendered once per scene and cached. */
export async function renderViolationScene(scene: ViolationScene = DEFAULT_SCENE): Promise<RenderedScene> {
  const key = createHash('sha256').update(JSON.stringify({ scene, v: 3 })).digest('hex').slice(0, 12);
  const dir = path.join(CACHE_DIR, `violation-${key}`);
  fs.mkdirSync(dir, { recursive: true });
  const vehicles: RenderedVehicle[] = [];
  for (const [i, v] of scene.vehicles.entries()) {
    const png = path.join(dir, `car-${i}.png`);
    const r = await renderPlate(plateSpec(v.plate, 100 + i));
    if (!fs.existsSync(png)) {
      const tmp = `${png}.${process.pid}.tmp.png`;
      await sharp(r.crop.data, { raw: { width: r.crop.width, height: r.crop.height, channels: 3 } }).png().toFile(tmp);
      fs.renameSync(tmp, png);
    }
    vehicles.push({ ...v, png, width: r.crop.width, height: r.crop.height, v_px: (v.speed_kmh / 3.6) * PX_PER_M });
  }
  const clip = path.join(dir, 'scene.mp4');
  if (!fs.existsSync(clip)) {
    const tmp = `${clip}.${process.pid}.${Date.now()}.tmp.mp4`;
    try {
      await execFileP('ffmpeg', renderArgs(scene, vehicles, tmp), { maxBuffer: 16 << 20 });
      fs.renameSync(tmp, clip);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  return { clip, scene, vehicles };
}

function renderArgs(scene: ViolationScene, vehicles: RenderedVehicle[], out: string): string[] {
  const { width: W, height: H } = FRAME;
  const road = [
    `color=c=0x3a3d40:s=${W}x${H}:r=${FPS}`,
    `drawbox=x=0:y=${scene.lane_y - 360}:w=${W}:h=360:color=0x4a4d50:t=fill`,
    ...Array.from({ length: 10 }, (_, i) => `drawbox=x=${i * 140}:y=${scene.lane_y + 12}:w=80:h=6:color=white:t=fill`),
    `drawbox=x=${scene.stop_x - 4}:y=${scene.lane_y - 380}:w=8:h=${H - scene.lane_y + 380}:color=white:t=fill`,
    `drawbox=x=${scene.trap_x - 1}:y=${scene.lane_y - 380}:w=3:h=${H - scene.lane_y + 380}:color=yellow:t=fill`,
  ].join(',');
  const parts = [`${road}[s0]`];
  vehicles.forEach((v, i) => {
    const t1 = v.enter_s + (W + v.width) / v.v_px;
    const x = `-${v.width}+${v.v_px.toFixed(4)}*(t-${v.enter_s})`;
    parts.push(`[s${i}][${i}:v]overlay=x='${x}':y=${scene.lane_y - v.height}:enable='between(t,${v.enter_s},${t1.toFixed(3)})':eof_action=pass[s${i + 1}]`);
  });
  const bars = [`drawbox=x=0:y=0:w=${CELL.x0 + BITS * CELL.step}:h=${CELL.y * 2 + CELL.h}:color=black:t=fill`];
  for (let b = 0; b < BITS; b++) bars.push(`drawbox=x=${CELL.x0 + b * CELL.step}:y=${CELL.y}:w=${CELL.w}:h=${CELL.h}:color=white:t=fill:enable='mod(floor(n/${2 ** b}),2)'`);
  parts.push(`[s${vehicles.length}]${bars.join(',')},format=yuv420p[out]`);
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    ...vehicles.flatMap((v) => ['-loop', '1', '-framerate', String(FPS), '-i', v.png]),
    '-filter_complex', parts.join(';'), '-map', '[out]',
    '-t', String(scene.duration_s), '-r', String(FPS),
    // GOP of one second, no B-frames (like IP cameras): segments and clip cuts start at whole seconds.
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-g', String(FPS), '-bf', '0', '-pix_fmt', 'yuv420p', out,
  ];
}

/** The frame number in the barcode of a frame of the scene's clip, at any scale of the full frame. */
export function readBarcode(frame: RgbFrame): number {
  const sx = frame.width / FRAME.width;
  const sy = frame.height / FRAME.height;
  let n = 0;
  for (let b = 0; b < BITS; b++) {
    const cx = Math.round((CELL.x0 + b * CELL.step + CELL.w / 2) * sx);
    const cy = Math.round((CELL.y + CELL.h / 2) * sy);
    let sum = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) sum += frame.data[((cy + dy) * frame.width + cx + dx) * 3 + 1]!;
    if (sum / 9 > 128) n |= 1 << b;
  }
  return n;
}

/** A JPEG's barcode. */
export async function readBarcodeJpeg(file: string): Promise<number> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return readBarcode({ data: new Uint8Array(data), width: info.width, height: info.height });
}

/** The vehicle's box at clip time t (camera pixels, clipped to the frame), undefined when not (enough) in view. */
export function vehicleBox(v: RenderedVehicle, scene: ViolationScene, t_s: number): Box | undefined {
  const x = -v.width + v.v_px * (t_s - v.enter_s);
  const box: Box = [x, scene.lane_y - v.height, x + v.width, scene.lane_y];
  const c: Box = [Math.max(0, box[0]), box[1], Math.min(FRAME.width, box[2]), box[3]];
  if (c[2] - c[0] < 0.25 * v.width) return undefined;
  return c;
}

/** What a perfect detector sees at clip time t. */
export function sceneDetections(rs: RenderedScene, t_s: number): Detection[] {
  const out: Detection[] = [];
  for (const v of rs.vehicles) {
    const box = vehicleBox(v, rs.scene, t_s);
    if (box) out.push({ box, score: 0.9, class_id: 2, class_name: 'car' });
  }
  return out;
}

/** Clip time at which a vehicle's anchor (bottom centre) is at x. */
export function crossingTime(v: RenderedVehicle, x: number): number {
  return v.enter_s + (x + v.width / 2) / v.v_px;
}

/** Camera config input for the scene: stop line with its signal, speed trap with `limit_kmh`, calibration. */
export function sceneCamera(rs: RenderedScene, over: Record<string, unknown> = {}, limit_kmh = 50): Record<string, unknown> {
  const s = rs.scene;
  const top = s.lane_y - 380;
  const yb = FRAME.height - 1;
  return {
    id: 'cam1',
    url: rs.clip,
    frame: { ...FRAME },
    detection_fps: 10,
    motion: { enabled: false },
    lines: [
      { id: 'trap', a: [s.trap_x, top], b: [s.trap_x, yb], speed_limit_kmh: limit_kmh },
      { id: 'stop', a: [s.stop_x, top], b: [s.stop_x, yb], stop_line: true, signal: 'sig1', stop_direction: 'both' },
    ],
    calibration: {
      image: [[0, top], [FRAME.width, top], [FRAME.width, yb], [0, yb]],
      world: [[0, 0], [FRAME.width / PX_PER_M, 0], [FRAME.width / PX_PER_M, (yb - top) / PX_PER_M], [0, (yb - top) / PX_PER_M]],
      position_error_m: 0.2,
    },
    ...over,
  };
}
