// Pictures for the camera tamper tests: manipulated copies of the demo clip (the clip looped to
// TAMPER_TIMELINE.duration_s, clean before and after the tampered span, made with ffmpeg filters and cached under
// tests/fixtures/cache), and a synthetic textured view for unit tests (SyntheticView).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Frame } from '../ingest/types.js';
import { CACHE_DIR, DEMO_CLIP } from './clips.js';
import { gaussian, prng } from './synthetic-scenes.js';

const execFileP = promisify(execFile);

/** Every clip: clean until `from_s`, tampered until `to_s`, clean again until `duration_s` (clip seconds). */
export const TAMPER_TIMELINE = { from_s: 15, to_s: 35, duration_s: 50, fps: 10, width: 768, height: 576 } as const;

/** The view shift of the `shift` clip, in clip pixels: the picture content moves by this much (camera turned). */
export const SHIFT_CLIP_PX = { dx: -43.6, dy: -26.2 } as const;

export const TAMPER_CLIP_KINDS = ['clean', 'shift', 'blur', 'covered', 'sprayed', 'black', 'overexposed', 'frozen', 'rain', 'drift'] as const;
export type TamperClipKind = (typeof TAMPER_CLIP_KINDS)[number];

const { from_s: A, to_s: B, fps: FPS } = TAMPER_TIMELINE;
const during = `enable='between(t,${A},${B})'`;

/**
 * The filter of each clip, on the looped 768×576 demo clip at 10 fps.
 * - shift: the camera turned. Both spans show a 704×528 window scaled to 768×576 (real picture up to the
 *   edges, no black border); while tampered the window sits 40, 24 source pixels further right and down, so the
 *   content moves by SHIFT_CLIP_PX.
 * - blur: defocus, Gaussian σ 4 px. covered: an opaque brown cover with sensor noise. sprayed: paint on the
 *   glass (Gaussian σ 40 and a tint). black: a black cover. overexposed: the picture washed out to white.
 * - frozen: the frame at `from_s` repeated for 20 s (the encoder keeps sending it, a keyframe every second),
 *   then the clip goes on.
 * - rain: heavy temporal noise (grain, drops) while "tampered": must NOT alarm.
 * - drift: dusk and back over the whole clip (brightness down 0.3, contrast to 0.6): must NOT alarm.
 */
const FILTERS: Record<TamperClipKind, string> = {
  clean: 'null',
  shift: `crop=704:528:x='16+if(between(t,${A},${B}),40,0)':y='16+if(between(t,${A},${B}),24,0)',scale=768:576`,
  blur: `gblur=sigma=4:${during}`,
  covered: `drawbox=x=0:y=0:w=iw:h=ih:color=0x4a4038:t=fill:${during},noise=alls=6:allf=t:${during}`,
  sprayed: `gblur=sigma=40:${during},colorbalance=rs=0.3:gs=-0.1:bs=-0.2:${during}`,
  black: `drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:${during}`,
  overexposed: `eq=brightness=0.6:contrast=0.5:${during}`,
  frozen: `loop=loop=${(B - A) * FPS - 1}:size=1:start=${A * FPS},setpts=N/${FPS}/TB`,
  rain: `noise=alls=30:allf=t+u:${during}`,
  drift: `eq=brightness='-0.3*sin(PI*t/${TAMPER_TIMELINE.duration_s})':contrast='1-0.4*sin(PI*t/${TAMPER_TIMELINE.duration_s})':eval=frame`,
};

export interface TamperClip {
  kind: TamperClipKind;
  file: string;
}

/**
 * The clip of `kind`, generated once (libx264, no B-frames, a keyframe every second like the demo clip) and
 * cached. Safe against concurrent callers: written to a temporary name, then renamed.
 */
export async function tamperClip(kind: TamperClipKind): Promise<TamperClip> {
  if (!fs.existsSync(DEMO_CLIP)) throw new Error(`the demo clip ${DEMO_CLIP} is missing (tests/fixtures/clips/SOURCE.md)`);
  const file = path.join(CACHE_DIR, `tamper-${kind}-${TAMPER_TIMELINE.duration_s}s-v2.mp4`);
  if (fs.existsSync(file)) return { kind, file };
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp.mp4`;
  try {
    // prettier-ignore
    await execFileP('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-stream_loop', '-1', '-i', DEMO_CLIP,
      '-vf', `fps=${FPS},${FILTERS[kind]}`,
      '-t', String(TAMPER_TIMELINE.duration_s), '-an',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '26', '-bf', '0', '-g', String(FPS), '-keyint_min', String(FPS), '-sc_threshold', '0',
      '-pix_fmt', 'yuv420p', '-r', String(FPS),
      tmp,
    ]);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return { kind, file };
}

export interface ViewOptions {
  /** Where the frame's window sits in the world, frame pixels (the camera turned: a different offset). */
  x?: number;
  y?: number;
  /** Luminance = gain * scene + offset (dusk: gain < 1). Default 1, 0. */
  gain?: number;
  offset?: number;
  /** Sensor noise, standard deviation in grey levels. Default 2. */
  noise?: number;
  /** Box blur radius, frame pixels (defocus). Default 0. */
  blur?: number;
  /** A flat cover of this grey level instead of the scene. */
  cover?: number;
}

/**
 * A synthetic camera: a fixed world of textured grey rectangles (buildings, markings) seen through a window of the
 * frame size, with sensor noise, gain, blur or a cover; frames are grey RGB at the frame size, camera frame
 * `source` (2x the frame by default, so offsets in camera pixels are twice those in frame pixels).
 */
export class SyntheticView {
  private readonly world: Float32Array;
  private readonly worldW: number;
  private readonly worldH: number;
  private readonly noiseRand: () => number;
  /** Standard normal samples, read from a random place per frame (a gaussian per pixel is slow). */
  private readonly normals: Float32Array;
  private seq = 0;

  constructor(
    readonly width = 416,
    readonly height = 416,
    readonly source = { width: 832, height: 832 },
    seed = 7,
  ) {
    this.worldW = width + 160;
    this.worldH = height + 160;
    this.world = new Float32Array(this.worldW * this.worldH);
    const rand = prng(seed);
    for (let y = 0; y < this.worldH; y++) for (let x = 0; x < this.worldW; x++) this.world[y * this.worldW + x] = 60 + (90 * y) / this.worldH;
    for (let i = 0; i < 90; i++) {
      const w = 8 + rand() * 90;
      const h = 8 + rand() * 70;
      const x0 = rand() * (this.worldW - w);
      const y0 = rand() * (this.worldH - h);
      const v = 20 + rand() * 200;
      for (let y = Math.floor(y0); y < y0 + h; y++) for (let x = Math.floor(x0); x < x0 + w; x++) this.world[y * this.worldW + x] = v;
    }
    // Surface texture (asphalt, brick, grass): fine detail that is part of the scene, not sensor noise.
    for (let i = 0; i < this.world.length; i++) this.world[i]! += 24 * (rand() - 0.5);
    this.noiseRand = prng(seed + 1);
    this.normals = Float32Array.from({ length: 1 << 20 }, () => gaussian(this.noiseRand));
  }

  /** The frame at mono time `t_ms` (wall clock: `wall0_ms` + t). Default window at (80, 80): the world's centre. */
  frame(t_ms: number, o: ViewOptions = {}, wall0_ms = Date.UTC(2026, 0, 1)): Frame {
    const { x = 80, y = 80, gain = 1, offset = 0, noise = 2, blur = 0, cover } = o;
    const { width: w, height: h } = this;
    const grey = new Float32Array(w * h);
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) grey[r * w + c] = cover ?? this.world[(r + y) * this.worldW + (c + x)]!;
    const img = blur > 0 ? boxBlur(boxBlur(grey, w, h, blur, true), w, h, blur, false) : grey;
    const data = new Uint8Array(w * h * 3);
    const mask = this.normals.length - 1;
    const start = Math.floor(this.noiseRand() * this.normals.length);
    for (let i = 0; i < w * h; i++) {
      const v = Math.max(0, Math.min(255, Math.round(gain * img[i]! + offset + noise * this.normals[(start + i * 7) & mask]!)));
      data[i * 3] = v;
      data[i * 3 + 1] = v;
      data[i * 3 + 2] = v;
    }
    this.seq += 1;
    return { camera: 'synthetic', data, width: w, height: h, source_width: this.source.width, source_height: this.source.height, captured_at_ms: wall0_ms + t_ms, mono_ms: t_ms, seq: this.seq };
  }
}

function boxBlur(src: Float32Array, w: number, h: number, r: number, horizontal: boolean): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      let n = 0;
      for (let k = -r; k <= r; k++) {
        const xx = horizontal ? x + k : x;
        const yy = horizontal ? y : y + k;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        sum += src[yy * w + xx]!;
        n++;
      }
      out[y * w + x] = sum / n;
    }
  }
  return out;
}
