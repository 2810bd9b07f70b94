import { resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../agent/field/locations.js';
import { readSecretsEnv, secretsProblem } from '../agent/field/secrets-env.js';
import { numberIn, usageError, type CliContext, type CliDeps } from './framework.js';
import { ENV_FILE_HELP } from './run-cmd.js';

/** Seams for tests: the clock/disk sources and the ffmpeg binary. */
export type DoctorDeps = NonNullable<CliDeps['doctor']>;

interface DoctorFlags {
  config: string;
  envFile?: string;
  json?: boolean;
  seconds: number;
  user?: string;
}

/** `doctor`: checks this box the way the agent will run. */
export function doctorCommand(ctx: CliContext): Command {
  return new Command('doctor')
    .summary('PASS/WARN/FAIL: config, cameras, model, broker, clock, disk, outbox, permissions')
    .description(
      'Checks this box the way the agent will run: config, each camera (stream measured for N seconds), the model, ' +
        'the broker (TLS, login, publish/subscribe round trip), the clock, free space, the outbox, file permissions. ' +
        'Reads the secrets as `run` does: --env-file, default secrets.env beside the config, as systemd gives them ' +
        'to the service (run with sudo to read it). Right after provision, while the center has not signed the ' +
        'client certificate yet, it warns and checks everything else (the broker: TCP and TLS, no login).',
    )
    .option('-c, --config <FILE>', 'the agent config', DEFAULT_CONFIG_FILE)
    .option('--env-file <FILE>', ENV_FILE_HELP)
    .option('--json', 'print the results as JSON: [{check, status, detail, fix, figures}]')
    .option('--seconds <N>', 'seconds of camera stream measured after the first frame', numberIn(1, 60, 'a number of seconds'), 5)
    .option('--user <USER>', 'user the agent runs as, for the permission checks (default: roadside if it exists)')
    .addHelpText('after', '\nExit codes: 0 every check passed (warnings allowed), 1 a check failed, 64 usage, 78 invalid configuration.')
    .action(async (opts: DoctorFlags, cmd: Command) => {
      ctx.code = await doctor(cmd, opts, ctx);
    });
}

async function doctor(cmd: Command, opts: DoctorFlags, ctx: CliContext): Promise<number> {
  const { io } = ctx;
  const configFile = resolve(opts.config);
  const problem = secretsProblem(readSecretsEnv(configFile, opts.envFile));
  if (problem) usageError(cmd, problem);
  // Loaded only when it runs: the checks bring the camera, detector and MQTT modules.
  const { runDoctor } = await import('../agent/field/doctor/index.js');
  const { formatTable, progressHooks, summaryLine, toJson } = await import('../agent/field/doctor/report.js');
  const color = io.interactive && !io.env.NO_COLOR;
  const report = await runDoctor(
    { configFile, env: io.env, envFile: opts.envFile, seconds: opts.seconds, user: opts.user, ...ctx.deps.doctor },
    progressHooks(io.stderr, io.interactive, color),
  );
  if (opts.json) io.stdout(`${JSON.stringify(toJson(report.results), null, 2)}\n`);
  else io.stdout(formatTable(report.results, color) + summaryLine(report.results, report.duration_ms, report.exitCode));
  return report.exitCode;
}
