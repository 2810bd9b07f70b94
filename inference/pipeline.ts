// One camera's frame path: newest frame → detector (worker) → tracker + analytics → events.
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import type { CameraAnalytics } from './analytics/index.js';
import type { Frame } from './camera/index.js';
import type { Detection, Detector } from './detector/index.js';

/** What the pipeline needs of a frame source (CameraSource, or a clip). */
export interface FrameProducer {
  frames(signal?: AbortSignal): AsyncIterable<Frame>;
}

export interface LatestView {
  detections: Detection[];
  /** The analysed frame (detector input size, RGB), for the status page and snapshots. */
  frame: { data: Uint8Array; width: number; height: number };
  captured_at_ms: number;
}

export interface PipelineStats {
  frames: number;
  detections: number;
  /** Frames whose detection failed (worker restart, stuck run). */
  detect_errors: number;
  /** Mean main-thread time per frame outside the detector (analytics, bookkeeping), ms. */
  main_ms_mean: number;
}

/**
 * Runs a camera's frames through the shared detector and the camera's analytics. Awaiting each result before
 * taking the next frame is what makes "latest frame wins" work: while the detector is busy, the source keeps
 * only the newest frame and counts the ones it replaced.
 */
export class CameraPipeline implements Module {
  readonly name: string;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private latestView: LatestView | undefined;
  private readonly counters = { frames: 0, detections: 0, detect_errors: 0, main_ms_mean: 0 };
  private readonly log: Logger;

  constructor(
    private readonly cameraId: string,
    private readonly source: FrameProducer,
    private readonly detector: Detector,
    private readonly analytics: CameraAnalytics,
    private readonly clockSynced: () => boolean,
    log: Logger,
  ) {
    this.name = `pipeline:${cameraId}`;
    this.log = log.child({ mod: 'pipeline', camera: cameraId });
  }

  start(): Promise<void> {
    this.loop = this.run();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.analytics.flush();
  }

  latest(): LatestView | undefined {
    return this.latestView;
  }

  stats(): PipelineStats {
    return { ...this.counters, main_ms_mean: Math.round(this.counters.main_ms_mean * 1000) / 1000 };
  }

  private async run(): Promise<void> {
    let lastErrorLog = 0;
    for await (const frame of this.source.frames(this.abort.signal)) {
      let result;
      try {
        result = await this.detector.detect(this.cameraId, frame);
      } catch (err) {
        this.counters.detect_errors += 1;
        // The detector reports restarts itself; one line a minute here is enough to correlate.
        if (Date.now() - lastErrorLog > 60_000) {
          lastErrorLog = Date.now();
          this.log.warn({ err }, 'detection failed for a frame');
        }
        continue;
      }
      if (result.status !== 'done') continue;
      const t0 = performance.now();
      const pixels = new Uint8Array(result.buffer, 0, frame.width * frame.height * 3);
      this.analytics.update(
        {
          camera_id: this.cameraId,
          captured_at_ms: frame.captured_at_ms,
          mono_ms: frame.mono_ms,
          clock_synced: this.clockSynced(),
          frame: { data: pixels, width: frame.width, height: frame.height },
        },
        result.detections,
      );
      this.latestView = { detections: result.detections, frame: { data: pixels, width: frame.width, height: frame.height }, captured_at_ms: frame.captured_at_ms };
      this.counters.frames += 1;
      this.counters.detections += result.detections.length;
      this.counters.main_ms_mean += (performance.now() - t0 - this.counters.main_ms_mean) * 0.05;
    }
  }
}
