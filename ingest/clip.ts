// A recorded clip read once, as fast as the consumer takes it, with the clip's own timestamps (offline analysis,
// benchmarks): each frame carries the stream time of its content (showinfo), so evidence cut from the clip later
// shows exactly the frame that was analysed.
import { spawn } from 'node:child_process';
import { AgentError } from '../core/errors.js';
import { filterChain, letterboxGeometry, type FrameTarget } from './ffmpeg-args.js';
import { parseShowinfo } from './ffmpeg-run.js';
import { parseStderrLine } from './ffmpeg-stderr.js';
import { FrameAssembler, FramePool } from './frames.js';
import type { Frame } from './types.js';

/** Decoded frames a clip reader holds ahead of its consumer (each width × height × 3 bytes). */
export const CLIP_READ_AHEAD_FRAMES = 2;
/**
 * Free buffers worth keeping in a clip's frame pool: enough for every frame alive at once (read ahead, in the
 * detector, the pipeline's latest view, the one being filled), so a steady run allocates none.
 */
export const CLIP_POOL_FRAMES = CLIP_READ_AHEAD_FRAMES + 4;

export interface ClipOptions {
  /** Frames per second taken from the clip; undefined: every frame at the clip's own rate. */
  fps?: number;
  /** Camera frame size (the clip's), for mapping boxes back. */
  source: { width: number; height: number };
  /** Clip time 0 on the wall clock, epoch ms. Default: now. */
  start_ms?: number;
  ffmpegPath?: string;
  /**
   * Where frame buffers come from: a pool the consumer gives analysed frames back to (FrameProducer.release).
   * Default: a new buffer per frame.
   */
  pool?: FramePool;
  /** Plays the clip this many times back to back (benchmarks: a steady state, ffmpeg's start amortised). Default 1. */
  passes?: number;
}

/** A clip as a frame source: `frames()` reads it (readClip), `release()` takes a used frame's buffer back for a later one. */
export interface ClipSource {
  frames(): AsyncGenerator<Frame, void, undefined>;
  release(frame: Frame): void;
}

/** readClip with a frame pool sized for `target`, so a steady run reuses a handful of buffers (FrameProducer). */
export function clipSource(path: string, target: FrameTarget, opts: Omit<ClipOptions, 'pool'>): ClipSource {
  const pool = new FramePool(target.width * target.height * 3, CLIP_POOL_FRAMES);
  return { frames: () => readClip(path, target, { ...opts, pool }), release: (f) => pool.give(f.data) };
}

/** Native frame rate of a clip, from ffprobe. */
export async function clipFrameRate(path: string, ffprobePath = 'ffprobe'): Promise<number> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(ffprobePath, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=avg_frame_rate', '-of', 'csv=p=0', path]);
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(text.trim()) : reject(new AgentError('CLIP_UNREADABLE', `ffprobe could not read ${path}`))));
  });
  const [num, den] = out.split('/').map(Number);
  const fps = num && den ? num / den : Number(out);
  if (!Number.isFinite(fps) || fps <= 0) throw new AgentError('CLIP_UNREADABLE', `no frame rate in ${path} (got "${out}")`);
  return fps;
}

/**
 * Yields every frame of the clip scaled to `target` (with `fps`, the first frame of each 1/fps slot), timed by
 * the clip: `mono_ms` is the frame's stream time in ms (from the clip's start), `captured_at_ms` that plus
 * `start_ms`. Never drops one: ffmpeg is paused by the pipe once CLIP_READ_AHEAD_FRAMES frames wait for the consumer.
 */
export async function* readClip(path: string, target: FrameTarget, opts: ClipOptions): AsyncGenerator<Frame, void, undefined> {
  const fps = opts.fps ?? (await clipFrameRate(path));
  const passes = opts.passes ?? 1;
  if (!Number.isInteger(passes) || passes < 1) throw new AgentError('CLIP_BAD_OPTION', `clip passes must be a whole number ≥ 1 (got ${passes})`);
  const bytes = target.width * target.height * 3;
  if (opts.pool && opts.pool.frameBytes !== bytes) {
    throw new AgentError('CLIP_BAD_OPTION', `frame pool of ${opts.pool.frameBytes}-byte buffers for ${target.width}x${target.height} RGB frames (${bytes} bytes)`);
  }
  // -stream_loop keeps the timestamps rising from one pass to the next.
  const loop = passes > 1 ? ['-stream_loop', String(passes - 1)] : [];
  // One decoding thread: the model's threads need the other cores more than the decoder does.
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info', '-threads', '1', ...loop, '-i', path, '-map', '0:v:0', '-an', '-sn', '-dn'];
  args.push('-vf', filterChain(target, opts.fps, { exact: true }), '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const child = spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  // Frame n's stream time comes on stderr, usually before its pixels on stdout; a frame waits for it if not.
  const pts = new Map<number, number>();
  let stderrDone = false;
  let wake: (() => void) | undefined;
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    const lines = (partial + text).split(/\r?\n/);
    partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = parseStderrLine(raw);
      const shown = parseShowinfo(line.text);
      if (shown) pts.set(shown.n, shown.pts_s);
      else if (line.level === 'error' || line.level === 'fatal' || line.level === 'panic') stderr = `${stderr}${line.text}\n`.slice(-2000);
    }
    wake?.();
  });
  child.stderr.on('close', () => {
    stderrDone = true;
    wake?.();
  });
  const ptsOf = async (n: number): Promise<number | undefined> => {
    while (!pts.has(n) && !stderrDone) await new Promise<void>((resolve) => (wake = resolve));
    const v = pts.get(n);
    pts.delete(n);
    return v;
  };
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const spawnError = new Promise<never>((_, reject) => child.on('error', (e) => reject(new AgentError('FFMPEG_MISSING', `cannot run ffmpeg: ${e.message}`))));
  void spawnError.catch(() => undefined);

  const letterbox = target.resize === 'letterbox' ? letterboxGeometry(opts.source.width, opts.source.height, target.width, target.height) : undefined;
  const start = opts.start_ms ?? Date.now();
  // Frames decoded ahead of the consumer: ffmpeg decodes the next ones while the consumer works on this one
  // (read on demand, ffmpeg could only run a pipe's 64 KiB ahead and each frame cost the consumer a wait).
  const ready: Uint8Array[] = [];
  const out = child.stdout;
  let outDone = false;
  let outError: Error | undefined;
  let wakeOut: (() => void) | undefined;
  const pool = opts.pool;
  const asm = new FrameAssembler(bytes, () => (pool ? pool.take() : new Uint8Array(bytes)), (d) => ready.push(d));
  out.on('data', (chunk: Buffer) => {
    asm.push(chunk);
    if (ready.length >= CLIP_READ_AHEAD_FRAMES) out.pause();
    wakeOut?.();
  });
  const finish = (err?: Error) => {
    outError ??= err;
    outDone = true;
    wakeOut?.();
  };
  out.on('end', () => finish());
  out.on('close', () => finish());
  out.on('error', finish);
  let seq = 0;
  try {
    for (;;) {
      while (ready.length === 0 && !outDone) await new Promise<void>((resolve) => (wakeOut = resolve));
      const data = ready.shift();
      if (!data) break;
      if (ready.length < CLIP_READ_AHEAD_FRAMES) out.resume();
      const shown = await ptsOf(seq);
      const t_ms = shown !== undefined ? shown * 1000 : (seq * 1000) / fps;
      seq += 1;
      yield {
        camera: 'clip',
        data,
        width: target.width,
        height: target.height,
        source_width: opts.source.width,
        source_height: opts.source.height,
        ...(letterbox ? { letterbox: { scale: letterbox.scale, pad_x: letterbox.pad_x, pad_y: letterbox.pad_y } } : {}),
        captured_at_ms: start + t_ms,
        mono_ms: t_ms,
        seq,
      };
    }
    if (outError) throw new AgentError('CLIP_DECODE_FAILED', `reading ffmpeg's output for ${path} failed: ${outError.message}`);
    const code = await Promise.race([exited, spawnError]);
    if (code !== 0) throw new AgentError('CLIP_DECODE_FAILED', `ffmpeg failed on ${path} (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
    if (seq === 0) throw new AgentError('CLIP_EMPTY', `no video frames in ${path}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
