import { ConfigError, formatProblems, loadConfig, type LoadedConfig } from '../../config/loader.js';
import type { CliIo } from '../../core/cli-io.js';
import { EXIT } from '../../core/errors.js';

export { processIo, type CliIo, type Command } from '../../core/cli-io.js';

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
