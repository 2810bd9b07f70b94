/** Where a command writes; tests pass buffers, the binary passes the process streams. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** True when a person is at the terminal (prompts, progress). */
  interactive: boolean;
  /** True when stderr is a terminal even if stdout is not (a progress bar beside `> events.jsonl`); default false. */
  stderrTerminal?: boolean;
}

export const processIo = (): CliIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  stderrTerminal: Boolean(process.stderr.isTTY),
});

/** A command's outcome: its exit code. */
export type Command = (args: string[], io: CliIo) => Promise<number>;
