// Which frame the detector's worker takes next: one waiting slot per camera, served round-robin.
import type { DetectorFrame, DetectResult } from './types.js';

export interface Pending {
  cameraId: string;
  frame: DetectorFrame;
  /** performance.now() when the frame entered its slot. */
  queuedAt: number;
  resolve: (r: DetectResult) => void;
  reject: (e: Error) => void;
}

/**
 * Each camera has a single waiting slot: a newer frame replaces the waiting one (latest frame wins). The
 * next frame comes from the camera after the one served last, in the order cameras first submitted, so
 * a fast camera cannot starve a slow one.
 */
export class FrameScheduler {
  private readonly slots = new Map<string, Pending>();
  private readonly order: string[] = [];
  /** Camera served last: the round-robin resumes after it. */
  private lastServed: string | undefined;

  /** Puts a frame in its camera's slot; returns the frame it replaced, if any (the caller settles it). */
  offer(p: Pending): Pending | undefined {
    const old = this.slots.get(p.cameraId);
    if (!old && !this.order.includes(p.cameraId)) this.order.push(p.cameraId);
    this.slots.set(p.cameraId, p);
    return old;
  }

  /** Next camera with a waiting frame, round-robin from the one after the last served. */
  take(): Pending | undefined {
    const n = this.order.length;
    const from = this.lastServed === undefined ? 0 : this.order.indexOf(this.lastServed) + 1;
    for (let k = 0; k < n; k++) {
      const p = this.slots.get(this.order[(from + k) % n]!);
      if (p) {
        this.lastServed = p.cameraId;
        this.slots.delete(p.cameraId);
        return p;
      }
    }
    return undefined;
  }

  /** Empties every slot; returns the frames that were waiting. */
  drain(): Pending[] {
    const all = [...this.slots.values()];
    this.slots.clear();
    return all;
  }
}
