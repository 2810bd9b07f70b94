import { Command } from 'commander';
import sharp from 'sharp';
import { buildAgent } from '../agent/app.js';
import { recoverPendingConfig } from '../agent/config-apply/recovery.js';
import { createLogger } from '../core/log.js';
import { DEFAULT_CONFIG_FILE } from '../agent/field/locations.js';
import { readSecretsEnv, secretsProblem, withSecrets } from '../agent/field/secrets-env.js';
import { Controller } from '../agent/lifecycle.js';
import { supervise } from '../agent/supervisor.js';
import { numberIn, usageError, type CliContext } from './framework.js';
import { loadConfigFileOrReport } from './io.js';

interface RunOptions {
  config: string;
  envFile?: string;
  stopDeadlineMs: number;
}

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
      ctx.code = await runAgent(cmd, ctx);
    });
}

async function runAgent(cmd: Command, ctx: CliContext): Promise<number> {
  const opts = cmd.opts<RunOptions>();
  const secrets = readSecretsEnv(opts.config, opts.envFile);
  const problem = secretsProblem(secrets);
  if (problem) usageError(cmd, problem);
  recoverPendingConfig(opts.config, { ...ctx.io, env: withSecrets(ctx.io.env, secrets) }); // config-apply: a probation cut short rolls back
  const loaded = await loadConfigFileOrReport(opts.config, { ...ctx.io, env: withSecrets(ctx.io.env, secrets) }, 'not starting: the config has problems\n');
  if (typeof loaded === 'number') return loaded;
  const { config } = loaded;
  const log = createLogger({ level: config.logging.level, pretty: config.logging.pretty });
  log.info(
    // Not "secrets_file": the logger blanks keys that look secret.
    { config: loaded.file, config_hash: loaded.hash, device: config.device.id, site: config.device.site, env_file: secrets.error === null ? secrets.file : null },
    'starting roadside-agent',
  );
  // Under systemd the agent's user cannot read the root-only file: EnvironmentFile= has set the variables.
  const fromEnvironment = Object.keys(ctx.io.env).some((k) => k.startsWith('ROADSIDE_'));
  if (secrets.error !== null && secrets.error !== 'ENOENT' && !fromEnvironment) {
    log.warn({ env_file: secrets.file, error: secrets.error }, `cannot read ${secrets.file} (${secrets.error}): passwords missing; run with sudo, or as the service does`);
  }
  // The agent encodes each image once (evidence stills, crops, snapshots): libvips' operation cache would only
  // hold memory, up to 50 MB (~10 MB less steady-state RSS without it, measured; docs/performance.md).
  sharp.cache(false);
  const agent = buildAgent(loaded, log);
  const controller = new Controller(agent.modules, log, opts.stopDeadlineMs);
  return supervise(controller, log, { onFatal: agent.onFatal, recordExit: agent.recordExit });
}
