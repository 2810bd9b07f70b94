// `center config push|get` and `center evidence get`: requests to one device over the broker. The broker flags
// are shared; the password comes from env ROADSIDE_CENTER_PASSWORD, never from an argument.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CliIo } from '../core/cli-io.js';
import { EXIT } from '../core/errors.js';
import { LOG_LEVELS, type LogLevel } from '../core/log.js';
import type { CenterConfigOptions } from './config-cmd.js';
import { collectUrls, URL_HELP } from './broker-urls.js';

interface DeviceFlags {
  url?: string[];
  protocol?: string;
  prefix?: string;
  device?: string;
  username?: string;
  ca?: string;
  cert?: string;
  key?: string;
  clientId?: string;
  timeoutS?: number;
  logLevel: LogLevel;
}

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};

/** A subcommand with the flags every device request needs. */
function deviceCommand(name: string): Command {
  return new Command(name)
    .option('--url <URL>', URL_HELP, collectUrls)
    .option('--device <D>', 'device id, or SITE/DEVICE (the site is read from the retained birth otherwise); required')
    .addOption(new Option('--protocol <4|5>', 'MQTT version; 4 = 3.1.1').choices(['4', '5']).default('5'))
    .option('--prefix <P>', 'topic prefix of the fleet (default: roadside)')
    .option('--username <U>', 'user name; the password comes from env ROADSIDE_CENTER_PASSWORD')
    .option('--ca <FILE>', 'CA bundle (PEM) of the broker certificate')
    .option('--client-cert <FILE>', 'client certificate (mutual TLS; with --client-key)')
    .option('--client-key <FILE>', 'client key (mutual TLS; with --client-cert)')
    .option('--client-id <ID>', 'MQTT client id')
    .option('--timeout-s <S>', 'longest wait for the birth and for each answer (default: 30)', positive)
    .addOption(new Option('--log-level <L>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('warn'));
}

function linkOptions(cmd: Command, io: CliIo): CenterConfigOptions {
  const f = cmd.opts<DeviceFlags & { clientCert?: string; clientKey?: string }>();
  const usage = (message: string): never => cmd.error(message, { exitCode: EXIT.USAGE });
  if (!f.url) usage('--url is required');
  if (!f.device) usage('--device is required');
  if ((f.clientCert === undefined) !== (f.clientKey === undefined)) usage('--client-cert and --client-key go together');
  return {
    url: f.url!,
    protocol: f.protocol === '4' ? 4 : 5,
    prefix: f.prefix,
    device: f.device!,
    username: f.username,
    password: io.env.ROADSIDE_CENTER_PASSWORD,
    ca: f.ca,
    cert: f.clientCert,
    key: f.clientKey,
    client_id: f.clientId,
    timeout_s: f.timeoutS,
    log_level: f.logLevel,
  };
}

/** Adds `config push|get` and `evidence get` under the `center` command. */
export function addDeviceCommands(center: Command, io: CliIo, done: (code: number) => void): Command {
  const config = new Command('config').summary("read or change a box's config (validated, applied in place, rolled back on failure)");
  config.addCommand(
    deviceCommand('push')
      .summary('push a config file to a box (or a JSON merge patch with --patch)')
      .argument('<FILE>', 'the new agent.yaml, or a JSON merge patch with --patch')
      .option('--patch', 'FILE is a JSON merge patch (RFC 7396) of the running config')
      .option('--dry-run', 'only check it on the box: every problem, nothing changed')
      .option('--base-hash <H>', "the config the change was made from (default: the box's birth)")
      .option('--no-wait', 'do not wait for the end of the probation')
      .addHelpText('after', '\nExit codes: 0 valid (dry run) or confirmed, 78 problems, 1 refused, rolled back or no answer, 64 usage.')
      .action(async (file: string, _o: unknown, cmd: Command) => {
        const f = cmd.opts<{ patch?: boolean; dryRun?: boolean; baseHash?: string; wait: boolean }>();
        const { configPush } = await import('./config-cmd.js');
        done(await configPush({ ...linkOptions(cmd, io), file, patch: f.patch, dry_run: f.dryRun, base_hash: f.baseHash, wait: f.wait }, io));
      }),
  );
  config.addCommand(
    deviceCommand('get')
      .summary("print a box's running config (secrets redacted), its hash and the previous good hash")
      .action(async (_o: unknown, cmd: Command) => {
        const { configGet } = await import('./config-cmd.js');
        done(await configGet(linkOptions(cmd, io), io));
      }),
  );
  const evidence = new Command('evidence').summary("fetch a violation's evidence package from a box");
  evidence.addCommand(
    deviceCommand('get')
      .summary('fetch an evidence package chunk by chunk (hashed, resumable) and verify it')
      .option('--event <ID>', 'event id (UUID) of the violation; required')
      .option('--out <DIR>', 'directory for the package (a resumed fetch reuses what is there); required')
      .option('--cert <FILE>', "the box's certificate (or public key) for the signature check")
      .option('--signer-ca <FILE>', "the fleet CA that must have issued the package's cert.pem")
      .option('--manifest-sha256 <H>', "the event's evidence.manifest_sha256: the package must be exactly that one")
      .addHelpText('after', '\nExit codes: 0 complete and consistent, 1 fetch or check failed, 64 usage.')
      .action(async (_o: unknown, cmd: Command) => {
        const f = cmd.opts<{ event?: string; out?: string; cert?: string; signerCa?: string; manifestSha256?: string }>();
        if (!f.event || !f.out) cmd.error(`${f.event ? '--out' : '--event'} is required`, { exitCode: EXIT.USAGE });
        const { evidenceGet } = await import('./evidence-get.js');
        done(await evidenceGet({ ...linkOptions(cmd, io), event: f.event, out: f.out, signer_cert: f.cert, signer_ca: f.signerCa, manifest_sha256: f.manifestSha256 }, io));
      }),
  );
  // The receiver's own flags (--url, --ca …) stand before a subcommand only, so a subcommand keeps its own.
  return center.enablePositionalOptions().addCommand(config).addCommand(evidence);
}
