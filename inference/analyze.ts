// Offline analysis: one camera's whole pipeline on a recorded clip, as fast as the box allows.
import type { Config } from '../config/schema/index.js';
import type { EventDraft } from '../contract/event.js';
import { AgentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { CameraAnalytics, EvidenceStore } from './analytics/index.js';
import { readClip } from './camera/clip.js';
import { Detector, type DetectResult } from './detector/index.js';

export interface AnalyzeSummary {
  frames: number;
  detections: number;
  events: number;
  wall_ms: number;
  fps: number;
  inference_ms_mean: number;
}

/**
 * Runs detector, tracker and analytics of `cameraId` over `clip` with the clip's own timestamps (at the
 * camera's detection fps) and hands every event to `onEvent`. Two frames are kept in flight so the
 * detector's worker never waits for the main thread.
 */
export async function analyzeClip(
  config: Config,
  cameraId: string,
  clip: string,
  onEvent: (e: EventDraft) => void,
  log: Logger,
  opts: { fps?: number | null; evidenceDir?: string } = {},
): Promise<AnalyzeSummary> {
  const camera = config.cameras.find((c) => c.id === cameraId);
  if (!camera) throw new AgentError('UNKNOWN_CAMERA', `no camera "${cameraId}" in the config (cameras: ${config.cameras.map((c) => c.id).join(', ')})`);
  const detector = new Detector(config.detector, log);
  const evidence = opts.evidenceDir ? EvidenceStore.forDir(opts.evidenceDir, config.analytics.evidence.max_mb) : false;
  const analytics = new CameraAnalytics(camera, config.analytics, config.device, onEvent, log, { evidence });
  await detector.start();
  const t0 = performance.now();
  let frames = 0;
  let detections = 0;
  try {
    const target = { ...detector.inputSize, resize: detector.resize };
    const fps = opts.fps === null ? undefined : (opts.fps ?? camera.detection_fps);
    const source = readClip(clip, target, { fps, source: camera.frame });
    type InFlight = { frame: { captured_at_ms: number; mono_ms: number; width: number; height: number }; result: Promise<DetectResult> };
    let pending: InFlight | undefined;
    const finish = async (p: InFlight) => {
      const r = await p.result;
      if (r.status !== 'done') return;
      frames += 1;
      detections += r.detections.length;
      const data = new Uint8Array(r.buffer, 0, p.frame.width * p.frame.height * 3);
      analytics.update({ camera_id: camera.id, captured_at_ms: p.frame.captured_at_ms, mono_ms: p.frame.mono_ms, clock_synced: true, frame: { data, width: p.frame.width, height: p.frame.height } }, r.detections);
    };
    for await (const frame of source) {
      const next: InFlight = { frame, result: detector.detect(camera.id, frame) };
      if (pending) await finish(pending);
      pending = next;
    }
    if (pending) await finish(pending);
    await analytics.flush();
  } finally {
    await detector.stop();
  }
  const wall_ms = performance.now() - t0;
  const stats = detector.stats();
  return {
    frames,
    detections,
    events: analytics.stats().events_total,
    wall_ms: Math.round(wall_ms),
    fps: Math.round((frames / wall_ms) * 1000 * 10) / 10,
    inference_ms_mean: Math.round(stats.inference_ms_mean * 10) / 10,
  };
}
