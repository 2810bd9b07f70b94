/** Base of the agent's typed errors: a stable `code` that callers and tests match on, never the message. */
export class AgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Process exit codes (sysexits.h where one fits). */
export const EXIT = { OK: 0, FATAL: 1, USAGE: 64, CONFIG: 78 } as const;

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
