// The detector's counters and timing windows, and its stats snapshot.
import type { DetectorConfig } from '../../config/schema/detector.js';
import type { CameraDetectorStats, DetectorState, DetectorStats, DetectTiming } from './types.js';

/** Fixed-size window of recent samples. */
class Samples {
  private readonly buf: Float64Array;
  private n = 0;
  private at = 0;
  constructor(size = 256) {
    this.buf = new Float64Array(size);
  }
  push(v: number): void {
    this.buf[this.at] = v;
    this.at = (this.at + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }
  mean(): number {
    let s = 0;
    for (let i = 0; i < this.n; i++) s += this.buf[i]!;
    return this.n ? s / this.n : 0;
  }
  p95(): number {
    if (!this.n) return 0;
    const sorted = Array.from(this.buf.subarray(0, this.n)).sort((a, b) => a - b);
    return sorted[Math.min(this.n - 1, Math.ceil(0.95 * this.n) - 1)]!;
  }
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

/** Restart figures kept by the worker's supervision. */
export type RestartFigures = Pick<DetectorStats, 'restarts' | 'restarts_last_hour' | 'last_restart_reason'>;

/**
 * Time inside session.run against the time a frame was waiting for its detection (submitted and not yet
 * answered): how much of the time the detector had work it spent on the model itself. The rest is pre- and
 * post-processing that did not overlap, hand-over between the threads, and the worker waiting for the main thread.
 */
class BusyShare {
  private outstanding = 0;
  private since = 0;
  private waitingMs = 0;
  private modelMs = 0;

  frameIn(now: number): void {
    if (this.outstanding++ === 0) this.since = now;
  }

  frameOut(now: number): void {
    if (--this.outstanding === 0) this.waitingMs += now - this.since;
  }

  ran(model_ms: number): void {
    this.modelMs += model_ms;
  }

  /** Seconds inside session.run, seconds while a frame was waiting, and the share, since start. */
  figures(now: number): { model_s: number; waiting_s: number; pct: number } {
    const wall = this.waitingMs + (this.outstanding > 0 ? now - this.since : 0);
    return { model_s: this.modelMs / 1000, waiting_s: wall / 1000, pct: wall > 0 ? Math.min(100, (100 * this.modelMs) / wall) : 0 };
  }
}

/** Runs, errors and frames per camera; timing means over the last 256 runs. */
export class DetectorCounters {
  private readonly cams = new Map<string, CameraDetectorStats>();
  private runs = 0;
  private errors = 0;
  private requeued = 0;
  private readonly busy = new BusyShare();
  private readonly modelMs = new Samples();
  private readonly preMs = new Samples();
  private readonly postMs = new Samples();
  private readonly totalMs = new Samples();
  private readonly waitMs = new Samples();

  submitted(cameraId: string, now: number): void {
    this.cam(cameraId).submitted++;
    this.busy.frameIn(now);
  }

  /** A frame's detect() settled (done, replaced, failed). */
  settled(now: number): void {
    this.busy.frameOut(now);
  }

  /** A waiting frame was replaced by a newer one of its camera. */
  skipped(cameraId: string): void {
    this.cam(cameraId).skipped++;
  }

  /** A frame queued in the worker was taken back (another frame goes first); its pre-processing is redone. */
  requeue(): void {
    this.requeued++;
  }

  done(cameraId: string, t: DetectTiming): void {
    this.busy.ran(t.model_ms);
    this.runs++;
    this.cam(cameraId).done++;
    this.modelMs.push(t.model_ms);
    this.preMs.push(t.pre_ms);
    this.postMs.push(t.post_ms);
    this.totalMs.push(t.total_ms);
    this.waitMs.push(t.wait_ms);
  }

  failed(cameraId: string): void {
    this.errors++;
    this.cam(cameraId).errors++;
  }

  snapshot(state: DetectorState, cfg: DetectorConfig, restarts: RestartFigures, now: number): DetectorStats {
    const busy = this.busy.figures(now);
    const model = this.modelMs.mean();
    const pre = this.preMs.mean();
    const post = this.postMs.mean();
    const cameras: Record<string, CameraDetectorStats> = {};
    let skipped = 0;
    for (const [id, c] of this.cams) {
      cameras[id] = { ...c };
      skipped += c.skipped;
    }
    return {
      state,
      decoder: cfg.decoder,
      threads: cfg.threads,
      input_width: cfg.input_size.width,
      input_height: cfg.input_size.height,
      runs: this.runs,
      errors: this.errors,
      ...restarts,
      inference_ms_mean: round(model),
      inference_ms_p95: round(this.modelMs.p95()),
      pre_ms_mean: round(pre, 3),
      post_ms_mean: round(post, 3),
      total_ms_mean: round(this.totalMs.mean()),
      wait_ms_mean: round(this.waitMs.mean()),
      prepost_share_pct: model > 0 ? round((100 * (pre + post)) / model) : 0,
      busy_share_pct: round(busy.pct),
      model_s_total: round(busy.model_s, 3),
      frames_waiting_s_total: round(busy.waiting_s, 3),
      skipped,
      requeued: this.requeued,
      frame_copies: 0,
      cameras,
    };
  }

  private cam(id: string): CameraDetectorStats {
    let c = this.cams.get(id);
    if (!c) this.cams.set(id, (c = { submitted: 0, done: 0, skipped: 0, errors: 0 }));
    return c;
  }
}
