// reload-config: re-reads the config file. A config with problems is refused with every problem and the running
// one is kept; a valid, changed one is applied by a restart (every module starts from the new file).
import { ConfigError, formatProblems, loadConfig, type LoadedConfig } from '../../config/loader.js';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { AgentCommands } from './registry.js';

/** Time left for the response to go out before the orderly stop begins. */
const RESTART_DELAY_MS = 500;

export interface ReloadConfigDeps {
  /** The config in force (config-apply changes it). */
  loaded: () => LoadedConfig;
  log: Logger;
  /** Ends the process so the service manager starts it again (with the new config). */
  requestRestart: (reason: string) => void;
}

export function registerReloadConfig(commands: AgentCommands, d: ReloadConfigDeps): void {
  commands.register('reload-config', () => {
    const running = d.loaded();
    let next: LoadedConfig;
    try {
      next = loadConfig(running.file);
    } catch (err) {
      if (err instanceof ConfigError) throw new AgentError('CONFIG_INVALID', `${err.problems.length} problem(s), running config kept:\n${formatProblems(err.problems)}`);
      throw err;
    }
    if (next.hash === running.hash) return { changed: false, config_hash: next.hash };
    d.log.warn({ from: running.hash, to: next.hash }, 'config changed: restarting to apply it');
    setTimeout(() => d.requestRestart('config_reload'), RESTART_DELAY_MS).unref();
    return { changed: true, config_hash: next.hash, restarting: true };
  });
}
