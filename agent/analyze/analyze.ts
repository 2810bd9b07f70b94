// Offline analysis: one camera's pipeline (the same CameraPipeline as `run`) on a recorded clip, as fast as the box allows.
import type { Config } from '../../config/schema/index.js';
import type { EventDraft } from '../../contract/event.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { clipStart, deterministicEventIds, ObservedAnalytics, probeClip, reporting, type AnalysedFrame, type ClipInfo, type ReadProgress, type StartFrom } from './clip.js';
import { clipSource } from '../../ingest/clip.js';
import { Detector } from '../../inference/detector/index.js';
import { EvidencePackages, type PackagerStats } from '../../inference/evidence/index.js';
import { CameraPipeline, type FrameProducer } from '../../inference/pipeline.js';
import { PlateReader } from '../../inference/recognizers/index.js';

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
  /** With evidenceDir: the packages written. */
  evidence?: PackagerStats;
  /** Wall time of the clip's first frame (epoch ms) and where it came from. */
  start_ms: number;
  start_from: StartFrom;
  /** Frames per second taken from the clip (the clip's own rate with every frame). */
  frame_rate: number | undefined;
  /** Clip time of the last frame analysed, ms. */
  last_mono_ms: number;
}

export interface AnalyzeOptions {
  /** Frames per second taken from the clip; default the camera's detection_fps; null: every frame. */
  fps?: number | null;
  /**
   * Write an evidence package per violation here, cut from the clip itself (the clip is the ring); default none.
   * Signed with analytics.evidence.sign_key, else mqtt.tls.key, else the key generated in device.data_dir (as
   * `run` does; never in this directory, whose packages may be handed on).
   */
  evidenceDir?: string;
  /** The config file (analytics.evidence.sign_key is relative to it). */
  configFile?: string;
  /** The config file's hash, for the manifests. */
  configHash?: string;
  /** Wall time of the clip's first frame, epoch ms; default the clip's creation time, else 0 (see clipStart). */
  start_ms?: number;
  /** The clip's ffprobe facts when the caller has them already. */
  clipInfo?: ClipInfo;
  /** Every frame taken from the clip, as it is taken (progress). */
  onProgress?: (p: ReadProgress) => void;
  /** Every analysed frame, after its events (overlays). */
  onFrame?: (f: AnalysedFrame) => void;
}

/** The camera `cameraId` of the config; throws UNKNOWN_CAMERA naming the cameras there are. */
export function analyzedCamera(config: Config, cameraId: string): Config['cameras'][number] {
  const camera = config.cameras.find((c) => c.id === cameraId);
  if (!camera) throw new AgentError('UNKNOWN_CAMERA', `no camera "${cameraId}" in the config (cameras: ${config.cameras.map((c) => c.id).join(', ')})`);
  return camera;
}

/**
 * Runs detector (with the camera's region of interest), tracker and analytics of `cameraId` over `clip` with
 * the clip's own timestamps and hands every event to `onEvent`. A failed detection fails the analysis. Times
 * follow the clip (its first frame at clipStart's time, never now) and event ids are derived from them, so the
 * same clip gives the same events, ids and flow bins on every run.
 */
export async function analyzeClip(config: Config, cameraId: string, clip: string, onEvent: (e: EventDraft) => void, log: Logger, opts: AnalyzeOptions = {}): Promise<AnalyzeSummary> {
  const camera = analyzedCamera(config, cameraId);
  const detector = new Detector(config.detector, log);
  const plates = opts.evidenceDir && config.recognizers.plates.enabled ? new PlateReader(config.recognizers.plates, log) : undefined;
  const packager = opts.evidenceDir ? clipPackager(config, camera, clip, opts.evidenceDir, opts, plates, log) : undefined;
  const info = opts.clipInfo ?? (await probeClip(clip));
  const { start_ms, from } = clipStart(opts.start_ms, info);
  let last_mono_ms = 0;
  const analytics = new ObservedAnalytics(camera, config.analytics, config.device, onEvent, log, { evidence: packager ?? false });
  analytics.onFrame = (f) => {
    last_mono_ms = f.mono_ms;
    opts.onFrame?.(f);
  };
  const fps = opts.fps === null ? undefined : (opts.fps ?? camera.detection_fps);
  const reader = clipSource(clip, { ...detector.inputSize, resize: detector.resize }, { fps, source: camera.frame, start_ms });
  const source: FrameProducer = {
    frames: () => (opts.onProgress ? reporting(reader.frames(), opts.onProgress) : reader.frames()),
    release: (f) => reader.release(f),
  };
  const pipeline = new CameraPipeline({ camera, source, detector, analytics, clockSynced: () => true, log, frames_in_flight: ANALYZE_FRAMES_IN_FLIGHT, on_detect_error: 'fail' });
  await detector.start();
  // Plates are optional: without the reader the packages go without a plate.
  await plates?.start().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'plate reader unavailable: evidence without plates'));
  const t0 = performance.now();
  // Ids from the clip's times: the same clip gives the same events on every run.
  const restoreIds = deterministicEventIds(config.device.id, camera.id, start_ms, clip);
  try {
    await pipeline.run();
    await analytics.flush();
  } finally {
    restoreIds();
    await detector.stop();
    await plates?.stop();
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
    ...(packager ? { evidence: packager.stats() } : {}),
    start_ms,
    start_from: from,
    frame_rate: fps ?? info.frame_rate,
    last_mono_ms,
  };
}

/** Evidence packages cut from the clip being analysed, into `dir`: the agent's evidence settings and key. */
function clipPackager(config: Config, camera: Config['cameras'][number], clip: string, dir: string, opts: AnalyzeOptions, plates: PlateReader | undefined, log: Logger) {
  const withDir: Config = { ...config, analytics: { ...config.analytics, evidence: { ...config.analytics.evidence, dir } } };
  const packages = EvidencePackages.fromConfig(withDir, {
    file: opts.configFile ?? '.',
    config_hash: () => opts.configHash ?? null,
    ...(plates ? { plates: { reader: plates, config: config.recognizers.plates } } : {}),
    log,
  });
  return packages.forCamera(camera, { clip });
}
