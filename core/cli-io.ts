/** Where a command writes; tests pass buffers, the binary passes the process streams. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** True when a person is at the terminal (prompts, progress). */
  interactive: boolean;
}

export const processIo = (): CliIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
});

/** A command's outcome: its exit code. */
export type Command = (args: string[], io: CliIo) => Promise<number>;
