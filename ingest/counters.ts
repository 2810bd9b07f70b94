// A camera's frame counters and rates: what its stats report.
import { EventWindow } from '../core/time.js';
import type { CameraStats } from './types.js';

const FPS_WINDOW_MS = 5_000;
const HOUR_MS = 3_600_000;

export type CounterFigures = Omit<CameraStats, 'camera' | 'state' | 'ffmpeg_pid' | 'source_width' | 'source_height'>;

/** Totals over the source's life, rates over the last 5 s, reconnects and stalls over the last hour. */
export class CameraCounters {
  private seq = 0;
  private lastFrameMono: number | null = null;
  private readonly totals = { frames: 0, processed: 0, skipped: 0, motion: 0 };
  private readonly rates = {
    camera: new EventWindow(FPS_WINDOW_MS, 1024),
    process: new EventWindow(FPS_WINDOW_MS, 1024),
    skipped: new EventWindow(FPS_WINDOW_MS, 1024),
    motion: new EventWindow(FPS_WINDOW_MS, 1024),
  };
  private readonly reconnects = new EventWindow(HOUR_MS, 8192);
  private readonly stalls = new EventWindow(HOUR_MS, 8192);

  /** A frame arrived from ffmpeg; returns its sequence number (1, 2, … over the source's life). */
  frame(mono: number): number {
    this.lastFrameMono = mono;
    this.totals.frames++;
    this.rates.camera.add(mono);
    return ++this.seq;
  }

  /** A frame went to the consumer. */
  processed(mono = performance.now()): void {
    this.totals.processed++;
    this.rates.process.add(mono);
  }

  /** A waiting frame was replaced by a newer one before the consumer took it. */
  skipped(mono: number): void {
    this.totals.skipped++;
    this.rates.skipped.add(mono);
  }

  /** A frame of a still scene was dropped by the motion gate. */
  motionSkipped(mono: number): void {
    this.totals.motion++;
    this.rates.motion.add(mono);
  }

  /** ffmpeg was spawned again (after an exit, a failure or a stall). */
  reconnect(mono: number): void {
    this.reconnects.add(mono);
  }

  /** The watchdog found the frames stopped. */
  stall(mono: number): void {
    this.stalls.add(mono);
  }

  figures(now = performance.now()): CounterFigures {
    const r = (w: EventWindow) => Math.round(w.rate(now) * 100) / 100;
    return {
      camera_fps: r(this.rates.camera),
      process_fps: r(this.rates.process),
      skipped_fps: r(this.rates.skipped),
      motion_skipped_fps: r(this.rates.motion),
      reconnects_last_hour: this.reconnects.count(now),
      stalls_last_hour: this.stalls.count(now),
      frames_total: this.totals.frames,
      processed_total: this.totals.processed,
      skipped_total: this.totals.skipped,
      motion_skipped_total: this.totals.motion,
      last_frame_age_ms: this.lastFrameMono === null ? null : Math.round(now - this.lastFrameMono),
    };
  }
}
