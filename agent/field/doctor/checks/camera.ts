// Camera: reachable, authenticated and decoding at the configured fps, measured with the agent's own CameraSource.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CameraConfig } from '../../../../config/schema/index.js';
import { CameraSource, type CameraReason, type CameraStats, type CameraStatus, type FrameTarget } from '../../../../ingest/index.js';
import { silentLogger } from '../../../../core/log.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

export interface CameraCheckOptions {
  /** Seconds of stream measured after the first frame. */
  seconds: number;
  /** Longest wait for the first frame, ms. */
  connectMs: number;
  ffmpegPath?: string;
}

/** fps below this share of `detection_fps` is a warning. */
export const FPS_WARN_RATIO = 0.8;

/** Reasons a retry cannot cure: fail at the first one. Others (refused, timeout…) get a few quick retries. */
const DEFINITIVE: ReadonlySet<CameraReason> = new Set(['unauthorized', 'not_found', 'unsupported_codec']);
/** Quick retries before a transient reason counts as the answer. */
const RETRIES = 2;

/** How long a camera is watched after its first frame: `seconds`, but at least 3 frame intervals (0.2 fps: 15 s). */
export const measureMs = (cam: CameraConfig, seconds: number): number => Math.max(seconds, 3 / cam.detection_fps) * 1000;

/** Same key as the config loader's ROADSIDE_CAMERA_<ID>_PASSWORD override (config/loader.ts envOverrides). */
export const cameraEnvKey = (id: string): string => id.toUpperCase().replace(/[^A-Z0-9]/g, '_');

const isRtsp = (url: string): boolean => /^rtsps?:\/\//i.test(url);

function rtspParts(url: string): { host: string; port: string; path: string } {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: u.port || (u.protocol === 'rtsps:' ? '322' : '554'), path: u.pathname };
  } catch {
    return { host: '?', port: '554', path: '?' };
  }
}

/** The one-line fix for a camera that gives no picture, by the reason CameraSource reported. */
export function cameraFix(cam: CameraConfig, index: number, reason: CameraReason | null): string {
  const at = `cameras[${index}]`;
  const rtsp = isRtsp(cam.url);
  const { host, port, path } = rtspParts(cam.url);
  switch (reason) {
    case 'unauthorized':
      return `check camera username/password (ROADSIDE_CAMERA_${cameraEnvKey(cam.id)}_PASSWORD in secrets.env, ${at}.username)`;
    case 'connection_refused':
      return `camera unreachable: check cabling/IP/port ${port} (${host} refuses RTSP connections)`;
    case 'unreachable':
      return `camera unreachable: check cabling/IP/port ${port} (no route to ${host}: cable, PoE, VLAN, the box's address)`;
    case 'not_found':
      return rtsp ? `check the stream path (${path} in ${at}.url; see the camera's RTSP settings)` : `check the video file path in ${at}.url`;
    case 'timeout':
      return `the camera sends no picture: check its stream is enabled (H.264)${cam.transport === 'udp' ? `, or set ${at}.transport: tcp (UDP may be blocked)` : ''}`;
    case 'unsupported_codec':
      return cam.hwdecode === 'none'
        ? "set the camera's stream to H.264: this codec cannot be decoded here"
        : `the ${cam.hwdecode} hardware decoder failed: set ${at}.hwdecode: none, or set the camera to H.264`;
    case 'stalled':
      return "the stream stops: check the link to the camera (packet loss, PoE budget) and the camera's bitrate";
    case 'exited':
    case 'stopped':
    case null:
      return `check ${at}.url and the camera's stream settings (see the detail)`;
  }
}

/**
 * Runs a CameraSource like the agent does (same ffmpeg command, same frame size) until `seconds` after the first
 * frame, or until it fails: at once for a definitive reason (401, 404, codec), after a few quick retries otherwise.
 */
export async function checkCamera(cam: CameraConfig, index: number, target: FrameTarget, opts: CameraCheckOptions, signal: AbortSignal): Promise<CheckOutcome> {
  const src = new CameraSource(cam, target, silentLogger(), {
    ffmpegPath: opts.ffmpegPath,
    backoff: { initial_ms: 300, max_ms: 1_000, jitter: 0.3 },
    startTimeoutMs: opts.connectMs,
  });
  const t0 = performance.now();
  // Set from the status events: the first frame (frames counted before it) and the drops after it.
  const seen: { online: { mono: number; frames: number } | null; drops: number } = { online: null, drops: 0 };
  src.on('status', (s) => {
    if (s.state === 'online' && seen.online === null) seen.online = { mono: performance.now(), frames: src.stats().frames_total };
    else if (seen.online !== null && s.state !== 'online' && s.reason !== 'stopped') seen.drops++;
  });
  await src.start(signal);
  let stats: CameraStats;
  let status: CameraStatus;
  let statsMono: number;
  try {
    for (;;) {
      try {
        await sleep(100, undefined, { signal });
      } catch {
        break; // aborted: the runner has reported the timeout
      }
      const now = performance.now();
      if (seen.online !== null) {
        if (now - seen.online.mono >= measureMs(cam, opts.seconds)) break;
        continue;
      }
      const st = src.status();
      if (st.state === 'offline' && st.reason !== null && (DEFINITIVE.has(st.reason) || src.stats().reconnects_last_hour >= RETRIES)) break;
      if (now - t0 >= opts.connectMs) break;
    }
    stats = src.stats();
    statsMono = performance.now();
    status = src.status();
  } finally {
    await src.stop();
  }

  const first = seen.online;
  const drops = seen.drops;
  const figures: Record<string, unknown> = {
    url: cam.url,
    transport: isRtsp(cam.url) ? cam.transport : null,
    configured_fps: cam.detection_fps,
    reconnects: stats.reconnects_last_hour,
  };
  // ffmpeg names the credential-carrying input "pipe:3" (ffmpeg-args.ts): not the technician's concern.
  const said = status.detail?.replace(/^pipe:\d+: /, '') ?? null;
  if (first === null) {
    const reason = status.reason ?? 'timeout';
    const detail = status.reason === null ? `no picture within ${(opts.connectMs / 1000).toFixed(0)} s` : `no picture: ${reason}${said ? ` (${said})` : ''}`;
    return fail(detail, cameraFix(cam, index, reason), { ...figures, state: status.state, reason });
  }

  // Rate over whole frame intervals, from the first frame to the last one seen.
  const lastMono = statsMono - (stats.last_frame_age_ms ?? 0);
  const intervals = stats.frames_total - first.frames - 1;
  const span_s = (lastMono - first.mono) / 1000;
  const fps = intervals > 0 && span_s > 0 ? Math.round((intervals / span_s) * 100) / 100 : 0;
  const size = `${stats.source_width}x${stats.source_height}`;
  Object.assign(figures, {
    fps,
    first_frame_ms: Math.round(first.mono - t0),
    frames: stats.frames_total - first.frames,
    measured_s: Math.round(span_s * 10) / 10,
    source_size: size,
    configured_size: `${cam.frame.width}x${cam.frame.height}`,
    drops,
  });
  const head = `${fps.toFixed(1)} fps (configured ${cam.detection_fps}), ${size}, first frame after ${((first.mono - t0) / 1000).toFixed(1)} s`;

  if (status.state !== 'online') {
    return fail(`picture lost after ${span_s.toFixed(1)} s: ${status.reason ?? status.state}${said ? ` (${said})` : ''}`, cameraFix(cam, index, status.reason), figures);
  }
  if (fps < FPS_WARN_RATIO * cam.detection_fps) {
    return warn(
      `${head}: below ${Math.round(FPS_WARN_RATIO * 100)} % of the configured rate`,
      `the camera or the box cannot keep up: lower cameras[${index}].detection_fps, set hwdecode, or lower the camera's resolution/bitrate`,
      figures,
    );
  }
  if (drops > 0) {
    return warn(`${head}, but the stream dropped ${drops} time(s) in ${Math.round(span_s)} s`, "check the link to the camera (cable, PoE, packet loss) and the camera's load", figures);
  }
  if (stats.source_width !== cam.frame.width || stats.source_height !== cam.frame.height) {
    return warn(
      `${head}, but the config says ${cam.frame.width}x${cam.frame.height}`,
      `set cameras[${index}].frame to { width: ${stats.source_width}, height: ${stats.source_height} } (and redraw lines/zones), or set the camera back to ${cam.frame.width}x${cam.frame.height}`,
      figures,
    );
  }
  return pass(head, figures);
}
