// The agent's commands on top of the uplink's own (which every Uplink registers: uplink-commands.ts).
// Names, arguments and results are the catalogue in contract/commands.ts.
import type { Config } from '../../config/schema/index.js';
import type { CameraAnalytics } from '../../inference/analytics/index.js';
import type { Logger } from '../../core/log.js';
import type { LoadedConfig } from '../../config/loader.js';
import type { AgentCommands } from './registry.js';
import { registerReloadConfig } from './reload-config.js';
import { registerSignal } from './signal.js';
import { registerSnapshot } from './snapshot.js';

export * from './registry.js';
export * from './uplink-commands.js';

export interface AgentCommandDeps {
  /** The uplink's registry (`uplink.commands`). */
  commands: AgentCommands;
  config: Config;
  loaded: LoadedConfig;
  analytics: readonly CameraAnalytics[];
  log: Logger;
  /** Ends the process so the service manager starts it again (with the new config). */
  requestRestart: (reason: string) => void;
}

/** Registers snapshot, signal and reload-config. */
export function registerAgentCommands(d: AgentCommandDeps): void {
  registerSnapshot(d.commands, d.config.cameras);
  registerSignal(d.commands, d.config, d.analytics);
  registerReloadConfig(d.commands, { loaded: d.loaded, log: d.log, requestRestart: d.requestRestart });
}
