import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDoctor, type DoctorOptions } from '../field/doctor/index.js';
import { formatTable, progressHooks, summaryLine, toJson } from '../field/doctor/report.js';
import { EXIT } from '../../core/errors.js';
import type { CliIo } from './io.js';

const USAGE = `usage: roadside-agent doctor --config FILE [--json] [--seconds N] [--user USER]
Checks this box the way the agent will run: config, each camera (stream measured for N seconds), the model,
the broker (TLS, login, publish/subscribe round trip), the clock, free space, the outbox, file permissions.
Reads secrets.env beside the config, as systemd does for the service (run with sudo to read it).

  --config FILE, -c FILE    the agent config (e.g. /etc/roadside-agent/agent.yaml)
  --json                    print the results as JSON: [{check, status, detail, fix, figures}]
  --seconds N               seconds of camera stream measured after the first frame, 1-60 (default 5)
  --user USER               user the agent runs as, for the permission checks (default: roadside if it exists)

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 64 usage, 78 invalid configuration.
`;

/** Seams for tests: the clock/disk sources and the ffmpeg binary. */
export type DoctorDeps = Pick<DoctorOptions, 'sources' | 'ffmpegPath'>;

/** `doctor`: the CLI entry point. */
export async function doctorCommand(args: string[], io: CliIo): Promise<number> {
  return runDoctorCommand(args, io);
}

/** `doctor` with injectable sources (tests). */
export async function runDoctorCommand(args: string[], io: CliIo, deps: DoctorDeps = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      seconds: { type: 'string' },
      user: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT.OK;
  }
  const seconds = values.seconds === undefined ? 5 : Number(values.seconds);
  if (!values.config || !Number.isFinite(seconds) || seconds < 1 || seconds > 60) {
    io.stderr(values.config ? `--seconds ${values.seconds}: expected a number of seconds from 1 to 60\n` : USAGE);
    return EXIT.USAGE;
  }
  const color = io.interactive && !io.env.NO_COLOR;
  const report = await runDoctor(
    { configFile: resolve(values.config), env: io.env, seconds, user: values.user, ...deps },
    progressHooks(io.stderr, io.interactive, color),
  );
  if (values.json) io.stdout(`${JSON.stringify(toJson(report.results), null, 2)}\n`);
  else io.stdout(formatTable(report.results, color) + summaryLine(report.results, report.duration_ms, report.exitCode));
  return report.exitCode;
}
