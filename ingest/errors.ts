import { AgentError } from '../core/errors.js';

/** Errors of the camera source (START_ABORTED, CAMERA_CONSUMER_BUSY) and of grabFrame (GrabError). */
export class CameraError extends AgentError {}
