// Offline analysis: one camera's pipeline (the same CameraPipeline as `run`) on a recorded clip, as fast as the box allows.
import type { Config } from '../config/schema/index.js';
import type { EventDraft } from '../contract/event.js';
import { AgentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { CameraAnalytics, EvidenceStore } from './analytics/index.js';
import { readClip } from './camera/clip.js';
import { Detector } from './detector/index.js';
import { CameraPipeline, type FrameProducer } from './pipeline.js';

/** Offline the worker gets the next frame while the main thread analyses the last one. */
export const ANALYZE_FRAMES_IN_FLIGHT = 2;

export interface AnalyzeSummary {
  frames: number;
  detections: number;
  events: number;
  wall_ms: number;
  fps: number;
  inference_ms_mean: number;
  /** Main-thread time per frame outside the detector (tracker, analytics), ms. */
  main_ms_mean: number;
}

export interface AnalyzeOptions {
  /** Frames per second taken from the clip; default the camera's detection_fps; null: every frame. */
  fps?: number | null;
  /** Write violation evidence here; default none. */
  evidenceDir?: string;
}

/**
 * Runs detector (with the camera's region of interest), tracker and analytics of `cameraId` over `clip` with
 * the clip's own timestamps and hands every event to `onEvent`. A failed detection fails the analysis.
 */
export async function analyzeClip(config: Config, cameraId: string, clip: string, onEvent: (e: EventDraft) => void, log: Logger, opts: AnalyzeOptions = {}): Promise<AnalyzeSummary> {
  const camera = config.cameras.find((c) => c.id === cameraId);
  if (!camera) throw new AgentError('UNKNOWN_CAMERA', `no camera "${cameraId}" in the config (cameras: ${config.cameras.map((c) => c.id).join(', ')})`);
  const detector = new Detector(config.detector, log);
  const evidence = opts.evidenceDir ? EvidenceStore.forDir(opts.evidenceDir, config.analytics.evidence.max_mb) : false;
  const analytics = new CameraAnalytics(camera, config.analytics, config.device, onEvent, log, { evidence });
  const fps = opts.fps === null ? undefined : (opts.fps ?? camera.detection_fps);
  const source: FrameProducer = { frames: () => readClip(clip, { ...detector.inputSize, resize: detector.resize }, { fps, source: camera.frame }) };
  const pipeline = new CameraPipeline({ camera, source, detector, analytics, clockSynced: () => true, log, frames_in_flight: ANALYZE_FRAMES_IN_FLIGHT, on_detect_error: 'fail' });
  await detector.start();
  const t0 = performance.now();
  try {
    await pipeline.run();
    await analytics.flush();
  } finally {
    await detector.stop();
  }
  const wall_ms = performance.now() - t0;
  const { frames, detections, main_ms_mean } = pipeline.stats();
  return {
    frames,
    detections,
    events: analytics.stats().events_total,
    wall_ms: Math.round(wall_ms),
    fps: Math.round((frames / wall_ms) * 1000 * 10) / 10,
    inference_ms_mean: Math.round(detector.stats().inference_ms_mean * 10) / 10,
    main_ms_mean,
  };
}
