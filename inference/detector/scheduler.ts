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
  /** lastServed before the last take(), for putBack(). */
  private servedBefore: string | undefined;

  /** Puts a frame in its camera's slot; returns the frame it replaced, if any (the caller settles it). */
  offer(p: Pending): Pending | undefined {
    const old = this.slots.get(p.cameraId);
    if (!old && !this.order.includes(p.cameraId)) this.order.push(p.cameraId);
    this.slots.set(p.cameraId, p);
    return old;
  }

  /** Next camera with a waiting frame, round-robin from the one after the last served. */
  take(): Pending | undefined {
    const p = this.first(this.lastServed);
    if (p) {
      this.servedBefore = this.lastServed;
      this.lastServed = p.cameraId;
      this.slots.delete(p.cameraId);
    }
    return p;
  }

  /**
   * Whether `p`, the frame taken last, would still be taken first were it back in its slot: no newer frame of
   * its camera waits, and no camera the round-robin serves before it has a frame waiting.
   */
  stillFirst(p: Pending): boolean {
    return !this.slots.has(p.cameraId) && this.first(this.servedBefore, p) === p;
  }

  /**
   * Undoes the last take(): `p` goes back to its slot and the round-robin to where it was. Returns `p` when a
   * newer frame of its camera has arrived meanwhile and keeps the slot (the caller settles `p` as replaced).
   */
  putBack(p: Pending): Pending | undefined {
    this.lastServed = this.servedBefore;
    return this.restore(p);
  }

  /**
   * Returns a frame taken earlier to its slot (its run never started: the worker died first), unless a newer frame
   * of its camera is waiting: then `p` is returned (the caller settles it as replaced).
   */
  restore(p: Pending): Pending | undefined {
    if (this.slots.has(p.cameraId)) return p;
    this.slots.set(p.cameraId, p);
    return undefined;
  }

  /** The first waiting frame after camera `after` in round-robin order, counting `extra` as waiting in its slot. */
  private first(after: string | undefined, extra?: Pending): Pending | undefined {
    const n = this.order.length;
    const from = after === undefined ? 0 : this.order.indexOf(after) + 1;
    for (let k = 0; k < n; k++) {
      const cam = this.order[(from + k) % n]!;
      const p = this.slots.get(cam) ?? (extra?.cameraId === cam ? extra : undefined);
      if (p) return p;
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
