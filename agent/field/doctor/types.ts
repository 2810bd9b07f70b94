// What a doctor check reports, and what a check is: a named, time-bounded async function.

/** `skip`: the check could not run because something it needs failed first (e.g. the config). */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One row of the doctor report; the JSON output is an array of these (without `lines`). */
export interface CheckResult {
  /** Check name: `config`, `camera:cam1`, `model`, `broker`, `clock`, `disk`, `outbox`, `files:secrets`… */
  check: string;
  status: CheckStatus;
  /** One line: what was found. */
  detail: string;
  /** One line a technician can act on; null when there is nothing to fix. */
  fix: string | null;
  /** Measured values, snake_case with units (`fps`, `inference_ms`, `free_mb`); always has `duration_ms`. */
  figures: Record<string, unknown>;
  /** Extra lines shown under the row in the table (every config problem); the JSON carries them in `figures`. */
  lines?: string[];
}

/** What a check function returns; the runner adds the name and `duration_ms`. */
export type CheckOutcome = Omit<CheckResult, 'check' | 'figures'> & { figures?: Record<string, unknown> };

export interface DoctorCheck {
  name: string;
  /** What runs, for the progress line, e.g. "RTSP stream for 5 s". */
  title: string;
  /** Longest the check may take; then it is reported as `onTimeout` and its signal aborts. */
  timeoutMs: number;
  /** Status reported on timeout. Default fail. */
  onTimeout?: Extract<CheckStatus, 'warn' | 'fail'>;
  /** Fix reported on timeout. */
  timeoutFix?: string;
  /** Resolves its outcome; a throw is reported as fail. Must stop its work when `signal` aborts. */
  run(signal: AbortSignal): Promise<CheckOutcome>;
}

export const pass = (detail: string, figures?: Record<string, unknown>): CheckOutcome => ({ status: 'pass', detail, fix: null, figures });
export const warn = (detail: string, fix: string, figures?: Record<string, unknown>): CheckOutcome => ({ status: 'warn', detail, fix, figures });
export const fail = (detail: string, fix: string, figures?: Record<string, unknown>): CheckOutcome => ({ status: 'fail', detail, fix, figures });
export const skip = (detail: string): CheckOutcome => ({ status: 'skip', detail, fix: null });

/** The worse of two statuses (skip counts as pass). */
export function worst(a: CheckStatus, b: CheckStatus): CheckStatus {
  const rank: Record<CheckStatus, number> = { skip: 0, pass: 0, warn: 1, fail: 2 };
  return rank[b] > rank[a] ? b : a;
}
