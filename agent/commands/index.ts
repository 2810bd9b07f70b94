// The agent's commands on top of the uplink's own (which every Uplink registers: uplink-commands.ts).
// Names, arguments and results are the catalogue in contract/commands.ts.
import type { CameraConfig, Config } from '../../config/schema/index.js';
import type { CameraAnalytics } from '../../inference/analytics/index.js';
import type { Logger } from '../../core/log.js';
import type { LoadedConfig } from '../../config/loader.js';
import { registerConfigCommands, type ConfigControl } from './config.js';
import { acknowledgeInStore, registerEvidence } from './evidence.js';
import { registerRebaseReference, type TamperLookup } from './rebase-reference.js';
import type { AgentCommands } from './registry.js';
import { registerReloadConfig } from './reload-config.js';
import { registerSignal } from './signal.js';
import { registerSnapshot } from './snapshot.js';

export * from './registry.js';
export * from './uplink-commands.js';
export type { ConfigControl } from './config.js';
export type { TamperLookup } from './rebase-reference.js';

export interface AgentCommandDeps {
  /** The uplink's registry (`uplink.commands`). */
  commands: AgentCommands;
  /** The config in force (config-apply changes it). */
  loaded: () => LoadedConfig;
  /** The cameras in force (a live view). */
  cameras: readonly CameraConfig[];
  /** Where signal states go: every camera's analytics, kept across config changes. */
  signals: Pick<CameraAnalytics, 'setSignal'>;
  /** config-get / config-apply. */
  config: ConfigControl;
  log: Logger;
  /** Ends the process so the service manager starts it again (with the new config). */
  requestRestart: (reason: string) => void;
  /** rebase-reference: the tamper watch of a camera in force (without it the command answers TAMPER_DISABLED). */
  tamper?: TamperLookup;
}

/** Registers snapshot, signal, reload-config, config-get, config-apply and rebase-reference. */
export function registerAgentCommands(d: AgentCommandDeps): void {
  registerSnapshot(d.commands, d.cameras);
  registerSignal(d.commands, (): Pick<Config, 'analytics' | 'cameras'> => d.loaded().config, [d.signals]);
  registerReloadConfig(d.commands, { loaded: d.loaded, log: d.log, requestRestart: d.requestRestart });
  registerConfigCommands(d.commands, d.config);
  registerRebaseReference(d.commands, d.cameras, d.tamper);
  registerEvidence(d.commands, { dir: () => d.loaded().config.analytics.evidence.dir, onAcknowledged: acknowledgeInStore(() => d.loaded().config.analytics.evidence, d.log) });
}
