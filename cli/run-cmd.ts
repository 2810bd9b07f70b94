import { Command } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../agent/field/locations.js';
import { numberIn, type CliContext } from './framework.js';
import type { RunOptions } from './run-agent.js';

export const ENV_FILE_HELP = 'secrets as NAME=value lines (default: secrets.env beside the config, when there); the environment wins';

/** `run`: nothing starts on an invalid config; otherwise runs until SIGTERM/SIGINT. */
export function runCommand(ctx: CliContext): Command {
  return new Command('run')
    .summary('run the agent (SIGTERM/SIGINT: orderly stop within a deadline)')
    .description(
      'Runs the agent: cameras, detector, tracker, analytics, outbox and MQTT uplink, until SIGTERM or SIGINT. ' +
        'Secrets come from --env-file (default: secrets.env beside the config), as the service gets them from ' +
        "systemd's EnvironmentFile=; a variable already in the environment wins. Nothing starts on an invalid config.",
    )
    .option('-c, --config <FILE>', 'the agent config', DEFAULT_CONFIG_FILE)
    .option('--env-file <FILE>', ENV_FILE_HELP)
    .option('--stop-deadline-ms <MS>', 'longest orderly stop before the process exits anyway', numberIn(100, 600_000, 'milliseconds', true), 10_000)
    .addHelpText('after', '\nExit codes: 0 stopped on a signal, 1 fatal (systemd restarts the agent), 64 usage, 78 invalid configuration.')
    .action(async (_opts: RunOptions, cmd: Command) => {
      // The agent's module tree is loaded only when it runs: help, completion and the other commands skip it.
      const { runAgent } = await import('./run-agent.js');
      ctx.code = await runAgent(cmd, ctx);
    });
}
