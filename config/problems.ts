// What is wrong with a config file, and how it is printed: FILE:LINE path: message (got …), URL credentials
// hidden, at most MAX_PROBLEMS_SHOWN lines so a hostile file cannot flood a terminal or a journal.
import { AgentError } from '../core/errors.js';
import { redactUrl } from '../core/log.js';
import type { Config } from './schema/index.js';

/** Problems listed in full; beyond it one "… and N more" line. */
export const MAX_PROBLEMS_SHOWN = 100;

/** One thing wrong with a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  file: string;
  /** 1-based line in the file; absent when the value came from the environment or the file is unreadable. */
  line?: number;
  path: string;
  message: string;
  /** The offending value, shortened; secrets are never echoed. */
  got?: string;
}

/**
 * The problems of one file. `problems` holds at most MAX_PROBLEMS_SHOWN of them (located); `total` counts all,
 * so a file with 200 000 duplicate ids costs 100 line look-ups, not 200 000.
 */
export class ConfigError extends AgentError {
  readonly total: number;

  constructor(
    readonly problems: ConfigProblem[],
    total?: number,
    /**
     * The config as parsed (defaults filled, paths resolved) when every section had the right shape and only
     * cross-field problems were found: for a tool that may work around a specific one (doctor while the
     * client certificate is still being signed). Never for starting the agent.
     */
    readonly parsed?: { config: Config; hash: string },
  ) {
    const count = Math.max(total ?? problems.length, problems.length);
    super('CONFIG_INVALID', `invalid configuration (${count} problem${count === 1 ? '' : 's'}):\n${formatProblems(problems, count)}`);
    this.total = count;
  }
}

/** One problem as `FILE:LINE path: message (got …)`, with any URL user info hidden. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return redactUrl(`${where} ${p.path || '(root)'}: ${p.message}${p.got === undefined ? '' : ` (got ${p.got})`}`);
}

/** One line per problem, at most MAX_PROBLEMS_SHOWN, then "… and N more" when `total` is larger. */
export function formatProblems(problems: readonly ConfigProblem[], total = problems.length): string {
  const shown = problems.slice(0, MAX_PROBLEMS_SHOWN);
  const lines = shown.map(formatProblem);
  const rest = Math.max(total, problems.length) - shown.length;
  if (rest > 0) lines.push(`… and ${rest} more`);
  return lines.join('\n');
}

/** The closing line of a report: "N problem(s) found in FILE". */
export function problemSummary(err: ConfigError, file: string): string {
  return redactUrl(`${err.total} problem(s) found in ${file}`);
}

/** Edits (insert, delete, replace) between two strings. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The allowed key a mistyped one most likely meant: at most 2 edits away, or one is the start of the other
 * (`model` for `model_path`); the closest wins. Undefined when none is close.
 */
export function didYouMean(key: string, allowed: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: { key: string; score: number } | undefined;
  for (const candidate of allowed) {
    const c = candidate.toLowerCase();
    const d = editDistance(k, c);
    const prefix = Math.min(k.length, c.length) >= 3 && (c.startsWith(k) || k.startsWith(c));
    if (d > 2 && !prefix) continue;
    // A prefix counts as 2 edits at most: `model` → `model_path` beats a 2-edit stranger only by order.
    const score = prefix ? Math.min(d, 2) : d;
    if (!best || score < best.score) best = { key: candidate, score };
  }
  return best?.key;
}
