// The frame size of a camera for `provision`, read the way the agent reads the camera (the same ffmpeg command,
// credentials through a pipe, never on the command line), and, when it cannot be read, why: 401 unauthorized,
// connection refused, not found, timeout… with doctor's fix for that reason.
import { CameraSchema, type CameraConfig } from '../../../config/schema/index.js';
import { GrabError, grabFrame } from '../../../ingest/index.js';
import { errorMessage } from '../../../core/errors.js';
import { cameraFix } from '../doctor/checks/camera.js';
import { cameraEnvKey, type CameraInput } from './inputs.js';

/** Longest a probe waits for the first frame, ms (a camera that sends nothing is a timeout). */
export const PROBE_TIMEOUT_MS = 15_000;

/** The stream's frame size, or what went wrong (`problem`) and what to do about it (`fix`). */
export type ProbeResult = { frame: { width: number; height: number } } | { problem: string; fix: string };

/** The probe's ffmpeg target: small, only the stream's own size matters. */
const TARGET = { width: 64, height: 64, resize: 'stretch' } as const;

/** Stands in for the unknown frame size; grabFrame answers with it only when ffmpeg did not say the size. */
const UNKNOWN = { width: 8191, height: 8191 };

/** The camera as a config entry (frame size not known yet: the stream says it). */
function asConfig(cam: CameraInput): CameraConfig {
  return CameraSchema.parse({ id: cam.id, url: cam.url, username: cam.username, password: cam.password, frame: UNKNOWN });
}

const GIVE_FRAME = (cam: CameraInput): string => `give --frame ${cam.id}=WIDTHxHEIGHT`;

/** Why a camera gave no picture and what to do, in provision's terms (its flags, not the config's keys). */
function explain(cam: CameraInput, index: number, err: unknown): { problem: string; fix: string } {
  if (!(err instanceof GrabError)) return { problem: `cannot probe it: ${errorMessage(err)}`, fix: GIVE_FRAME(cam) };
  const fix =
    err.reason === 'unauthorized'
      ? `check --camera-user / --camera-password for ${cam.id} (or ROADSIDE_CAMERA_${cameraEnvKey(cam.id)}_PASSWORD)`
      : cameraFix(asConfig(cam), index, err.reason).replace(/\bcameras\[\d+\]\.url\b/, '--camera');
  // ffmpeg names the credential-carrying input "pipe:3" (ffmpeg-args.ts): not the technician's concern.
  const said = err.message.replace(/^pipe:\d+: /, '');
  return { problem: `${err.reason === 'unauthorized' ? '401 unauthorized' : err.reason.replace(/_/g, ' ')} (${said})`, fix: `${fix}; or ${GIVE_FRAME(cam)}` };
}

export async function probeCamera(cam: CameraInput, index: number, ffmpegPath: string): Promise<ProbeResult> {
  let config: CameraConfig;
  try {
    config = asConfig(cam);
  } catch (err) {
    return { problem: `cannot probe it: ${errorMessage(err)}`, fix: GIVE_FRAME(cam) };
  }
  try {
    const frame = await grabFrame(config, TARGET, { ffmpegPath, timeoutMs: PROBE_TIMEOUT_MS });
    if (frame.source_width === UNKNOWN.width && frame.source_height === UNKNOWN.height) return { problem: 'a picture came, but ffmpeg did not say its size', fix: GIVE_FRAME(cam) };
    return { frame: { width: frame.source_width, height: frame.source_height } };
  } catch (err) {
    return explain(cam, index, err);
  }
}
