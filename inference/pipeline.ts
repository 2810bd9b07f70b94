// One camera's frame path: frames → detector (worker) → tracker + analytics → events. The one frame loop of
// `run` (a live CameraSource), `analyze` (a recorded clip) and the pipeline benchmark.
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import type { CameraConfig } from '../config/schema/index.js';
import type { CameraAnalytics } from './analytics/index.js';
import type { Frame } from '../ingest/index.js';
import type { Detection, DetectResult, Detector } from './detector/index.js';
import type { RgbFrame } from '../ingest/frame.js';
import type { TamperWatcher } from './tamper/index.js';

/** What the pipeline needs of a frame source: CameraSource (live), or a recorded clip (see analyze.ts). */
export interface FrameProducer {
  frames(signal?: AbortSignal): AsyncIterable<Frame>;
  /**
   * The pipeline is done with a frame's bytes (detected, analysed, no longer the latest view): the source may
   * fill them again. Without it every frame is garbage once analysed; at tens of frames a second those
   * 0.5 MB buffers outlive the young generation and cost the main thread a full collection every ~0.2 s.
   */
  release?(frame: Frame): void;
}

export interface LatestView {
  detections: Detection[];
  /** A copy of the analysed frame (detector input size), for the status page and snapshots: the caller's to keep. */
  frame: RgbFrame;
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

export interface CameraPipelineOptions {
  /** The camera: its id keys the detector's slot and region of interest. */
  camera: Pick<CameraConfig, 'id' | 'roi'>;
  source: FrameProducer;
  detector: Detector;
  analytics: CameraAnalytics;
  /** Copied into every event (`clock_synced`). */
  clockSynced: () => boolean;
  log: Logger;
  /**
   * Frames handed to the detector before the oldest result is awaited. 1 (default, live): a frame is taken
   * only when the previous one is analysed, so the source keeps just the newest ("latest frame wins"). 2
   * (offline): the worker already has the next frame while the main thread analyses the last one.
   */
  frames_in_flight?: 1 | 2;
  /**
   * A frame whose detection failed: `skip` (default, live) counts it, logs at most once a minute and goes
   * on; `fail` ends the loop with the error (offline, where a gap in the analysis would go unnoticed).
   */
  on_detect_error?: 'skip' | 'fail';
  /** The camera's tamper watch: offered every frame as it arrives, before detection (it checks every check_interval_s). */
  tamper?: TamperWatcher;
}

/**
 * Runs a camera's frames through the shared detector and the camera's analytics, results in frame order.
 * The camera's region of interest (`roi`) is set on the detector before the first frame, so detections whose
 * box centre lies outside it never reach the tracker.
 */
export class CameraPipeline implements Module {
  readonly name: string;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** The last analysed frame and its detections; its bytes go back to the source when a newer one replaces it. */
  private latestView: { detections: Detection[]; frame: Frame } | undefined;
  private readonly counters = { frames: 0, detections: 0, detect_errors: 0, main_ms_mean: 0 };
  private readonly log: Logger;
  private readonly depth: number;
  private lastErrorLog = 0;

  constructor(private readonly opts: CameraPipelineOptions) {
    this.name = `pipeline:${opts.camera.id}`;
    this.log = opts.log.child({ mod: 'pipeline', camera: opts.camera.id });
    this.depth = opts.frames_in_flight ?? 1;
  }

  /** Starts the loop in the background (live); see `run` to wait for a clip's end. */
  start(): Promise<void> {
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'frame loop ended'));
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.opts.analytics.flush();
  }

  /**
   * The frame loop: until the source ends (a clip) or `stop()`. Rejects with the source's error, or with a
   * detection error when `on_detect_error` is `fail`. Does not flush the analytics (stop() does).
   */
  async run(): Promise<void> {
    const { camera, source, detector } = this.opts;
    detector.setRoi(camera.id, camera.roi);
    this.opts.tamper?.start();
    // Results are analysed in frame order, each as soon as it is back; `window` bounds the frames in flight.
    const window: Promise<void>[] = [];
    let previous: Promise<void> = Promise.resolve();
    for await (const frame of source.frames(this.abort.signal)) {
      this.opts.tamper?.offer(frame); // reads the frame synchronously (every few frames), keeps no reference to it
      const result = detector.detect(camera.id, frame);
      result.catch(() => undefined); // handled in order by `analyse`; not an unhandled rejection meanwhile
      previous = previous.then(() => this.analyse(frame, result));
      previous.catch(() => undefined); // the loop awaits it below
      window.push(previous);
      if (window.length >= this.depth) await window.shift();
    }
    await previous;
  }

  latest(): LatestView | undefined {
    const v = this.latestView;
    if (!v) return undefined;
    // Copied: the source refills the pipeline's own buffer once a newer frame is analysed.
    return { detections: v.detections, frame: { data: v.frame.data.slice(), width: v.frame.width, height: v.frame.height }, captured_at_ms: v.frame.captured_at_ms };
  }

  /** The last analysed frame's detections, without copying its pixels (the status page polls them). */
  latestDetections(): readonly Detection[] | undefined {
    return this.latestView?.detections;
  }

  /** The frame's bytes back to the source; nothing here reads them again (analytics copy what they keep). */
  private release(frame: Frame): void {
    this.opts.source.release?.(frame);
  }

  stats(): PipelineStats {
    return { ...this.counters, main_ms_mean: Math.round(this.counters.main_ms_mean * 1000) / 1000 };
  }

  private async analyse(frame: Frame, pending: Promise<DetectResult>): Promise<void> {
    let result: DetectResult;
    try {
      result = await pending;
    } catch (err) {
      this.release(frame);
      this.counters.detect_errors += 1;
      if (this.opts.on_detect_error === 'fail') throw err;
      // The detector reports restarts itself; one line a minute here is enough to correlate.
      if (Date.now() - this.lastErrorLog > 60_000) {
        this.lastErrorLog = Date.now();
        this.log.warn({ err }, 'detection failed for a frame');
      }
      return;
    }
    if (result.status !== 'done') return this.release(frame);
    const t0 = performance.now();
    // The detector reads the frame's bytes in place (never detached): they are the analysed pixels.
    const pixels: RgbFrame = { data: frame.data, width: frame.width, height: frame.height };
    this.opts.analytics.update(
      { camera_id: this.opts.camera.id, captured_at_ms: frame.captured_at_ms, mono_ms: frame.mono_ms, clock_synced: this.opts.clockSynced(), frame: pixels },
      result.detections,
    );
    const replaced = this.latestView?.frame;
    this.latestView = { detections: result.detections, frame };
    if (replaced) this.release(replaced);
    this.counters.frames += 1;
    this.counters.detections += result.detections.length;
    this.counters.main_ms_mean += (performance.now() - t0 - this.counters.main_ms_mean) * 0.05;
  }
}
