// `run`'s implementation (the command is declared in run-cmd.ts): loads the config and runs the agent.
import type { Command } from 'commander';
import { buildAgent } from '../agent/app.js';
import { recoverPendingConfig } from '../agent/config-apply/recovery.js';
import { createLogger } from '../core/log.js';
import { readSecretsEnv, secretsProblem, withSecrets } from '../agent/field/secrets-env.js';
import { Controller } from '../agent/lifecycle.js';
import { supervise } from '../agent/supervisor.js';
import { usageError, type CliContext } from './framework.js';
import { loadConfigFileOrReport } from './io.js';

export interface RunOptions {
  config: string;
  envFile?: string;
  stopDeadlineMs: number;
}

/** `run`: nothing starts on an invalid config; otherwise runs until SIGTERM/SIGINT; resolves the exit code. */
export async function runAgent(cmd: Command, ctx: CliContext): Promise<number> {
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
  const agent = await buildAgent(loaded, log);
  const controller = new Controller(agent.modules, log, opts.stopDeadlineMs);
  return supervise(controller, log, { onFatal: agent.onFatal, recordExit: agent.recordExit });
}
