import { ConfigError, formatProblems, loadConfig, loadConfigFile, problemSummary, type LoadedConfig } from '../config/loader.js';
import type { CliIo } from '../core/cli-io.js';
import { EXIT } from '../core/errors.js';

export { processIo, type CliIo, type Command } from '../core/cli-io.js';

/** Prints a config's problems (at most MAX_PROBLEMS_SHOWN, then "… and N more"), the summary and `footer`; returns 78. */
export function reportConfigError(err: ConfigError, file: string, io: CliIo, footer = ''): number {
  io.stderr(`${formatProblems(err.problems, err.total)}\n${problemSummary(err, file)}\n${footer}`);
  return EXIT.CONFIG;
}

/** Loads a config for a command; on problems prints them and returns the exit code instead. */
export function loadConfigOrReport(file: string, io: CliIo, footer = ''): LoadedConfig | number {
  try {
    return loadConfig(file, io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return reportConfigError(err, file, io, footer);
  }
}

/** loadConfigOrReport with a time limit on the read (config/read.ts): for commands that can wait on a promise. */
export async function loadConfigFileOrReport(file: string, io: CliIo, footer = ''): Promise<LoadedConfig | number> {
  try {
    return await loadConfigFile(file, io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return reportConfigError(err, file, io, footer);
  }
}
