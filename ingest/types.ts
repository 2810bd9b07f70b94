// Public types of the camera source: frames, status, stats.
import type { RgbFrame } from './frame.js';

/**
 * Where the picture sits inside a letterboxed frame. A point (x, y) of the frame maps back to camera
 * pixels as ((x - pad_x) / scale, (y - pad_y) / scale).
 */
export interface Letterbox {
  /** Frame pixels per camera pixel. */
  scale: number;
  /** Width of the grey band at the left (and, ±1, at the right), frame pixels. */
  pad_x: number;
  /** Height of the grey band at the top (and, ±1, at the bottom), frame pixels. */
  pad_y: number;
}

/**
 * One decoded frame, already at the detector's input size. `data` (packed RGB, see RgbFrame) is owned by the
 * consumer once handed out (transferable).
 */
export interface Frame extends RgbFrame {
  camera: string;
  /** Camera frame size as ffmpeg decoded it (falls back to the configured `frame` size until known). */
  source_width: number;
  source_height: number;
  /** Present when the detector resizes with `letterbox`. */
  letterbox?: Letterbox;
  /** Wall clock (ms since epoch) when the frame was complete on our side of the pipe. */
  captured_at_ms: number;
  /** performance.now() at the same moment; for durations and ordering. */
  mono_ms: number;
  /** Per-source frame counter over the source's life (survives ffmpeg restarts), starts at 1. */
  seq: number;
}

export type CameraState = 'starting' | 'online' | 'offline' | 'stalled';

/**
 * Why a camera is not online. `stalled`: frames stopped while ffmpeg was connected (watchdog);
 * `timeout`: no first frame in time, or ffmpeg reported a socket timeout; `exited`: ffmpeg ended for another
 * or unknown reason (see `detail`); `stopped`: the source was stopped.
 */
export type CameraReason =
  | 'unauthorized'
  | 'connection_refused'
  | 'unreachable'
  | 'not_found'
  | 'unsupported_codec'
  | 'timeout'
  | 'stalled'
  | 'exited'
  | 'stopped';

export interface CameraStatus {
  camera: string;
  state: CameraState;
  /** null when online or starting for the first time. */
  reason: CameraReason | null;
  /** Human-readable cause: the last ffmpeg error line (credentials removed) or what the watchdog saw. */
  detail: string | null;
  /** Wall clock (ms since epoch) when `state` last changed. */
  since_ms: number;
}

export interface CameraStats {
  camera: string;
  state: CameraState;
  /** Frames arriving from ffmpeg per second (after its fps filter), over the last few seconds. */
  camera_fps: number;
  /** Frames handed to the consumer per second. */
  process_fps: number;
  /** Frames replaced while waiting for a busy consumer, per second. */
  skipped_fps: number;
  /** Frames dropped by motion gating (still scene), per second. */
  motion_skipped_fps: number;
  /** ffmpeg restarts (after an exit, a failure or a stall) in the last hour. */
  reconnects_last_hour: number;
  /** Watchdog stalls in the last hour. */
  stalls_last_hour: number;
  frames_total: number;
  processed_total: number;
  skipped_total: number;
  motion_skipped_total: number;
  /** ms since the last frame from ffmpeg; null before the first. */
  last_frame_age_ms: number | null;
  /** pid of the current ffmpeg, null while none runs. */
  ffmpeg_pid: number | null;
  source_width: number;
  source_height: number;
}
