// Camera ingest: one supervised ffmpeg per camera, frames at the detector's input size.
export { CameraSource, type CameraSourceOptions } from './source.js';
export { CameraError } from './errors.js';
export { grabFrame, GrabError, type GrabOptions } from './grab.js';
export { HWDECODE_ARGS, LETTERBOX_PAD_RGB, CameraConfigError, buildFfmpegPlan, letterboxGeometry, type FrameTarget, type ResizeMode } from './ffmpeg-args.js';
export { MotionGate, type MotionOptions } from './motion.js';
export { MONO_CLOCK_ID, RING_INDEX_FILE, RecordingRing, type RecordingRingOptions, type RecordingState, type RecordingStats, type RingIndex, type RingSegment } from './recording.js';
export { findSetpriv, type ParentDeathMode } from './child.js';
export type { CameraReason, CameraState, CameraStats, CameraStatus, Frame, Letterbox } from './types.js';
