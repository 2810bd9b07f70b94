// config-get and config-apply: the remote side of agent/config-apply (the ConfigApplier does the work and can
// be used without MQTT). Secrets never travel: config-get redacts them and config-apply refuses them; they are
// provisioned on the box (env/secrets.env). Pushing one encrypted would need key management that operations
// has not decided, so it is out of scope.
import type { AgentCommands } from './registry.js';
import type { CommandArgs, CommandResult } from '../../contract/commands.js';

/** What the commands need of the applier (agent/config-apply/applier.ts ConfigApplier). */
export interface ConfigControl {
  get(): CommandResult<'config-get'>;
  apply(req: CommandArgs<'config-apply'>): Promise<CommandResult<'config-apply'>>;
}

export function registerConfigCommands(commands: AgentCommands, config: ConfigControl): void {
  commands.register('config-get', () => config.get());
  commands.register('config-apply', (args) => config.apply(args));
}
