// Probation of a newly applied config: for probation_s the box must show that it still works (every camera
// delivers frames, the detector runs, the uplink is connected); the verdict comes at the deadline, or at once
// when the detector gives up. Sampled every second from the live modules, nothing on the frame path.

/** What the probation reads of the running modules. */
export interface ProbationSample {
  cameras: { id: string; frames_total: number; last_frame_age_ms: number | null; state: string; reason: string | null; detail: string | null }[];
  detector: { state: string; runs: number };
  uplink: { online: boolean; last_error: string | null };
}

export interface ProbationProbe {
  sample(): ProbationSample;
}

/**
 * What was already broken before a change applied in place and is not touched by it: a camera that was down
 * and keeps its source, an uplink that was offline (the change cannot have caused it). Not held against the change.
 */
export interface ProbationExcuses {
  cameras: ReadonlySet<string>;
  uplink: boolean;
}

export type ProbationVerdict = { ok: true } | { ok: false; reason: string };

/** A camera whose last frame is older than this at the deadline is not delivering. */
const STALE_FRAME_MS = 5_000;
/** The uplink counts as connected if it was online this recently (a reconnect at the deadline is not a failure). */
const UPLINK_GRACE_MS = 10_000;
const SAMPLE_MS = 1_000;
const NO_EXCUSES: ProbationExcuses = { cameras: new Set(), uplink: false };

/**
 * One probation. start() takes the baseline and arms the timers; the verdict is handed to `done` once
 * (cancel() prevents it).
 */
export class Probation {
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private baseline: ProbationSample | undefined;
  private uplinkSeenAt = Number.NEGATIVE_INFINITY;
  private finished = false;

  constructor(
    private readonly probe: ProbationProbe,
    private readonly durationMs: number,
    private readonly done: (verdict: ProbationVerdict) => void,
    private readonly excuses: ProbationExcuses = NO_EXCUSES,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.baseline = this.probe.sample();
    this.observe(this.baseline);
    this.timer = setInterval(() => this.tick(), Math.min(SAMPLE_MS, this.durationMs)).unref();
    this.deadline = setTimeout(() => this.finish(this.verdict(this.probe.sample())), this.durationMs).unref();
  }

  cancel(): void {
    this.finished = true;
    clearInterval(this.timer);
    clearTimeout(this.deadline);
  }

  private tick(): void {
    const s = this.probe.sample();
    this.observe(s);
    if (s.detector.state === 'failed') this.finish(this.verdict(s));
  }

  private observe(s: ProbationSample): void {
    if (s.uplink.online) this.uplinkSeenAt = this.now();
  }

  private finish(v: ProbationVerdict): void {
    if (this.finished) return;
    this.cancel();
    this.done(v);
  }

  /** Every failed check, one clause each. */
  verdict(s: ProbationSample): ProbationVerdict {
    this.observe(s);
    const base = this.baseline ?? s;
    const failures: string[] = [];
    let judged = 0;
    for (const cam of s.cameras) {
      if (this.excuses.cameras.has(cam.id)) continue;
      judged++;
      // The baseline is taken after the change: a replaced source counts from its start, a kept one from then.
      const before = base.cameras.find((c) => c.id === cam.id)?.frames_total ?? 0;
      const why = cam.reason ? ` (${cam.state}: ${cam.reason}${cam.detail ? `, ${cam.detail.slice(0, 200)}` : ''})` : ` (${cam.state})`;
      if (cam.frames_total <= before) failures.push(`camera ${cam.id} delivered no frame${why}`);
      else if (cam.last_frame_age_ms === null || cam.last_frame_age_ms > STALE_FRAME_MS) failures.push(`camera ${cam.id} stopped delivering frames${why}`);
    }
    if (s.detector.state === 'failed') failures.push('the detector failed');
    else if (judged > 0 && s.detector.runs <= base.detector.runs) failures.push(`the detector did not run (${s.detector.state})`);
    if (!this.excuses.uplink && !s.uplink.online && this.now() - this.uplinkSeenAt > UPLINK_GRACE_MS) {
      failures.push(`the uplink is not connected${s.uplink.last_error ? ` (${s.uplink.last_error.slice(0, 200)})` : ''}`);
    }
    return failures.length === 0 ? { ok: true } : { ok: false, reason: failures.join('; ') };
  }
}
