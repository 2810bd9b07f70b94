// What is wrong with a config file, and how it is printed: FILE:LINE path: message (got …), URL credentials
// hidden, at most MAX_PROBLEMS_SHOWN lines so a hostile file cannot flood a terminal or a journal.
import { AgentError } from '../core/errors.js';
import { redactUrl } from '../core/log.js';

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
