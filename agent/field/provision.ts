// `roadside-agent provision`: the entry point. The work is in provision/: prompter (questions at a terminal),
// inputs (checked values), gather (flags + environment + ffprobe + questions → Answers), tls (key, CSR,
// given certificates), document (agent.yaml and secrets.env text), apply (the writes and the final check).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXIT } from '../../core/errors.js';
import type { CliIo } from '../cli/io.js';
import { apply } from './provision/apply.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR, gather, outputLocations } from './provision/gather.js';
import { ProvisionInputError } from './provision/inputs.js';
import { DEFAULT_OWNER } from './provision/owner.js';
import { readlinePrompter, type Prompter } from './provision/prompter.js';

export { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR } from './provision/gather.js';
export { cameraEnvKey, envLine } from './provision/inputs.js';
export { readlinePrompter, type Prompter } from './provision/prompter.js';

/** Optional seams for tests: the prompter and the external commands. */
export interface ProvisionDeps {
  prompter?: Prompter;
  openssl?: string;
  ffprobe?: string;
}

const USAGE = `usage: roadside-agent provision [options]
Writes the agent config (no secrets), secrets.env (0600), the data directories (0750) and, for mutual TLS, a
private key (EC P-256, 0600) + CSR; then checks the config. Prompts for what is missing when run in a terminal.

  --device-id ID            device id (lowercase, digits, - _), e.g. box-n1-km12
  --site SITE               site id, e.g. n1-km12
  --camera [ID=]URL         camera RTSP URL or video file; repeat per camera (credentials in the URL are moved out)
  --frame [ID=]WxH          camera frame size (default: probed with ffprobe)
  --camera-user ID=USER     camera user name
  --camera-password ID=PW   camera password (visible in the process list: prefer the environment variable
                            ROADSIDE_CAMERA_<ID>_PASSWORD or the prompt)
  --mqtt-url URL            broker, e.g. mqtts://broker.example:8883
  --mqtt-user USER          broker user name (default: the device id)
  --mqtt-password PW        broker password (prefer ROADSIDE_MQTT_PASSWORD or the prompt)
  --allow-insecure          allow plaintext mqtt:// to a non-loopback broker
  --ca FILE                 CA certificate of the broker (default: the system CAs)
  --cert FILE --key FILE    install this client certificate and key instead of generating a key + CSR
  --no-client-cert          no mutual TLS (no key, no CSR)
  --org ORG                 O= of the CSR subject (default roadside; OU= is the site, CN= the device id)
  --new-key                 generate a new private key even if one exists
  --out FILE                config file (default ${DEFAULT_CONFIG_FILE}); secrets.env and tls/ go beside it
  --data-dir DIR            data directory (default ${DEFAULT_DATA_DIR})
  --owner USER              owner of the data directories and the key (default: ${DEFAULT_OWNER} if that user exists)
  --no-probe                do not run ffprobe on the cameras
  --non-interactive         never prompt, even in a terminal
  --force                   overwrite an existing config and secrets.env

Outputs on /proc, /sys or /dev are refused. A --camera-user/--camera-password/--frame whose ID names no camera
given by --camera is refused.

Exit codes: 0 provisioned, 64 usage / missing input / config exists, 78 config problems, 1 failure.
`;

/** `provision`: the CLI entry point. */
export async function provisionCommand(args: string[], io: CliIo): Promise<number> {
  return runProvision(args, io);
}

/** `provision` with injectable prompter and commands (tests). */
export async function runProvision(args: string[], io: CliIo, deps: ProvisionDeps = {}): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'device-id': { type: 'string' },
      site: { type: 'string' },
      camera: { type: 'string', multiple: true },
      frame: { type: 'string', multiple: true },
      'camera-user': { type: 'string', multiple: true },
      'camera-password': { type: 'string', multiple: true },
      'mqtt-url': { type: 'string' },
      'mqtt-user': { type: 'string' },
      'mqtt-password': { type: 'string' },
      'allow-insecure': { type: 'boolean' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'no-client-cert': { type: 'boolean' },
      org: { type: 'string' },
      'new-key': { type: 'boolean' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      owner: { type: 'string' },
      'no-probe': { type: 'boolean' },
      'non-interactive': { type: 'boolean' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT.OK;
  }
  const usageError = (err: ProvisionInputError) => {
    io.stderr(`roadside-agent provision: ${err.message}\n`);
    return EXIT.USAGE;
  };
  let out: string;
  try {
    out = outputLocations(values).out;
  } catch (err) {
    if (err instanceof ProvisionInputError) return usageError(err);
    throw err;
  }
  if (existsSync(out) && !values.force) {
    io.stderr(`${out} exists: not overwriting it (use --force to replace it, or roadside-agent config check ${out})\n`);
    return EXIT.USAGE;
  }
  const interactive = io.interactive && !values['non-interactive'];
  const prompter = interactive ? (deps.prompter ?? readlinePrompter(process.stdin, process.stdout)) : undefined;
  try {
    const answers = await gather(values, io, prompter, deps.ffprobe ?? 'ffprobe');
    prompter?.close();
    return await apply(answers, io, deps.openssl ?? 'openssl');
  } catch (err) {
    prompter?.close();
    if (err instanceof ProvisionInputError) return usageError(err);
    if ((err as { name?: string }).name === 'AbortError') {
      io.stderr('\nprovision aborted: nothing was written\n');
      return EXIT.FATAL;
    }
    throw err;
  }
}
