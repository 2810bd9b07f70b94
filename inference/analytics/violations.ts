// Violations (red light, wrong way, stopped vehicle, speeding) leave with their evidence.
import type { Evidence } from '../../contract/event.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Box, FrameContext } from '../tracking/types.js';
import type { ViolationEvent, ViolationEvidence } from './evidence.js';
import type { EventOutlet } from './outlet.js';

export type { ViolationEvent } from './evidence.js';

/** Evidence that does not say how long it takes gets this long, ms. */
export const EVIDENCE_TIMEOUT_MS = 5000;

export interface ViolationCamera {
  id: string;
  /** Camera frame size, the space of the boxes. */
  frame: { width: number; height: number };
}

/**
 * Violations are emitted once their evidence is complete, with its summary in the event (an evidence package:
 * its id, manifest hash, file count and plate; or the two images' hashes): one complete record in the outbox,
 * no follow-up "evidence ready" message for the center to join. A package waits for the video after the
 * violation (evidence.post_s), so the event leaves seconds later than the others of its frame; its
 * `captured_at`/`mono_ms` still say when it happened. When the evidence refuses (nothing to take it from, too
 * many in flight), fails or exceeds its `timeout_ms`, the event goes without.
 */
export class Violations {
  private readonly jobs = new Set<Promise<void>>();
  private attached = 0;
  private missing = 0;

  constructor(
    private readonly camera: ViolationCamera,
    private readonly evidence: ViolationEvidence | undefined,
    private readonly outlet: EventOutlet,
    private readonly log: Logger | undefined,
  ) {}

  /** `box`: the object's box in camera pixels (the crop); `ctx`: the frame it was seen in, if any. */
  send(ev: ViolationEvent, box: Box, ctx: FrameContext | undefined): void {
    const job = this.evidence?.capture({ event: ev, box, ...(ctx?.frame ? { frame: ctx.frame } : {}) });
    if (!job) {
      this.missing++;
      this.outlet.send(ev);
      return;
    }
    const limit = this.evidence?.timeout_ms ?? EVIDENCE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((res) => {
      timer = setTimeout(() => res(undefined), limit);
      timer.unref();
    });
    const done: Promise<void> = Promise.race([job, timeout])
      .then(
        (evidence: Evidence | undefined) => {
          if (evidence) {
            this.attached++;
            this.outlet.send({ ...ev, evidence });
          } else {
            this.missing++;
            this.log?.warn({ event: ev.id, type: ev.type, camera: this.camera.id, timeout_ms: limit }, 'evidence not ready in time; violation sent without it');
            this.outlet.send(ev);
          }
        },
        (err: unknown) => {
          this.missing++;
          this.log?.warn({ event: ev.id, type: ev.type, camera: this.camera.id, err: errorMessage(err) }, 'evidence failed; violation sent without it');
          this.outlet.send(ev);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        this.jobs.delete(done);
      });
    this.jobs.add(done);
  }

  /**
   * Waits until every violation waiting for its evidence has been sent. `hurry`: the evidence stops waiting for
   * more video and finishes with what it has (a shutdown must not wait for post_s).
   */
  async settled(hurry = false): Promise<void> {
    if (hurry && this.jobs.size > 0) this.evidence?.hurry?.();
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  stats(): { evidence_attached: number; evidence_missing: number; evidence_pending: number } {
    return { evidence_attached: this.attached, evidence_missing: this.missing, evidence_pending: this.jobs.size };
  }
}
