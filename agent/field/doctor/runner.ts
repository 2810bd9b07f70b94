// Runs doctor checks concurrently, each bounded by its own timeout, and reports progress as they start and end.
import { errorMessage } from '../../../core/errors.js';
import type { CheckResult, DoctorCheck } from './types.js';

export interface RunHooks {
  onStart?: (check: DoctorCheck) => void;
  onFinish?: (result: CheckResult) => void;
}

/** After the results are in, how long to wait for checks that timed out to release what they hold (ffmpeg, sockets). */
const CLEANUP_GRACE_MS = 3_000;

/** Runs every check at once; results come back in the order of `checks`. Never rejects. */
export async function runChecks(checks: readonly DoctorCheck[], hooks: RunHooks = {}): Promise<CheckResult[]> {
  const lingering: Promise<unknown>[] = [];
  const results = await Promise.all(
    checks.map(async (check): Promise<CheckResult> => {
      hooks.onStart?.(check);
      const t0 = performance.now();
      const ac = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), check.timeoutMs);
      });
      const work = (async () => check.run(ac.signal))();
      let result: CheckResult;
      try {
        const outcome = await Promise.race([work, timedOut]);
        if (outcome === 'timeout') {
          ac.abort();
          lingering.push(work.catch(() => undefined));
          result = {
            check: check.name,
            status: check.onTimeout ?? 'fail',
            detail: `${check.title}: no answer within ${Math.round(check.timeoutMs / 100) / 10} s`,
            fix: check.timeoutFix ?? 'run doctor again; if it persists, see the agent log (journalctl -u roadside-agent)',
            figures: {},
          };
        } else {
          result = { check: check.name, ...outcome, figures: outcome.figures ?? {} };
        }
      } catch (err) {
        result = {
          check: check.name,
          status: 'fail',
          detail: `${check.title} failed: ${errorMessage(err)}`,
          fix: 'unexpected error in this check: run doctor again, and report it with the detail if it persists',
          figures: {},
        };
      } finally {
        clearTimeout(timer);
      }
      result.figures = { ...result.figures, duration_ms: Math.round(performance.now() - t0) };
      hooks.onFinish?.(result);
      return result;
    }),
  );
  if (lingering.length > 0) {
    await Promise.race([Promise.all(lingering), new Promise((r) => setTimeout(r, CLEANUP_GRACE_MS).unref())]);
  }
  return results;
}
