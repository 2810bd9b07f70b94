// The status page's MPEG-1 live preview: node-rtsp-stream's Mpeg1Muxer (ffmpeg → MPEG-TS with MPEG-1 video,
// which jsmpeg plays in the page), fed on its STDIN with the frames the camera pipeline already decoded. No
// camera URL or credential is ever on an argv and the camera gets no extra connection. The TS bytes go out
// through the status server's own authenticated websocket; node-rtsp-stream's VideoStream (an unauthenticated
// websocket server on every interface) is never used. ffmpeg runs only while someone watches.
//
// Frames go in as PPM images (a 15-byte header before the raw RGB), which ffmpeg recognises on its own
// (ppm_pipe, 25 fps time base): Mpeg1Muxer puts every option after `-i`, so input options cannot be given.
import { accessSync, constants as fsConstants } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { Backoff } from '../../core/time.js';
import { terminate } from '../../ingest/child.js';
import { letterboxGeometry } from '../../ingest/ffmpeg-args.js';
import type { RgbFrame } from '../../ingest/frame.js';

interface Mpeg1MuxerOptions {
  url: string;
  ffmpegPath: string;
  /** Appended after `-i url -f mpegts -codec:v mpeg1video`, key then value (an empty value adds the key only). */
  ffmpegOptions?: Record<string, string>;
}
/** node-rtsp-stream/mpeg1muxer (no type declarations): spawns ffmpeg in its constructor. */
interface Mpeg1MuxerInstance extends EventEmitter {
  stream: ChildProcess;
  spawnOptions: string[];
}
type Mpeg1MuxerClass = new (options: Mpeg1MuxerOptions) => Mpeg1MuxerInstance;
// Only this file of the package: index.js and videoStream.js would load its ws@7 and its websocket server.
const Mpeg1Muxer = createRequire(import.meta.url)('node-rtsp-stream/mpeg1muxer') as Mpeg1MuxerClass;

/** Size of one MPEG transport stream packet; each starts with the sync byte 0x47. */
export const TS_PACKET = 188;
const SEQUENCE_HEADER = Buffer.from([0x00, 0x00, 0x01, 0xb3]);
/** ffmpeg reads this much (its default probesize) before it writes anything: see tick(). */
const FFMPEG_PROBE_BYTES = 5_000_000;
/** Frames waiting in ffmpeg's stdin beyond this are not added to (the encoder is behind: drop, never queue). */
const MAX_PENDING_FRAMES = 2;
/** The bytes since the last sequence header are kept for viewers who join; dropped beyond this. */
const MAX_GOP_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * The launcher given to Mpeg1Muxer as its "ffmpeg": it runs ffmpeg through `setpriv --pdeathsig KILL` (the
 * muxer spawns `<ffmpegPath> -i …` itself, so the wrapper has to). Next to this module (sources and dist/).
 */
export function muxerLauncher(): string | undefined {
  const path = join(dirname(fileURLToPath(import.meta.url)), 'mpeg1-ffmpeg.sh');
  try {
    accessSync(path, fsConstants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** A frame as ffmpeg's PPM reader takes it: `P6 width height 255` and the packed RGB. Copies (the caller may reuse `data`). */
export function ppmImage(frame: RgbFrame): Buffer {
  const bytes = frame.width * frame.height * 3;
  if (frame.data.length < bytes) throw new RangeError(`frame ${frame.width}x${frame.height} has ${frame.data.length} bytes, expected ${bytes}`);
  const header = Buffer.from(`P6\n${frame.width} ${frame.height}\n255\n`, 'ascii');
  return Buffer.concat([header, frame.data.subarray(0, bytes)], header.length + bytes);
}

export interface Mpeg1Options {
  /** How often the pipeline's latest frame is looked at; at most this many frames per second are encoded. */
  fps: number;
  /** Largest output width, pixels (the camera's own width if smaller). */
  maxWidth: number;
  /** The camera's frame size: the output keeps its aspect ratio, whatever the detector's input size. */
  cameraFrame: { width: number; height: number };
  /** How the pipeline fitted the camera's frames to the detector (letterbox bands are cropped off). Default stretch. */
  resize?: 'stretch' | 'letterbox';
  /**
   * MPEG-1 quantiser, 2 (best) … 31. Default 6: on the demo clip at 640x480 its PSNR (34.8 dB) matches the JPEG
   * preview's `-q:v 7` (34.7 dB) at a fifth of the bytes.
   */
  quality?: number;
  /** Frames from one I-frame (with its sequence header) to the next. Default 4 s of frames. */
  gopFrames?: number;
  /** Keep ffmpeg running this long after the last viewer left (page reloads), ms. Default 2000. */
  lingerMs?: number;
  /** No frame from the pipeline this long after the first viewer came: MPEG-1 is unavailable, ms. Default 5000. */
  firstFrameTimeoutMs?: number;
  /** The executable given to Mpeg1Muxer. Default: the setpriv launcher, else "ffmpeg". */
  ffmpegPath?: string;
}

/** Output options of the muxer's ffmpeg, for a `width`x`height` input frame. */
export function muxerOptions(opts: Mpeg1Options, input: { width: number; height: number }): Record<string, string> {
  const cam = opts.cameraFrame;
  const width = Math.max(16, Math.round(Math.min(opts.maxWidth, cam.width) / 2) * 2);
  const height = Math.max(16, Math.round((width * cam.height) / cam.width / 2) * 2);
  const filters: string[] = [];
  if (opts.resize === 'letterbox') {
    const g = letterboxGeometry(cam.width, cam.height, input.width, input.height);
    filters.push(`crop=${g.scaled_width}:${g.scaled_height}:${g.pad_x}:${g.pad_y}`);
  }
  filters.push(`scale=${width}:${height}`);
  return {
    '-an': '',
    '-vf': filters.join(','),
    // MPEG-1 allows only 23.976-60 fps; the frames come when the pipeline has them and jsmpeg shows each as
    // soon as it arrives, so the time base is only a formality.
    '-r': '25',
    '-q:v': String(opts.quality ?? 6),
    '-bf': '0', // jsmpeg decodes no B-frames
    '-g': String(opts.gopFrames ?? Math.max(10, Math.round(opts.fps * 4))),
    '-flush_packets': '1', // each frame leaves at once, not when an output buffer is full
    '-hide_banner': '',
    '-nostats': '',
    '-loglevel': 'error',
  };
}

/** A run of whole TS packets; `gopStart` when it begins with a sequence header and I-frame (a decoder may start there). */
export interface TsChunk {
  data: Buffer;
  gopStart: boolean;
}

/** Cuts ffmpeg's output into whole 188-byte packets, split where a group of pictures starts. */
export class TsPackets {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): TsChunk[] {
    let buf = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    if (buf[0] !== 0x47) {
      const sync = buf.indexOf(0x47); // ffmpeg writes whole packets: only ever needed after garbage
      buf = sync < 0 ? Buffer.alloc(0) : buf.subarray(sync);
    }
    const whole = buf.length - (buf.length % TS_PACKET);
    this.rest = Buffer.from(buf.subarray(whole));
    const out: TsChunk[] = [];
    let from = 0;
    let fromGop = false;
    for (let at = 0; at < whole; at += TS_PACKET) {
      if (!startsGop(buf, at)) continue;
      if (at > from) out.push({ data: buf.subarray(from, at), gopStart: fromGop });
      from = at;
      fromGop = true;
    }
    if (whole > from) out.push({ data: buf.subarray(from, whole), gopStart: fromGop });
    return out;
  }
}

/** A packet starting a PES (payload_unit_start) whose payload holds an MPEG-1 sequence header. */
function startsGop(buf: Buffer, at: number): boolean {
  if (buf[at] !== 0x47 || ((buf[at + 1] ?? 0) & 0x40) === 0) return false;
  const seq = buf.indexOf(SEQUENCE_HEADER, at + 4);
  return seq >= 0 && seq + SEQUENCE_HEADER.length <= at + TS_PACKET;
}

/** Someone watching the MPEG-1 stream: the status server's websocket client. */
export interface Mpeg1Viewer {
  /** TS bytes; the viewer may skip them while its connection is backed up, then resumes at a `gopStart`. */
  data(chunk: TsChunk): void;
  /** A frame handed to ffmpeg came out (the server follows it with the frame's detections). */
  frame(): void;
  /** `unavailable`: no MPEG-1 for now (no frames from the pipeline, ffmpeg failed); the page falls back to JPEG. */
  status(state: 'starting' | 'running' | 'retrying' | 'unavailable', message?: string): void;
}

export interface Mpeg1State {
  camera: string;
  running: boolean;
  viewers: number;
  /** Frames handed to ffmpeg since start. */
  frames: number;
  /** TS bytes relayed since start. */
  bytes: number;
  pid: number | null;
  last_error: string | null;
}

interface Run {
  muxer: Mpeg1MuxerInstance;
  child: ChildProcess;
  stdin: Writable;
  packets: TsPackets;
  /** The first frame went in with its copies (see tick). */
  primed: boolean;
  /** Frames written whose output has not been seen yet. */
  pending: number;
  /** ffmpeg has written TS bytes. */
  output: boolean;
  stderrTail: string;
  /** A spawn error (e.g. ENOENT). */
  error: string | null;
  exited: Promise<void>;
}

/** The MPEG-1 preview of one camera. `source` gives the pipeline's latest frame (undefined while it has none). */
export class Mpeg1Preview {
  private readonly viewers = new Set<Mpeg1Viewer>();
  private run: Run | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private lastFrame: RgbFrame | undefined;
  private waitingSince = 0;
  private gop: Buffer[] = [];
  private gopBytes = 0;
  private frames = 0;
  private bytes = 0;
  private lastError: string | null = null;
  private closed = false;
  private readonly backoff = new Backoff({ initial_ms: 1000, max_ms: 15_000, jitter: 0.2 });
  private readonly log: Logger;
  private readonly ffmpegPath: string;

  constructor(
    private readonly cameraId: string,
    private readonly source: () => RgbFrame | undefined,
    private readonly opts: Mpeg1Options,
    log: Logger,
  ) {
    this.log = log.child({ camera: cameraId, preview: 'mpeg1' });
    this.ffmpegPath = opts.ffmpegPath ?? muxerLauncher() ?? 'ffmpeg';
  }

  addViewer(v: Mpeg1Viewer): void {
    if (this.closed) return;
    this.viewers.add(v);
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.restartTimer) return v.status('retrying', this.lastError ?? undefined);
    if (!this.sampler) return this.begin();
    v.status(this.run?.output ? 'running' : 'starting');
    this.gop.forEach((data, i) => v.data({ data, gopStart: i === 0 }));
  }

  removeViewer(v: Mpeg1Viewer): void {
    if (!this.viewers.delete(v) || this.viewers.size > 0) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      if (this.viewers.size === 0) void this.halt();
    }, this.opts.lingerMs ?? 2000);
    this.lingerTimer.unref();
  }

  state(): Mpeg1State {
    return {
      camera: this.cameraId,
      running: this.run !== undefined,
      viewers: this.viewers.size,
      frames: this.frames,
      bytes: this.bytes,
      pid: this.run?.child.pid ?? null,
      last_error: this.lastError,
    };
  }

  /** Stops ffmpeg for good (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.viewers.clear();
    await this.halt();
  }

  /** Starts looking for frames; ffmpeg starts with the first one (its size decides the crop). */
  private begin(): void {
    for (const v of this.viewers) v.status('starting');
    this.lastFrame = undefined;
    this.waitingSince = Date.now();
    this.sampler = setInterval(() => this.tick(), Math.max(20, Math.round(1000 / this.opts.fps)));
    this.sampler.unref();
    this.tick();
  }

  private tick(): void {
    const frame = this.safeSource();
    if (!frame || frame === this.lastFrame) {
      if (!this.run && Date.now() - this.waitingSince > (this.opts.firstFrameTimeoutMs ?? 5000)) {
        this.unavailable('no frames from the camera pipeline yet');
      }
      return;
    }
    if (!this.run && !this.spawn(frame)) return;
    const run = this.run;
    if (!run) return;
    let image: Buffer;
    try {
      image = ppmImage(frame);
    } catch (err) {
      this.lastError = errorMessage(err);
      return;
    }
    this.lastFrame = frame;
    if (run.stdin.writableLength > MAX_PENDING_FRAMES * image.length) return; // encoder behind: skip this one
    // ffmpeg writes nothing before it has read its probe size: the first frame goes in that many times, so the
    // picture shows at once instead of after ~10 frames. The copies cost a few bytes each (skipped blocks).
    const copies = run.primed ? 1 : Math.ceil(FFMPEG_PROBE_BYTES / image.length) + 1;
    run.primed = true;
    for (let i = 0; i < copies; i++) run.stdin.write(image);
    run.pending += 1;
    this.frames += 1;
  }

  private safeSource(): RgbFrame | undefined {
    try {
      return this.source();
    } catch (err) {
      this.lastError = `frame source failed: ${errorMessage(err)}`;
      return undefined;
    }
  }

  private spawn(first: RgbFrame): boolean {
    let muxer: Mpeg1MuxerInstance;
    try {
      muxer = new Mpeg1Muxer({ url: 'pipe:0', ffmpegPath: this.ffmpegPath, ffmpegOptions: muxerOptions(this.opts, first) });
    } catch (err) {
      this.unavailable(`cannot start ffmpeg: ${errorMessage(err)}`);
      return false;
    }
    const child = muxer.stream;
    const stdin = child.stdin!;
    let exitedResolve!: () => void;
    const exited = new Promise<void>((resolve) => (exitedResolve = resolve));
    const run: Run = { muxer, child, stdin, packets: new TsPackets(), primed: false, pending: 0, output: false, stderrTail: '', error: null, exited };
    this.run = run;
    this.gop = [];
    this.gopBytes = 0;
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      exitedResolve();
      this.onExit(run, code, signal);
    };
    stdin.on('error', () => undefined); // EPIPE when ffmpeg died: its exit is handled below
    child.on('error', (err) => {
      run.error = errorMessage(err);
      if (child.pid === undefined) finish(null, null); // never started: no 'close' to wait for
    });
    child.once('close', finish);
    muxer.on('ffmpegStderr', (d: Buffer) => {
      run.stderrTail = (run.stderrTail + d.toString('utf8')).slice(-2000);
    });
    muxer.on('mpeg1data', (d: Buffer) => this.onData(run, d));
    this.log.info({ pid: child.pid, args: muxer.spawnOptions.join(' ') }, 'mpeg1 preview started');
    return true;
  }

  private onData(run: Run, d: Buffer): void {
    if (this.run !== run) return;
    if (!run.output) {
      run.output = true;
      this.backoff.reset();
      for (const v of this.viewers) v.status('running');
    }
    for (const chunk of run.packets.push(d)) {
      this.bytes += chunk.data.length;
      if (chunk.gopStart) {
        this.gop = [];
        this.gopBytes = 0;
      }
      if (chunk.gopStart || this.gop.length > 0) {
        this.gop.push(chunk.data);
        this.gopBytes += chunk.data.length;
        if (this.gopBytes > MAX_GOP_CACHE_BYTES) this.gop = [];
      }
      for (const v of this.viewers) v.data(chunk);
    }
    if (run.pending > 0) {
      run.pending = 0;
      for (const v of this.viewers) v.frame();
    }
  }

  private onExit(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.run !== run) return; // halted: expected
    this.run = undefined;
    const tail = run.stderrTail.trim().split('\n').slice(-2).join(' | ');
    this.lastError = (run.error ?? `ffmpeg exited (${signal ?? code})${tail ? `: ${tail}` : ''}`).slice(0, 500);
    this.log.warn({ code, signal, stderr: tail }, 'mpeg1 preview ffmpeg exited');
    if (this.closed || this.viewers.size === 0) return;
    if (!run.output) return this.unavailable(this.lastError); // never worked: the page falls back to JPEG
    for (const v of this.viewers) v.status('retrying', this.lastError);
    this.stopSampling();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed && this.viewers.size > 0) this.begin();
    }, this.backoff.next());
    this.restartTimer.unref();
  }

  private unavailable(message: string): void {
    this.lastError = message;
    this.log.info({ reason: message }, 'mpeg1 preview unavailable');
    for (const v of [...this.viewers]) v.status('unavailable', message);
    void this.halt();
  }

  private stopSampling(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /**
   * Stops ffmpeg and reaps it: end of input first (blocked on its stdin, ffmpeg does not act on SIGTERM), then
   * SIGTERM and SIGKILL if it is still there.
   */
  private async halt(): Promise<void> {
    this.stopSampling();
    clearTimeout(this.restartTimer);
    clearTimeout(this.lingerTimer);
    this.restartTimer = this.lingerTimer = undefined;
    this.gop = [];
    this.gopBytes = 0;
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    run.stdin.end();
    const ended = await Promise.race([run.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref())]);
    if (!ended) await terminate(run.child, 2000);
    await run.exited;
    this.log.info({ frames: this.frames, bytes: this.bytes }, 'mpeg1 preview stopped');
  }
}
