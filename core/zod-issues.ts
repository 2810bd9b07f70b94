// One way to turn zod issues into "path: message" lines, for configs, commands, payloads and generated docs.
import type { z } from 'zod';

export interface IssueLine {
  /** Dotted path ("cameras.0.lines.1.a"); empty for the root. */
  path: string;
  message: string;
}

/** "unknown key(s) …" for unrecognized keys; zod's own message without its "Invalid input: " prefix otherwise. */
export function issueLine(issue: z.core.$ZodIssue): IssueLine {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol').join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message.replace(/^Invalid input: /, '');
  return { path, message };
}

/** The first `max` issues as "path: message", joined by "; ", with "… and N more" when some were left out. */
export function formatIssues(err: z.ZodError, max = 10): string {
  const lines = err.issues.slice(0, max).map((i) => {
    const l = issueLine(i);
    return l.path ? `${l.path}: ${l.message}` : l.message;
  });
  if (err.issues.length > max) lines.push(`… and ${err.issues.length - max} more`);
  return lines.join('; ');
}
