// The doctor's output: progress lines (stderr), the PASS / WARN / FAIL table and the JSON array (stdout).
import type { DoctorCheck } from './types.js';
import type { CheckResult, CheckStatus } from './types.js';

/** The machine-readable form of one result: the table's `lines` are already in `figures`. */
export interface JsonResult {
  check: string;
  status: CheckStatus;
  detail: string;
  fix: string | null;
  figures: Record<string, unknown>;
}

export const toJson = (results: readonly CheckResult[]): JsonResult[] =>
  results.map(({ check, status, detail, fix, figures }) => ({ check, status, detail, fix, figures }));

const COLORS: Record<CheckStatus, string> = { pass: '\x1b[32m', warn: '\x1b[33m', fail: '\x1b[31m', skip: '\x1b[2m' };
const RESET = '\x1b[0m';
const SYMBOL: Record<CheckStatus, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };

const paint = (status: CheckStatus, text: string, color: boolean): string => (color ? `${COLORS[status]}${text}${RESET}` : text);
const label = (status: CheckStatus): string => status.toUpperCase().padEnd(4);
const seconds = (r: CheckResult): string => `${(Number(r.figures.duration_ms ?? 0) / 1000).toFixed(1)} s`;

/** Progress on stderr: start and end lines with colours at a terminal, one plain line per finished check otherwise. */
export function progressHooks(write: (text: string) => void, interactive: boolean, color: boolean) {
  const width = 16;
  return {
    onStart: (check: DoctorCheck): void => {
      if (interactive) write(`  … ${check.name.padEnd(width)} ${check.title}\n`);
    },
    onFinish: (r: CheckResult): void => {
      if (interactive) write(`  ${paint(r.status, SYMBOL[r.status], color)} ${r.check.padEnd(width)} ${paint(r.status, label(r.status), color)} ${seconds(r)}\n`);
      else write(`doctor: ${r.check} ${r.status} (${seconds(r)})\n`);
    },
  };
}

/** The table: one row per check, a `fix:` line under each problem, every config problem under the config row. */
export function formatTable(results: readonly CheckResult[], color = false): string {
  const width = Math.max(5, ...results.map((r) => r.check.length));
  const indent = ' '.repeat(8 + width + 2);
  const out = [`STATUS  ${'CHECK'.padEnd(width + 2)}DETAIL`];
  for (const r of results) {
    out.push(`${paint(r.status, label(r.status), color)}    ${r.check.padEnd(width + 2)}${r.detail}`);
    for (const line of r.lines ?? []) out.push(`${indent}  ${line}`);
    if (r.fix && (r.status === 'fail' || r.status === 'warn')) out.push(`${indent}fix: ${r.fix}`);
  }
  return `${out.join('\n')}\n`;
}

/** The closing line: counts, time, verdict. */
export function summaryLine(results: readonly CheckResult[], durationMs: number, exitCode: number): string {
  const n = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  const counts = (['fail', 'warn', 'pass', 'skip'] as const).filter((s) => n(s) > 0).map((s) => `${n(s)} ${s.toUpperCase()}`).join(', ');
  const verdict = exitCode === 0 ? (n('warn') > 0 ? 'the box works; look at the warnings' : 'the box works') : exitCode === 78 ? 'the config is invalid: fix it first' : 'the box is NOT ready: fix the failures';
  return `\n${counts} in ${(durationMs / 1000).toFixed(1)} s: ${verdict} (exit ${exitCode})\n`;
}
