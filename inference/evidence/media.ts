// ffprobe / ffmpeg work on the media an evidence package is cut from (the ring's segments joined by the concat
// demuxer, or a recorded clip): the frame index, the clip cut by stream copy, and exact frames decoded at full
// resolution. Times are ffmpeg's `t` of the input: seconds from its start.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { AgentError } from '../../core/errors.js';
import { EVIDENCE_NICE, renice } from '../../ingest/child.js';
import type { RgbFrame } from '../../ingest/frame.js';

export class EvidenceMediaError extends AgentError {}

export interface MediaInput {
  kind: 'concat' | 'file';
  /** The concat list, or the clip. */
  path: string;
  /**
   * `-ss` before the input lands where asked (indexed containers: mp4). Never used on MPEG-TS: its seeking
   * by estimate can land past the frame wanted.
   */
  seekable: boolean;
  /** A concat list's entries (file names relative to the list) and where each starts in the joined time, s. */
  segments?: Array<{ file: string; start_s: number; duration_s: number }>;
}

export interface FrameIndex {
  /** Presentation times of the frames, s, sorted. */
  times: number[];
  /** Those of keyframes. */
  keys: number[];
  width: number;
  height: number;
  /** Typical frame interval, s. */
  frame_s: number;
}

const fmt = (s: number) => Math.max(0, s).toFixed(6);

function inputArgs(m: MediaInput, ss: number): string[] {
  return [...(ss > 0 ? ['-ss', fmt(ss)] : []), ...(m.kind === 'concat' ? ['-f', 'concat', '-safe', '0'] : []), '-i', m.path];
}

/** ffprobe's JSON for the frames of a few seconds of video is well under this; more is no answer to use. */
const MAX_TEXT_BYTES = 16 * 1024 * 1024;

/**
 * Runs a tool, handing each stdout chunk to `take` (false: the output is not what was asked for; the tool is
 * killed and run resolves false). Resolves true when it exits 0 and every chunk was taken, rejects with its last
 * stderr line when it fails.
 */
function run(cmd: string, args: string[], what: string, take: (chunk: Buffer) => boolean): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    renice(child, EVIDENCE_NICE);
    let refused = false;
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (refused || take(d)) return;
      refused = true;
      child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('error', (e) => reject(new EvidenceMediaError('EVIDENCE_MEDIA', `${what}: cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (refused) resolve(false);
      else if (code === 0) resolve(true);
      else reject(new EvidenceMediaError('EVIDENCE_MEDIA', `${what}: ${cmd} exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

/** A tool's text output (ffprobe's JSON), bounded by MAX_TEXT_BYTES. */
async function runText(cmd: string, args: string[], what: string): Promise<string> {
  const out: Buffer[] = [];
  let bytes = 0;
  const whole = await run(cmd, args, what, (d) => {
    bytes += d.length;
    out.push(d);
    return bytes <= MAX_TEXT_BYTES;
  });
  if (!whole) throw new EvidenceMediaError('EVIDENCE_MEDIA', `${what}: ${cmd} wrote more than ${MAX_TEXT_BYTES} bytes`);
  return Buffer.concat(out).toString();
}

/** The video frames (times, keyframes, size) of the input, within [from_s, to_s] when the input is seekable. */
export async function probeFrames(m: MediaInput, window?: { from_s: number; to_s: number }, ffprobe = 'ffprobe'): Promise<FrameIndex> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags:stream=width,height:format=start_time', '-of', 'json'];
  if (m.seekable && window) args.push('-read_intervals', `${fmt(window.from_s - 2)}%${fmt(window.to_s + 2)}`);
  if (m.kind === 'concat') args.push('-f', 'concat', '-safe', '0');
  args.push('-i', m.path);
  const json = JSON.parse(await runText(ffprobe, args, 'probing the evidence video')) as {
    packets?: Array<{ pts_time?: string; flags?: string }>;
    streams?: Array<{ width?: number; height?: number }>;
    format?: { start_time?: string };
  };
  // ffprobe reports raw timestamps; ffmpeg's `t` starts at the input's start time.
  const start = Number(json.format?.start_time ?? 0) || 0;
  const times: number[] = [];
  const keys: number[] = [];
  for (const p of json.packets ?? []) {
    const t = Number(p.pts_time);
    if (!Number.isFinite(t)) continue;
    times.push(t - start);
    if (p.flags?.startsWith('K')) keys.push(t - start);
  }
  times.sort((a, b) => a - b);
  keys.sort((a, b) => a - b);
  const { width = 0, height = 0 } = json.streams?.[0] ?? {};
  if (times.length === 0 || !(width > 0 && height > 0)) throw new EvidenceMediaError('EVIDENCE_MEDIA', `no video frames in ${m.path}`);
  const gaps = times.slice(1).map((t, i) => t - times[i]!).sort((a, b) => a - b);
  return { times, keys, width, height, frame_s: gaps[gaps.length >> 1] ?? 0.04 };
}

/**
 * Copies [from_s, to_s) of the input into an MP4 without re-encoding; `from_s` must be a keyframe's time (the
 * clip starts there). Resolves with the clip's duration as ffprobe reads it back, s.
 */
export async function cutClip(m: MediaInput, from_s: number, to_s: number, out: string, tools = { ffmpeg: 'ffmpeg', ffprobe: 'ffprobe' }): Promise<number> {
  const ss = m.seekable ? Math.max(0, from_s - 1) : 0;
  // The output -ss drops packets before the keyframe; with stream copy the first one kept is that keyframe.
  const cut = await run(
    tools.ffmpeg,
    ['-nostdin', '-v', 'error', '-y', ...inputArgs(m, ss), '-map', '0:v:0', '-c', 'copy', '-ss', fmt(from_s - ss - 0.0005), '-t', fmt(to_s - from_s), '-movflags', '+faststart', '-f', 'mp4', out],
    'cutting the evidence clip',
    () => false, // it writes the file: output on stdout means something else ran
  );
  if (!cut) throw new EvidenceMediaError('EVIDENCE_MEDIA', `cutting the evidence clip: ${tools.ffmpeg} wrote to stdout instead of ${out}`);
  const probe = JSON.parse(await runText(tools.ffprobe, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'json', out], 'probing the evidence clip')) as {
    format?: { duration?: string };
  };
  const duration = Number(probe.format?.duration);
  if (!(duration > 0)) throw new EvidenceMediaError('EVIDENCE_MEDIA', `the evidence clip ${out} came out empty`);
  return duration;
}

/**
 * Decodes the frames at exactly these times (from probeFrames) at full resolution, RGB. Each is found by its
 * own timestamp (the select filter), so a seek that lands early or late cannot shift a still by a frame; when
 * a seek landed past a wanted frame, the input is decoded from its start instead.
 *
 * The frames share one buffer that ffmpeg's output is copied into as it arrives: at 1080p each is 6 MB, and a
 * list of pipe chunks joined at the end would hold every byte twice.
 */
export async function decodeFrames(m: MediaInput, times: readonly number[], size: { width: number; height: number }, ffmpeg = 'ffmpeg'): Promise<Map<number, RgbFrame>> {
  const wanted = [...new Set(times)].sort((a, b) => a - b);
  const out = new Map<number, RgbFrame>();
  if (wanted.length === 0) return out;
  /** Decodes `input` (starting at `base` s of m's time), after an input -ss of `ss` s. */
  const attempt = async (input: MediaInput, base: number, ss: number): Promise<boolean> => {
    const at = (t: number) => t - base - ss;
    const windows = wanted.map((t) => `between(t,${(at(t) - 0.001).toFixed(6)},${(at(t) + 0.001).toFixed(6)})`).join('+');
    const bytes = size.width * size.height * 3;
    const raw = new Uint8Array(bytes * wanted.length);
    let filled = 0;
    const whole = await run(
      ffmpeg,
      ['-nostdin', '-v', 'error', ...inputArgs(input, ss), '-map', '0:v:0', '-vf', `select='${windows}'`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
      'decoding evidence stills',
      (d) => {
        if (filled + d.length > raw.length) return false; // more frames than asked for: not these frames
        raw.set(d, filled);
        filled += d.length;
        return true;
      },
    );
    if (!whole || filled !== raw.length) return false;
    wanted.forEach((t, i) => out.set(t, { data: raw.subarray(i * bytes, (i + 1) * bytes), width: size.width, height: size.height }));
    return true;
  };
  // Joined segments: decoding starts at the segment holding the first frame wanted (each starts at a keyframe).
  const first = m.segments?.findIndex((s) => s.start_s + s.duration_s > wanted[0]! + 1e-6) ?? -1;
  if (m.kind === 'concat' && m.segments && first > 0) {
    const rest = m.segments.slice(first);
    const list = `${m.path}.${first}`;
    await writeFile(list, ['ffconcat version 1.0', ...rest.flatMap((s) => [`file '${s.file}'`, `duration ${s.duration_s.toFixed(6)}`]), ''].join('\n'));
    if (await attempt({ ...m, path: list }, rest[0]!.start_s, 0)) return out;
  }
  const ss = m.seekable ? Math.max(0, wanted[0]! - 1) : 0;
  if (!(await attempt(m, 0, ss)) && !(ss > 0 && (await attempt(m, 0, 0)))) {
    throw new EvidenceMediaError('EVIDENCE_MEDIA', `could not decode the frames at ${wanted.map((t) => t.toFixed(3)).join(', ')} s of ${m.path}`);
  }
  return out;
}

/** The frame nearest to `t` (index into `times`). */
export function nearestFrame(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(times[lo - 1]! - t) <= Math.abs(times[lo]! - t)) return lo - 1;
  return lo;
}
