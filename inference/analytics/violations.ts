// Violations (red light, wrong way, stopped vehicle) leave with their evidence images.
import type { EventOf, Evidence } from '../../contract/event.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Box, FrameContext } from '../tracking/types.js';
import type { EvidenceStore } from './evidence.js';
import type { EventOutlet } from './outlet.js';

/** A violation waits at most this long for its evidence before it goes without, ms. */
export const EVIDENCE_TIMEOUT_MS = 5000;

export type ViolationEvent = EventOf<'red_light' | 'wrong_way' | 'stopped_vehicle'>;

export interface ViolationCamera {
  id: string;
  /** Camera frame size, the space of the boxes. */
  frame: { width: number; height: number };
}

/**
 * Violations are emitted once their evidence is on disk, with the hashes in the event: one complete record
 * in the outbox, no follow-up "evidence ready" message for the center to join. The encoding runs on sharp's
 * threads (tens of ms), so the event leaves a little later than the others of its frame; its
 * `captured_at`/`mono_ms` still say when it happened. Without a frame, when the store refuses (too many jobs
 * in flight), on failure or after EVIDENCE_TIMEOUT_MS the event goes without evidence.
 */
export class Violations {
  private readonly jobs = new Set<Promise<void>>();
  private attached = 0;
  private missing = 0;

  constructor(
    private readonly camera: ViolationCamera,
    private readonly store: EvidenceStore | undefined,
    private readonly outlet: EventOutlet,
    private readonly log: Logger | undefined,
  ) {}

  /** `box`: the object's box in camera pixels (the crop); `ctx`: the frame it was seen in. */
  send(ev: ViolationEvent, box: Box, ctx: FrameContext | undefined): void {
    const frame = ctx?.frame;
    const job = frame && this.store?.capture({ frame, box, camera: this.camera.frame, name: `${ev.id}_${this.camera.id}_${ev.type}` });
    if (!job) {
      this.missing++;
      this.outlet.send(ev);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((res) => {
      timer = setTimeout(() => res(undefined), EVIDENCE_TIMEOUT_MS);
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
            this.log?.warn({ event: ev.id, type: ev.type }, 'evidence not ready in time; violation sent without it');
            this.outlet.send(ev);
          }
        },
        (err: unknown) => {
          this.missing++;
          this.log?.warn({ event: ev.id, type: ev.type, err: errorMessage(err) }, 'evidence failed; violation sent without it');
          this.outlet.send(ev);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        this.jobs.delete(done);
      });
    this.jobs.add(done);
  }

  /** Waits until every violation waiting for its evidence has been sent. */
  async settled(): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  stats(): { evidence_attached: number; evidence_missing: number; evidence_pending: number } {
    return { evidence_attached: this.attached, evidence_missing: this.missing, evidence_pending: this.jobs.size };
  }
}
