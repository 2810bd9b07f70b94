import type { SignalState } from '../../contract/commands.js';

export type { SignalState };

const KEEP = 64;

/**
 * Recent state changes of one traffic signal on the wall clock, so a crossing is judged by the state at its
 * capture time even when the frame is analysed after the next change arrived.
 */
export class SignalTimeline {
  private readonly changes: Array<{ at_ms: number; state: SignalState }> = [];

  set(state: SignalState, at_ms: number): void {
    const c = this.changes;
    let i = c.length;
    while (i > 0 && c[i - 1]!.at_ms > at_ms) i--;
    if (i > 0 && c[i - 1]!.state === state) return; // repeated state (periodic publisher): keep the onset
    c.splice(i, 0, { at_ms, state });
    if (c[i + 1]?.state === state) c.splice(i + 1, 1); // an earlier report of the state that followed
    if (c.length > KEEP) c.splice(0, c.length - KEEP);
  }

  /** State at a wall-clock time and since when; undefined before the first known state. */
  at(at_ms: number): { state: SignalState; since_ms: number } | undefined {
    const c = this.changes;
    for (let i = c.length - 1; i >= 0; i--) if (c[i]!.at_ms <= at_ms) return { state: c[i]!.state, since_ms: c[i]!.at_ms };
    return undefined;
  }

  /** Latest known state. */
  get current(): SignalState | undefined {
    return this.changes[this.changes.length - 1]?.state;
  }
}
