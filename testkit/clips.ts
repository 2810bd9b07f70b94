// Input clips for camera tests.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Repository root (this file is testkit/clips.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The real demo clip (a cut of OpenCV's vtest.avi), once committed. */
export const DEMO_CLIP = path.join(REPO_ROOT, 'tests', 'fixtures', 'clips', 'vtest-20s.mp4');
/** Gitignored cache for generated fixtures. */
export const CACHE_DIR = path.join(REPO_ROOT, 'tests', 'fixtures', 'cache');

export interface SyntheticClipOptions {
  width?: number;
  height?: number;
  fps?: number;
  seconds?: number;
  /** Keyframe interval in frames (default: one per second). */
  gop?: number;
}

/**
 * An H.264 test-pattern clip (lavfi testsrc, libx264, yuv420p, no B-frames), generated once and cached under
 * tests/fixtures/cache/. Safe against concurrent callers (other vitest workers): written to a temp
 * name then renamed.
 */
export async function syntheticClip(opts: SyntheticClipOptions = {}): Promise<string> {
  const { width = 640, height = 360, fps = 10, seconds = 10, gop = fps } = opts;
  const file = path.join(CACHE_DIR, `testsrc-${width}x${height}-${fps}fps-${seconds}s-g${gop}-bf0.mp4`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp.mp4`;
  try {
    await execFileP('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${fps}`,
      // -bf 0: like IP cameras (and the demo clip); with B-frames, RTP clients (no DTS in RTP) log
      // "non monotonically increasing dts".
      '-t', String(seconds), '-an', '-c:v', 'libx264', '-g', String(gop), '-bf', '0', '-pix_fmt', 'yuv420p',
      tmp,
    ]);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

/** The clip cameras should play: the committed demo clip if present, else the cached synthetic one. */
export async function testClip(): Promise<string> {
  if (fs.existsSync(DEMO_CLIP)) return DEMO_CLIP;
  return syntheticClip();
}
