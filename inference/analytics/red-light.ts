// Red-light enforcement: the states of the traffic signals and the stop lines they govern.
import { isoTime, makeEvent } from '../../contract/event.js';
import type { LineConfig } from '../../config/schema/index.js';
import type { Crossing } from './lines.js';
import { round, type EventOutlet } from './outlet.js';
import { SignalTimeline, type SignalState } from './signals.js';
import type { Violations } from './violations.js';

/**
 * Keeps each signal's recent states; a crossing of a stop line in its `stop_direction` while its signal was
 * red at the crossing time is a `red_light` violation.
 */
export class RedLight {
  private readonly signals = new Map<string, SignalTimeline>();
  /** Per line (by index): the timeline of the signal governing it, for stop lines. */
  private readonly byLine: Array<SignalTimeline | undefined>;

  constructor(
    signalIds: readonly string[],
    lines: readonly LineConfig[],
    private readonly outlet: EventOutlet,
    private readonly violations: Violations,
  ) {
    for (const id of signalIds) this.signals.set(id, new SignalTimeline());
    this.byLine = lines.map((cfg) => (cfg.stop_line && cfg.signal ? this.timeline(cfg.signal) : undefined));
  }

  /** Latest state of a traffic signal (`at_ms`: wall-clock epoch ms of the change). */
  setSignal(id: string, state: SignalState, at_ms: number): void {
    this.timeline(id).set(state, at_ms);
  }

  check(c: Crossing): void {
    const signal = this.byLine[c.index];
    const cfg = c.line;
    if (!signal || (cfg.stop_direction !== 'both' && cfg.stop_direction !== c.direction)) return;
    const sig = signal.at(c.wall);
    if (sig?.state !== 'red') return;
    this.violations.send(
      makeEvent({
        type: 'red_light',
        ...this.outlet.envelope(c.now),
        object: c.object,
        rule: { kind: 'signal', id: cfg.signal! },
        attributes: {
          line_id: cfg.id,
          direction: c.direction,
          point_px: c.point,
          crossed_at: isoTime(c.wall),
          signal_state: 'red',
          red_elapsed_s: round((c.wall - sig.since_ms) / 1000, 3),
        },
      }),
      c.track.box,
      c.ctx,
    );
  }

  private timeline(id: string): SignalTimeline {
    let s = this.signals.get(id);
    if (!s) this.signals.set(id, (s = new SignalTimeline()));
    return s;
  }
}
