import { ConfigError, formatProblems, loadConfig, type LoadedConfig } from '../../config/loader.js';
import { EXIT } from '../errors.js';
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

/** Loads a config for a command; on problems prints every one of them and returns the exit code instead. */
export function loadConfigOrReport(file: string, io: CliIo, footer = ''): LoadedConfig | number {
  try {
    return loadConfig(file, io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr(`${formatProblems(err.problems)}\n${footer}`);
    return EXIT.CONFIG;
  }
}
