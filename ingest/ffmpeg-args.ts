// The ffmpeg command line for one camera: input (RTSP / file), hardware decode preset, fps + scaling filter,
// raw RGB on stdout, and (recording ring on) the original stream copied into segments by the same process.
// Pure functions, no process handling.
import { fileURLToPath } from 'node:url';
import { AgentError } from '../core/errors.js';
import type { CameraConfig } from '../config/schema/index.js';
import type { Letterbox } from './types.js';

export type ResizeMode = 'stretch' | 'letterbox';

/** What the detector wants: its input size and how frames are fitted to it. */
export interface FrameTarget {
  width: number;
  height: number;
  resize: ResizeMode;
}

export class CameraConfigError extends AgentError {
  constructor(message: string) {
    super('CAMERA_CONFIG', message);
  }
}

/**
 * Decode presets, as ffmpeg input options (placed before `-i`). `none` decodes in software with 2 threads:
 * H.264 frame threading delays output by (threads - 1) frames, and ffmpeg's default (cores + 1) would add
 * ~4 frames of latency on a 4-core box; 2 keeps one frame of delay and some parallelism. The hardware decoders are H.264 ones: an
 * H.265 camera with rkmpp / v4l2m2m needs the hevc_* decoder (not handled yet). h264_rkmpp exists only in
 * Rockchip-enabled ffmpeg builds (e.g. ffmpeg-rockchip), not in Debian's ffmpeg; a missing decoder surfaces
 * as status offline / unsupported_codec. vaapi frames are downloaded to system memory before scaling.
 */
export const HWDECODE_ARGS: Readonly<Record<CameraConfig['hwdecode'], readonly string[]>> = {
  none: ['-threads', '2'],
  rkmpp: ['-c:v', 'h264_rkmpp'],
  v4l2m2m: ['-c:v', 'h264_v4l2m2m'],
  vaapi: ['-hwaccel', 'vaapi'],
};

/** Letterbox bands are this grey (114, as in the YOLO family's preprocessing). */
export const LETTERBOX_PAD_RGB = 114;

/**
 * Letterbox geometry exactly as ffmpeg computes it for
 * `scale=W:H:force_original_aspect_ratio=decrease,pad=W:H:(ow-iw)/2:(oh-ih)/2` on an RGB frame:
 * scaled size rounded to nearest (av_rescale), pad offsets truncated.
 */
export function letterboxGeometry(srcW: number, srcH: number, dstW: number, dstH: number): Letterbox & { scaled_width: number; scaled_height: number } {
  const scaledW = Math.min(dstW, Math.round((dstH * srcW) / srcH));
  const scaledH = Math.min(dstH, Math.round((dstW * srcH) / srcW));
  return {
    scale: Math.min(dstW / srcW, dstH / srcH),
    pad_x: Math.trunc((dstW - scaledW) / 2),
    pad_y: Math.trunc((dstH - scaledH) / 2),
    scaled_width: scaledW,
    scaled_height: scaledH,
  };
}

export type SourceKind = 'rtsp' | 'file' | 'url';

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

export function sourceKind(url: string): SourceKind {
  const m = SCHEME.exec(url);
  if (!m) return 'file';
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'rtsp' || scheme === 'rtsps') return 'rtsp';
  if (scheme === 'file') return 'file';
  return 'url';
}

/** Percent-encode everything but RFC 3986 unreserved characters (encodeURIComponent leaves `'()*!` alone). */
export function encodeUserinfo(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The URL with `user:password@` inserted, both percent-encoded. Throws if the URL already carries credentials. */
export function urlWithCredentials(url: string, username: string | undefined, password: string | undefined): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) throw new CameraConfigError(`camera url is not a URL with an authority: ${JSON.stringify(url.slice(0, 8))}…`);
  const [, scheme, authority, rest] = m;
  if (authority!.includes('@')) throw new CameraConfigError('camera url must not contain credentials: use username/password');
  if (username === undefined && password === undefined) return url;
  const userinfo = password === undefined ? encodeUserinfo(username ?? '') : `${encodeUserinfo(username ?? '')}:${encodeUserinfo(password)}`;
  return `${scheme}${userinfo}@${authority}${rest}`;
}

/** A string as one ffconcat token: single-quoted, embedded quotes as '\'' (FFmpeg quoting rules). */
function ffconcatQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

export interface FfmpegPlan {
  kind: SourceKind;
  /** argv after the program name. Never contains credentials. */
  args: string[];
  /**
   * When set, write this (an ffconcat script holding the URL with credentials) to the child's fd 3 and close
   * it; the args read the input from `pipe:3`.
   */
  script?: string;
  /** The input as it may be logged (no credentials). */
  display: string;
  /** Set when this run records the ring: its run id (segment names), and stderr carries showinfo per frame. */
  recording?: { run: string };
}

/** The recording ring's output of one ffmpeg run (see recording.ts). */
export interface RecordingOutput {
  /** Run id: prefix of the run's segment files and of its segment list. */
  run: string;
  /** The camera's ring directory (absolute). */
  dir: string;
  segment_s: number;
  /** Entries kept in the run's segment list (a sliding window: the ring indexes them as they come). */
  list_size: number;
}

/** Characters the tee muxer's two levels of option parsing would take for syntax: refused in ring paths. */
const TEE_SPECIAL = /[\\:|[\]'\s]/;

/** Whether a ring path can go into the tee muxer's options as it is. */
export function teeSafePath(path: string): boolean {
  return !TEE_SPECIAL.test(path);
}

/** Segment file of a run: `<run>-00012.ts`. */
export function segmentPattern(run: string): string {
  return `${run}-%05d.ts`;
}

/** The run's segment list (CSV: file, start s, end s in the run's stream time). */
export function segmentListName(run: string): string {
  return `${run}.csv`;
}

export interface PlanOptions {
  /** ffmpeg socket I/O timeout for RTSP, ms (a backstop; the source's own watchdog is shorter). */
  socketTimeoutMs: number;
  /** Decode exactly this many frames and exit (snapshots); no fps filter, no looping, no -re. */
  frames?: number;
  /** RTSP probing time, µs. Default 0 (with a 32-byte probe size): see buildFfmpegPlan. */
  analyzeDurationUs?: number;
  /** ffmpeg log level for stderr; `level+` prefixes are always on (the stderr parser relies on them). */
  logLevel?: 'info' | 'warning' | 'error';
  /**
   * Also record the original stream (`-c copy`, no re-encode) into the ring's segments, from the same input:
   * one `tee` output whose segment slave may fail (disk full) without stopping the frames (`onfail=ignore`).
   */
  recording?: RecordingOutput;
}

const RTSP_PROTOCOLS = 'pipe,rtsp,rtsps,rtp,srtp,tcp,udp,tls,crypto,data';

function formatNumber(n: number): string {
  // Plain decimal, no exponent, enough digits for 1/3 fps and the like.
  return Number.isInteger(n) ? String(n) : n.toFixed(6).replace(/0+$/, '');
}

/**
 * Keeps the first frame of each 1/fps slot of stream time, with its own timestamp (the `fps` filter hands out
 * a frame relabelled to the slot's time, up to half a slot away from its content). Only with `-fps_mode
 * passthrough`: a constant-rate muxer would duplicate the kept frames up to the input rate. The 1 ms shifts
 * slot edges off frame times that land on them (0.1 × 3 is 0.30000000000000004).
 */
export function exactRateFilter(fps: number): string {
  const f = formatNumber(fps);
  return `select='isnan(prev_selected_t)+not(eq(floor(t*${f}+0.001),floor(prev_selected_t*${f}+0.001)))'`;
}

/** Logs every frame passing it with its stream time (`n: 3 pts: … pts_time:0.6`) at info level; no checksum work. */
export const SHOWINFO = 'showinfo=checksum=0';

export interface FilterOptions {
  /** Exact frame times: `exactRateFilter` instead of `fps`, and showinfo after it (needs `-fps_mode passthrough`). */
  exact?: boolean;
}

/** The filter chain: rate first (so only kept frames are scaled), then scale (+ pad) to the target, RGB. */
export function filterChain(target: FrameTarget, fps: number | undefined, opts: FilterOptions = {}): string {
  const { width: w, height: h } = target;
  const parts: string[] = [];
  if (opts.exact) {
    if (fps !== undefined) parts.push(exactRateFilter(fps));
    parts.push(SHOWINFO);
  } else if (fps !== undefined) parts.push(`fps=${formatNumber(fps)}`);
  if (target.resize === 'letterbox') {
    parts.push(`scale=${w}:${h}:force_original_aspect_ratio=decrease:flags=bilinear`, 'format=rgb24');
    const pad = LETTERBOX_PAD_RGB.toString(16).padStart(2, '0');
    parts.push(`pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2:color=0x${pad}${pad}${pad}`);
  } else {
    parts.push(`scale=${w}:${h}:flags=bilinear`, 'format=rgb24');
  }
  return parts.join(',');
}

/**
 * Builds the ffmpeg invocation.
 *
 * Credentials: ffmpeg's RTSP client takes them only inside the URL, and argv is world-readable in
 * /proc/PID/cmdline. So when a camera has credentials the URL is not put on argv: ffmpeg reads a one-entry
 * ffconcat script from an inherited pipe (`-f concat -safe 0 -i pipe:3`), and the RTSP options travel as
 * `option` lines of that script. Nothing touches the disk. Without credentials the URL goes on argv as usual.
 */
export function buildFfmpegPlan(cam: CameraConfig, target: FrameTarget, opts: PlanOptions): FfmpegPlan {
  if (/[\r\n\0]/.test(cam.url)) throw new CameraConfigError('camera url contains a line break or NUL');
  const kind = sourceKind(cam.url);
  const grab = opts.frames !== undefined;
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', `level+${opts.logLevel ?? 'info'}`];
  let script: string | undefined;
  let display: string;

  if (kind === 'file') {
    const file = cam.url.toLowerCase().startsWith('file://') ? fileURLToPath(cam.url) : cam.url;
    display = file;
    // -re: read at the clip's own rate, like a camera; -stream_loop -1: forever (timestamps keep increasing).
    if (!grab) args.push('-re', '-stream_loop', '-1');
    args.push(...HWDECODE_ARGS[cam.hwdecode], '-i', file);
  } else if (kind === 'rtsp') {
    display = urlWithCredentials(cam.url, undefined, undefined);
    const rtspOpts: Array<[string, string]> = [
      ['rtsp_transport', cam.transport],
      ['timeout', String(Math.round(opts.socketTimeoutMs * 1000))],
      ['allowed_media_types', 'video'],
      // Minimal probing: the stream parameters come from the SDP (sprop-parameter-sets) or the first
      // keyframe. ffmpeg's default probing (5 s / 5 MB, and packets read meanwhile are buffered) delays the
      // first frame by seconds and then delivers a burst of stale frames.
      ['analyzeduration', String(opts.analyzeDurationUs ?? 0)],
      ['probesize', '32'],
    ];
    if (cam.username !== undefined || cam.password !== undefined) {
      const url = urlWithCredentials(cam.url, cam.username, cam.password);
      script = ['ffconcat version 1.0', `file ${ffconcatQuote(url)}`, ...rtspOpts.map(([k, v]) => `option ${k} ${ffconcatQuote(v)}`), ''].join('\n');
      // The concat layer probes the (already opened) inner stream again: keep that minimal too.
      const probe = ['-analyzeduration', String(opts.analyzeDurationUs ?? 0), '-probesize', '32'];
      args.push(...HWDECODE_ARGS[cam.hwdecode], ...probe, '-protocol_whitelist', RTSP_PROTOCOLS, '-f', 'concat', '-safe', '0', '-i', 'pipe:3');
    } else {
      for (const [k, v] of rtspOpts) args.push(`-${k}`, v);
      args.push(...HWDECODE_ARGS[cam.hwdecode], '-i', cam.url);
    }
  } else {
    // Other network inputs (http, srt, udp…): passed through; credentials, if any, in the URL on argv.
    display = urlWithCredentials(cam.url, undefined, undefined);
    const url = urlWithCredentials(cam.url, cam.username, cam.password);
    args.push(...HWDECODE_ARGS[cam.hwdecode], '-i', url);
  }

  const rec = grab ? undefined : opts.recording;
  if (rec) {
    args.push(...teeOutput(rec, filterChain(target, cam.detection_fps, { exact: true })));
  } else {
    args.push('-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filterChain(target, grab ? undefined : cam.detection_fps));
    // passthrough: never let ffmpeg's own vsync duplicate frames to fill gaps.
    args.push('-fps_mode', 'passthrough');
    if (grab) args.push('-frames:v', String(opts.frames));
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  }
  const plan: FfmpegPlan = { kind, args, display };
  if (script !== undefined) plan.script = script;
  if (rec) plan.recording = { run: rec.run };
  return plan;
}

/**
 * One `tee` output with two streams of the same input: stream 0 decoded, filtered and raw RGB to stdout (the
 * detector's frames, with showinfo for their stream times); stream 1 copied as it came into 2 s MPEG-TS
 * segments and a CSV list of their stream times. The segment slave has `onfail=ignore`: a full disk ends the
 * recording of this run (ffmpeg says "Slave muxer #1 failed"), the frames go on. Two plain outputs would not:
 * a failing output ends the whole ffmpeg.
 */
function teeOutput(rec: RecordingOutput, chain: string): string[] {
  if (TEE_SPECIAL.test(rec.dir) || TEE_SPECIAL.test(rec.run)) throw new CameraConfigError(`recording directory ${JSON.stringify(rec.dir)} contains a character ffmpeg's tee muxer parses (\\ : | [ ] ' or a space)`);
  const segment = [
    'select=1',
    'f=segment',
    'onfail=ignore',
    `segment_time=${formatNumber(rec.segment_s)}`,
    'reset_timestamps=1',
    'segment_format=mpegts',
    `segment_list=${rec.dir}/${segmentListName(rec.run)}`,
    'segment_list_type=csv',
    `segment_list_size=${rec.list_size}`,
  ].join(':');
  return [
    '-map', '0:v:0', '-map', '0:v:0', '-an', '-sn', '-dn',
    '-filter:v:0', chain, '-c:v:0', 'rawvideo', '-pix_fmt:v:0', 'rgb24', '-fps_mode:v:0', 'passthrough',
    '-c:v:1', 'copy',
    '-f', 'tee', `[select=0:f=rawvideo]pipe\\:1|[${segment}]${rec.dir}/${segmentPattern(rec.run)}`,
  ];
}
