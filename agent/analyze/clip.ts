// What offline analysis needs around the frame loop: the clip's facts (ffprobe), the wall time of its first
// frame, deterministic event ids, and the hooks the CLI draws its progress bar and overlay from.
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { seededUuidv7, useEventIds, type EventObject } from '../../contract/event.js';
import { AgentError } from '../../core/errors.js';
import { CameraAnalytics } from '../../inference/analytics/index.js';
import type { Frame } from '../../ingest/index.js';
import type { Detection, FrameContext } from '../../inference/tracking/types.js';

export interface ClipInfo {
  /** Container duration, seconds; undefined when the container does not say. */
  duration_s: number | undefined;
  /** `format.tags.creation_time` (else the video stream's), epoch ms; undefined when absent or a placeholder (≤ 1970). */
  creation_ms: number | undefined;
  /** The video stream's average frame rate, frames per second. */
  frame_rate: number | undefined;
  width: number;
  height: number;
}

interface FfprobeJson {
  format?: { duration?: string; tags?: { creation_time?: string } };
  streams?: Array<{ width?: number; height?: number; avg_frame_rate?: string; tags?: { creation_time?: string } }>;
}

/** Duration, creation time, frame rate and size of a clip's first video stream, from ffprobe. */
export async function probeClip(path: string, ffprobePath = 'ffprobe'): Promise<ClipInfo> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'format=duration:format_tags=creation_time:stream=width,height,avg_frame_rate:stream_tags=creation_time', '-of', 'json', path];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn(ffprobePath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.on('error', (e) => reject(new AgentError('FFMPEG_MISSING', `cannot run ffprobe: ${e.message}`)));
    p.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const why = stderr.trim().split('\n').pop() ?? '';
  if (code !== 0) throw new AgentError('CLIP_UNREADABLE', `ffprobe could not read ${path}${why ? `: ${why}` : ''}`);
  const json = JSON.parse(stdout) as FfprobeJson;
  const video = json.streams?.[0];
  if (!video?.width || !video.height) throw new AgentError('CLIP_EMPTY', `no video stream in ${path}`);
  const duration = Number(json.format?.duration);
  const [num, den] = (video.avg_frame_rate ?? '').split('/').map(Number);
  const rate = num && den ? num / den : NaN;
  return {
    duration_s: Number.isFinite(duration) && duration > 0 ? duration : undefined,
    creation_ms: creationMs(json.format?.tags?.creation_time ?? video.tags?.creation_time),
    frame_rate: Number.isFinite(rate) && rate > 0 ? rate : undefined,
    width: video.width,
    height: video.height,
  };
}

/** A creation time, unless absent, unreadable or a zero placeholder (1970, or MP4's 1904 epoch). */
function creationMs(text: string | undefined): number | undefined {
  const ms = text ? Date.parse(text) : NaN;
  return Number.isFinite(ms) && ms >= Date.UTC(1971, 0, 1) ? ms : undefined;
}

export type StartFrom = 'option' | 'creation_time' | 'epoch';

/**
 * The wall time of the clip's first frame: `--start` when given, else the container's creation time, else
 * 1970-01-01T00:00:00Z. Never the current time, so one clip gives the same events and flow bins on every run.
 */
export function clipStart(start_ms: number | undefined, info: Pick<ClipInfo, 'creation_ms'>): { start_ms: number; from: StartFrom } {
  if (start_ms !== undefined) return { start_ms, from: 'option' };
  if (info.creation_ms !== undefined) return { start_ms: info.creation_ms, from: 'creation_time' };
  return { start_ms: 0, from: 'epoch' };
}

/**
 * Makes every event id of the analysis deterministic until the returned function is called: UUIDv7 from the
 * capture time and a counter seeded by device, camera, start and clip name (live ids stay random).
 */
export function deterministicEventIds(device: string, camera: string, start_ms: number, clip: string): () => void {
  return useEventIds(seededUuidv7(`roadside-analyze/${device}/${camera}/${start_ms}/${basename(clip)}`));
}

/** One analysed frame: its times and the confirmed tracks after it (its events are already out). */
export interface AnalysedFrame {
  mono_ms: number;
  captured_at_ms: number;
  tracks: Array<EventObject & { seen: boolean }>;
}

/** CameraAnalytics that reports every analysed frame to `onFrame` once its events are out. */
export class ObservedAnalytics extends CameraAnalytics {
  onFrame: ((f: AnalysedFrame) => void) | undefined;

  override update(ctx: FrameContext, detections: readonly Detection[]): void {
    super.update(ctx, detections);
    this.onFrame?.({ mono_ms: ctx.mono_ms, captured_at_ms: ctx.captured_at_ms, tracks: this.tracks() });
  }
}

export interface ReadProgress {
  /** Frames taken from the clip so far. */
  frames_read: number;
  /** Clip time of the last one, ms. */
  mono_ms: number;
}

/** `frames`, reporting each to `onRead` as it is taken (the progress bar). */
export async function* reporting(frames: AsyncIterable<Frame>, onRead: (p: ReadProgress) => void): AsyncGenerator<Frame, void, undefined> {
  let n = 0;
  for await (const f of frames) {
    n += 1;
    onRead({ frames_read: n, mono_ms: f.mono_ms });
    yield f;
  }
}
