import { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR } from '../agent/field/locations.js';
import { collect, flagValues, usageError, type CliContext } from './framework.js';

/** `provision`: the flags; the work is in agent/field/provision.ts (loaded when the command runs). */
export function provisionCommand(ctx: CliContext): Command {
  return new Command('provision')
    .summary('write config, secrets.env, data dirs, TLS key + CSR for this box (prompts in a terminal)')
    .description(
      'Writes the agent config (no secrets), secrets.env (0600), the data directories (0750) and, for mutual TLS, a ' +
        'private key (EC P-256, 0600) + CSR; then checks the config. Prompts for what is missing when run in a ' +
        'terminal. Without --frame each camera is probed for its frame size; when it gives no picture provision ' +
        'says why (401 unauthorized, connection refused, not found, timeout).',
    )
    .option('--device-id <ID>', 'device id (lowercase, digits, - _), e.g. box-n1-km12')
    .option('--site <SITE>', 'site id, e.g. n1-km12')
    .option('--camera <[ID=]URL>', 'camera RTSP URL or video file; repeat per camera (credentials in the URL are moved out)', collect)
    .option('--frame <[ID=]WxH>', 'camera frame size (default: probed from the camera)', collect)
    .option('--camera-user <ID=USER>', 'camera user name', collect)
    .option('--camera-password <ID=PW>', 'camera password (visible in the process list: prefer ROADSIDE_CAMERA_<ID>_PASSWORD or the prompt)', collect)
    .option('--mqtt-url <URL>', 'broker, e.g. mqtts://broker.example:8883')
    .option('--mqtt-user <USER>', 'broker user name (default: the device id)')
    .option('--mqtt-password <PW>', 'broker password (prefer ROADSIDE_MQTT_PASSWORD or the prompt)')
    .option('--allow-insecure', 'allow plaintext mqtt:// to a non-loopback broker')
    .option('--ca <FILE>', 'CA certificate of the broker (default: the system CAs)')
    .option('--cert <FILE>', 'install this client certificate (with --key) instead of generating a key + CSR')
    .option('--key <FILE>', 'the private key of --cert')
    .option('--no-client-cert', 'no mutual TLS (no key, no CSR)')
    .option('--org <ORG>', 'O= of the CSR subject (OU= is the site, CN= the device id)', 'roadside')
    .option('--new-key', 'generate a new private key even if one exists')
    .option('--out <FILE>', 'config file; secrets.env and tls/ go beside it', DEFAULT_CONFIG_FILE)
    .option('--data-dir <DIR>', 'data directory', DEFAULT_DATA_DIR)
    .option('--owner <USER>', 'owner of the data directories and the key (default: roadside if that user exists)')
    .option('--no-probe', 'do not probe the cameras for their frame size')
    .option('--non-interactive', 'never prompt, even in a terminal')
    .option('--force', 'overwrite an existing config and secrets.env')
    .addHelpText(
      'after',
      '\nOutputs on /proc, /sys or /dev are refused. A --camera-user/--camera-password/--frame whose ID names no camera ' +
        'given by --camera is refused.\n ' +
        'Exit codes: 0 provisioned, 64 usage / missing input / config exists, 78 config problems, 1 failure.',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const { provision, ProvisionInputError } = await import('../agent/field/provision.js');
      try {
        ctx.code = await provision(flagValues(cmd), ctx.io, ctx.deps.provision);
      } catch (err) {
        if (err instanceof ProvisionInputError) usageError(cmd, err.message);
        throw err;
      }
    });
}
