// One frame, once: for snapshots and for checking a camera from the CLI.
import type { Writable } from 'node:stream';
import { errorMessage } from '../core/errors.js';
import type { CameraConfig } from '../config/schema/index.js';
import { spawnTied, terminate } from './child.js';
import { buildFfmpegPlan, letterboxGeometry, type FrameTarget } from './ffmpeg-args.js';
import { StreamInfoParser, classifyLine, makeScrubber, parseStderrLine } from './ffmpeg-stderr.js';
import { CameraError } from './errors.js';
import type { CameraReason, Frame } from './types.js';

export class GrabError extends CameraError {
  constructor(
    readonly reason: CameraReason,
    message: string,
  ) {
    super('CAMERA_GRAB_FAILED', message);
  }
}

export interface GrabOptions {
  ffmpegPath?: string;
  /** Whole grab, connection included, ms. Default 15 000. */
  timeoutMs?: number;
}

/**
 * Connects, decodes the first displayable frame, scales it like the live source does and returns it
 * (seq 1). Rejects with a GrabError carrying the same reasons as the camera status.
 */
export async function grabFrame(cam: CameraConfig, target: FrameTarget, opts: GrabOptions = {}): Promise<Frame> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const plan = buildFfmpegPlan(cam, target, { socketTimeoutMs: timeoutMs, frames: 1, logLevel: 'info' });
  const frameBytes = target.width * target.height * 3;
  const { child } = spawnTied(opts.ffmpegPath ?? 'ffmpeg', plan.args, { fd3: plan.script !== undefined });
  if (plan.script !== undefined) {
    const fd3 = child.stdio[3] as Writable | null;
    fd3?.on('error', () => undefined);
    fd3?.end(plan.script);
  }
  const data = new Uint8Array(frameBytes);
  let filled = 0;
  let stderr = '';
  const spawn: { error: string | null } = { error: null };
  child.stdout!.on('data', (chunk: Buffer) => {
    const n = Math.min(chunk.length, frameBytes - filled);
    data.set(chunk.subarray(0, n), filled);
    filled += n;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 65_536) stderr += s;
  });
  child.once('error', (err) => (spawn.error = errorMessage(err)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void terminate(child, 1_000);
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c: number | null) => resolve(c)));
  clearTimeout(timer);

  const info = new StreamInfoParser();
  const scrub = makeScrubber(cam.password);
  let reason: CameraReason | undefined;
  let detail = '';
  for (const raw of stderr.split(/\r?\n|\r/)) {
    if (!raw.trim()) continue;
    const line = parseStderrLine(raw, scrub);
    info.push(line);
    if (line.level === 'error' || line.level === 'fatal' || line.level === 'panic') {
      detail = line.text;
      reason = classifyLine(line.text) ?? reason;
    }
  }
  if (filled < frameBytes) {
    if (timedOut) throw new GrabError('timeout', `no frame within ${timeoutMs} ms`);
    if (spawn.error !== null) throw new GrabError('exited', `cannot run ffmpeg: ${spawn.error}`);
    throw new GrabError(reason ?? 'exited', detail || `ffmpeg exited (code ${code}) without a frame`);
  }
  const source_width = info.width ?? cam.frame.width;
  const source_height = info.height ?? cam.frame.height;
  const frame: Frame = {
    camera: cam.id,
    data,
    width: target.width,
    height: target.height,
    source_width,
    source_height,
    captured_at_ms: Date.now(),
    mono_ms: performance.now(),
    seq: 1,
  };
  if (target.resize === 'letterbox') {
    const g = letterboxGeometry(source_width, source_height, target.width, target.height);
    frame.letterbox = { scale: g.scale, pad_x: g.pad_x, pad_y: g.pad_y };
  }
  return frame;
}
