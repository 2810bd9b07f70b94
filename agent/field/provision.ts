import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { parseArgs, promisify } from 'node:util';
import { Document, isMap } from 'yaml';
import { ConfigError, formatProblems, loadConfig, type ConfigProblem } from '../../config/loader.js';
import { Slug } from '../../config/schema/common.js';
import { EXIT, errorMessage } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import type { CliIo } from '../cli/io.js';

const execFileP = promisify(execFile);

export const DEFAULT_CONFIG_FILE = '/etc/roadside-agent/agent.yaml';
export const DEFAULT_DATA_DIR = '/var/lib/roadside-agent';
const DEFAULT_OWNER = 'roadside';

/** What provision asks a person at the terminal. Tests pass a scripted one; the CLI uses readlinePrompter. */
export interface Prompter {
  /** Asks for a line; an empty answer gives `def` (shown in brackets) or ''. */
  ask(question: string, def?: string): Promise<string>;
  /** Asks for a secret: nothing typed is echoed. */
  askSecret(question: string): Promise<string>;
  /** Shows a line (e.g. why an answer was refused). */
  note(text: string): void;
  close(): void;
}

/** Optional seams for tests: the prompter and the external commands. */
export interface ProvisionDeps {
  prompter?: Prompter;
  openssl?: string;
  ffprobe?: string;
}

/**
 * Prompts on a terminal with node:readline/promises. Secrets: the prompt is written, then everything readline
 * would echo is dropped until the answer is in (in raw mode the terminal itself echoes nothing).
 * Ctrl-C rejects the pending (or next) question with an AbortError.
 */
export function readlinePrompter(input: NodeJS.ReadableStream & { isTTY?: boolean }, output: NodeJS.WritableStream & { columns?: number }): Prompter {
  let muted = false;
  const sink = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        if (!muted) output.write(chunk);
        cb();
      },
    }),
    { columns: output.columns },
  );
  const rl = createInterface({ input, output: sink, terminal: input.isTTY === true });
  const aborts = new Set<AbortController>();
  // In raw mode Ctrl-C reaches readline, not the process: abort the pending question, or the next one
  // (Ctrl-C while ffprobe runs).
  let interrupted = false;
  rl.on('SIGINT', () => {
    interrupted = true;
    for (const a of aborts) a.abort();
  });
  const question = async (text: string): Promise<string> => {
    if (interrupted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    const ac = new AbortController();
    aborts.add(ac);
    try {
      return await rl.question(text, { signal: ac.signal });
    } finally {
      aborts.delete(ac);
    }
  };
  return {
    async ask(q, def) {
      const answer = (await question(`${q}${def ? ` [${def}]` : ''}: `)).trim();
      return answer === '' ? (def ?? '') : answer;
    },
    async askSecret(q) {
      output.write(`${q}: `);
      muted = true;
      try {
        return await question('');
      } finally {
        muted = false;
        output.write('\n');
      }
    },
    note: (text) => output.write(`${text}\n`),
    close: () => rl.close(),
  };
}

/** Same key the config loader uses for ROADSIDE_CAMERA_<ID>_USERNAME / _PASSWORD. */
export function cameraEnvKey(id: string): string {
  return id.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * One `NAME=value` line that systemd's EnvironmentFile= and a POSIX shell read back identically: single quotes
 * (literal) when possible, else double quotes escaping \ " $ `. Newlines and NUL cannot be represented.
 */
export function envLine(name: string, value: string): string {
  if (/[\n\r\0]/.test(value)) throw new ProvisionInputError(`${name}: a secret cannot contain a line break`);
  if (!value.includes("'")) return `${name}='${value}'`;
  return `${name}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

class ProvisionInputError extends Error {}


function mkdirMode(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
}

interface CameraInput {
  id: string;
  url: string;
  username?: string;
  password?: string;
  frame?: { width: number; height: number };
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
  const out = resolve(values.out ?? DEFAULT_CONFIG_FILE);
  if (existsSync(out) && !values.force) {
    io.stderr(`${out} exists: not overwriting it (use --force to replace it, or roadside-agent config check ${out})\n`);
    return EXIT.USAGE;
  }
  const interactive = io.interactive && !values['non-interactive'];
  const prompter = interactive ? (deps.prompter ?? readlinePrompter(process.stdin, process.stdout)) : undefined;
  try {
    const answers = await gather(values, io, prompter, deps);
    prompter?.close();
    return await apply(answers, io, deps);
  } catch (err) {
    prompter?.close();
    if (err instanceof ProvisionInputError) {
      io.stderr(`roadside-agent provision: ${err.message}\n`);
      return EXIT.USAGE;
    }
    if ((err as { name?: string }).name === 'AbortError') {
      io.stderr('\nprovision aborted: nothing was written\n');
      return EXIT.FATAL;
    }
    throw err;
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

interface Answers {
  out: string;
  dataDir: string;
  deviceId: string;
  site: string;
  cameras: CameraInput[];
  mqtt: { url: string; username: string; password?: string; allowInsecure: boolean };
  tls?: { ca?: string; cert?: string; key?: string; generate: boolean; org: string; newKey: boolean };
  owner?: string;
  force: boolean;
}

const str = (v: Values[string]): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: Values[string]): string[] => (Array.isArray(v) ? v : []);

function slugProblem(value: string): string | undefined {
  const r = Slug.safeParse(value);
  return r.success ? undefined : (r.error.issues[0]?.message ?? 'invalid');
}

/** Asks until `check` accepts the answer (interactive), or fails with a usage error naming the flag. */
async function need(
  prompter: Prompter | undefined,
  given: string | undefined,
  flag: string,
  question: string,
  check: (v: string) => string | undefined,
  def?: string,
): Promise<string> {
  if (given !== undefined) {
    const problem = check(given);
    if (problem) throw new ProvisionInputError(`${flag} "${given}": ${problem}`);
    return given;
  }
  if (!prompter) {
    if (def !== undefined) return def;
    throw new ProvisionInputError(`${flag} is required (or run in a terminal to be asked)`);
  }
  for (;;) {
    const answer = await prompter.ask(question, def);
    const problem = answer === '' ? 'an answer is required' : check(answer);
    if (!problem) return answer;
    prompter.note(`  ${problem}`);
  }
}

/** `ID=VALUE` pairs keyed by camera id; a bare VALUE applies when there is exactly one camera. */
function byCamera(flag: string, items: string[], cameras: CameraInput[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    const id = eq > 0 ? item.slice(0, eq) : undefined;
    if (id !== undefined && cameras.some((c) => c.id === id)) m.set(id, item.slice(eq + 1));
    else if (cameras.length === 1 && cameras[0]) m.set(cameras[0].id, item);
    else throw new ProvisionInputError(`${flag} "${item.replace(/=.*/, '=...')}": expected CAMERA_ID=VALUE with a camera given by --camera`);
  }
  return m;
}

function parseFrame(text: string): { width: number; height: number } | undefined {
  const m = /^\s*(\d{2,5})\s*[x×X]\s*(\d{2,5})\s*$/.exec(text);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}

/** Splits credentials out of an RTSP URL (they would leak into logs and process lists from the config). */
function splitUrl(raw: string): { url: string; username?: string; password?: string } {
  const text = raw.trim();
  if (!/^rtsps?:\/\//i.test(text)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new ProvisionInputError(`camera URL "${text}": expected rtsp://, rtsps:// or a video file`);
    return { url: isAbsolute(text) ? text : resolve(text) };
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ProvisionInputError(`camera URL "${text.replace(/\/\/[^@/]*@/, '//')}" is not a valid URL`);
  }
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = '';
  u.password = '';
  return { url: u.toString(), username, password };
}

function checkBrokerUrl(v: string): string | undefined {
  try {
    const u = new URL(v);
    if (!/^(mqtts?|wss?):$/.test(u.protocol)) return 'expected mqtt://, mqtts://, ws:// or wss://';
    if (u.username || u.password) return 'put the user name and password in --mqtt-user / --mqtt-password, not in the URL';
    return undefined;
  } catch {
    return 'not a valid URL';
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const isTlsUrl = (url: string) => /^(mqtts|wss):/i.test(url);

function readableFile(flag: string, f: string | undefined): string | undefined {
  if (f === undefined || f === '') return undefined;
  const p = resolve(f);
  if (!isFile(p)) throw new ProvisionInputError(`${flag} ${f}: file not found`);
  return p;
}

async function gather(values: Values, io: CliIo, prompter: Prompter | undefined, deps: ProvisionDeps): Promise<Answers> {
  const deviceId = await need(prompter, str(values['device-id']), '--device-id', 'Device id (e.g. box-n1-km12)', slugProblem);
  const site = await need(prompter, str(values.site), '--site', 'Site id (e.g. n1-km12)', slugProblem);

  // Cameras: from --camera, else asked one by one.
  const cameras: CameraInput[] = [];
  const addCamera = (id: string, rawUrl: string) => {
    const problem = slugProblem(id);
    if (problem) throw new ProvisionInputError(`camera id "${id}": ${problem}`);
    if (cameras.some((c) => c.id === id)) throw new ProvisionInputError(`camera id "${id}" given twice`);
    cameras.push({ id, ...splitUrl(rawUrl) });
  };
  for (const [i, item] of list(values.camera).entries()) {
    const eq = item.indexOf('=');
    const id = eq > 0 ? item.slice(0, eq) : '';
    if (id && !id.includes('/') && !slugProblem(id)) addCamera(id, item.slice(eq + 1));
    else addCamera(`cam${i + 1}`, item);
  }
  if (cameras.length === 0) {
    if (!prompter) throw new ProvisionInputError('--camera is required (or run in a terminal to be asked)');
    for (;;) {
      const n = cameras.length + 1;
      const id = await need(prompter, undefined, '--camera', `Camera ${n} id`, slugProblem, `cam${n}`);
      const url = await need(prompter, undefined, '--camera', `Camera ${id} RTSP URL (or a video file)`, (v) => {
        try {
          splitUrl(v);
          return undefined;
        } catch (err) {
          return errorMessage(err);
        }
      });
      addCamera(id, url);
      const more = await prompter.ask('Add another camera? (y/N)', 'n');
      if (!/^y/i.test(more)) break;
    }
  }
  const users = byCamera('--camera-user', list(values['camera-user']), cameras);
  const passwords = byCamera('--camera-password', list(values['camera-password']), cameras);
  const frames = byCamera('--frame', list(values.frame), cameras);
  for (const cam of cameras) {
    cam.username = users.get(cam.id) ?? cam.username;
    cam.password = passwords.get(cam.id) ?? io.env[`ROADSIDE_CAMERA_${cameraEnvKey(cam.id)}_PASSWORD`] ?? cam.password;
    const isRtsp = /^rtsps?:/i.test(cam.url);
    if (prompter && isRtsp && cam.username === undefined) {
      cam.username = (await prompter.ask(`Camera ${cam.id} user name (empty: none)`)) || undefined;
    }
    if (prompter && cam.username !== undefined && cam.password === undefined) {
      cam.password = (await prompter.askSecret(`Camera ${cam.id} password (not shown)`)) || undefined;
    }
    const frameText = frames.get(cam.id);
    if (frameText !== undefined) {
      cam.frame = parseFrame(frameText);
      if (!cam.frame) throw new ProvisionInputError(`--frame ${cam.id}=${frameText}: expected WIDTHxHEIGHT, e.g. 1920x1080`);
      continue;
    }
    const probed = values['no-probe'] ? undefined : await probeFrame(cam, deps.ffprobe ?? 'ffprobe');
    if (probed) io.stdout(`camera ${cam.id}: ${probed.width}x${probed.height} (ffprobe)\n`);
    if (prompter) {
      const def = probed ? `${probed.width}x${probed.height}` : undefined;
      const answer = await need(prompter, undefined, '--frame', `Camera ${cam.id} frame size WxH`, (v) => (parseFrame(v) ? undefined : 'expected WIDTHxHEIGHT, e.g. 1920x1080'), def);
      cam.frame = parseFrame(answer);
    } else if (probed) {
      cam.frame = probed;
    } else {
      throw new ProvisionInputError(`frame size of camera ${cam.id} unknown (${values["no-probe"] ? "--no-probe" : "ffprobe could not read it"}): give --frame ${cam.id}=WIDTHxHEIGHT`);
    }
  }

  const mqttUrl = await need(prompter, str(values['mqtt-url']), '--mqtt-url', 'MQTT broker URL (e.g. mqtts://broker.example:8883)', checkBrokerUrl);
  const mqttUser = str(values['mqtt-user']) ?? (prompter ? await prompter.ask('MQTT user name', deviceId) : deviceId);
  let mqttPassword = str(values['mqtt-password']) ?? io.env.ROADSIDE_MQTT_PASSWORD;
  if (mqttPassword === undefined && prompter) mqttPassword = (await prompter.askSecret('MQTT password (not shown; empty: none)')) || undefined;

  let ca = readableFile('--ca', str(values.ca));
  let cert = readableFile('--cert', str(values.cert));
  let key = readableFile('--key', str(values.key));
  let tls: Answers['tls'];
  if (isTlsUrl(mqttUrl)) {
    if (prompter && !values.ca) ca = readableFile('CA file', await prompter.ask('CA certificate of the broker, PEM file (empty: the system CAs)'));
    if (prompter && !values.cert && !values.key && !values['no-client-cert']) {
      cert = readableFile('client certificate', await prompter.ask('Client certificate, PEM file (empty: generate a key and a CSR)'));
      if (cert) key = readableFile('client key', await prompter.ask('Client private key, PEM file'));
    }
    if (Boolean(cert) !== Boolean(key)) throw new ProvisionInputError('--cert and --key go together');
    tls = { ca, cert, key, generate: !cert && !values['no-client-cert'], org: str(values.org) ?? 'roadside', newKey: values['new-key'] === true };
  } else if (ca || cert || key) {
    throw new ProvisionInputError(`certificates given, but ${mqttUrl} is not a TLS URL (mqtts:// or wss://)`);
  }
  return {
    out: resolve(str(values.out) ?? DEFAULT_CONFIG_FILE),
    dataDir: resolve(str(values['data-dir']) ?? DEFAULT_DATA_DIR),
    deviceId,
    site,
    cameras,
    mqtt: { url: mqttUrl, username: mqttUser, password: mqttPassword, allowInsecure: values['allow-insecure'] === true },
    tls,
    owner: str(values.owner),
    force: values.force === true,
  };
}

/** Frame size of a camera via ffprobe, or undefined (unreachable, no ffprobe, no video stream). */
async function probeFrame(cam: CameraInput, ffprobe: string): Promise<{ width: number; height: number } | undefined> {
  let target = cam.url;
  const rtsp = /^rtsps?:/i.test(cam.url);
  if (rtsp && cam.username) {
    // ffprobe takes RTSP credentials only in the URL: visible in the process list for the probe's few seconds.
    const u = new URL(cam.url);
    u.username = encodeURIComponent(cam.username);
    u.password = encodeURIComponent(cam.password ?? '');
    target = u.toString();
  }
  const args = ['-v', 'error', ...(rtsp ? ['-rtsp_transport', 'tcp', '-timeout', '5000000'] : []), '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', target];
  try {
    const { stdout } = await execFileP(ffprobe, args, { timeout: 15_000 });
    const m = /^(\d+),(\d+)/.exec(stdout.trim());
    return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
  } catch {
    return undefined;
  }
}

async function openssl(bin: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(bin, args, { maxBuffer: 1 << 20 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

async function lookupOwner(name: string | undefined): Promise<{ name: string; uid: number; gid: number } | undefined> {
  const explicit = name !== undefined && name !== '';
  if (name === '') return undefined;
  const user = name ?? DEFAULT_OWNER;
  if (!explicit && process.getuid?.() !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([execFileP('id', ['-u', user]), execFileP('id', ['-g', user])]);
    return { name: user, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    if (explicit) throw new ProvisionInputError(`--owner ${user}: no such user`);
    return undefined;
  }
}

/** Everything that touches the disk, in an order where a failure leaves no half-written file. */
async function apply(a: Answers, io: CliIo, deps: ProvisionDeps): Promise<number> {
  const bin = deps.openssl ?? 'openssl';
  const owner = await lookupOwner(a.owner);
  const confDir = dirname(a.out);
  const tlsDir = join(confDir, 'tls');
  const secretsFile = join(confDir, 'secrets.env');
  const created: string[] = [];

  // Given certificate and key must belong together: checked before anything is written.
  if (a.tls?.cert && a.tls.key) {
    const [certPub, keyPub] = await Promise.all([
      openssl(bin, ['x509', '-in', a.tls.cert, '-noout', '-pubkey']),
      openssl(bin, ['pkey', '-in', a.tls.key, '-pubout']),
    ]);
    if (certPub.trim() !== keyPub.trim()) throw new ProvisionInputError(`--key ${a.tls.key} does not belong to --cert ${a.tls.cert}`);
  }

  mkdirMode(confDir, 0o750);
  mkdirMode(a.dataDir, 0o750);
  mkdirMode(join(a.dataDir, 'evidence'), 0o750);
  if (owner) {
    for (const d of [a.dataDir, join(a.dataDir, 'evidence')]) chownSync(d, owner.uid, owner.gid);
    chownSync(confDir, owner.uid, owner.gid);
  }
  created.push(`data     ${a.dataDir} (0750)`);

  // TLS material under <config dir>/tls, referenced relative to the config file.
  let tlsYaml: Record<string, string> | undefined;
  let pendingCert: string | undefined;
  let csrFile: string | undefined;
  if (a.tls) {
    tlsYaml = {};
    mkdirMode(tlsDir, 0o750);
    if (owner) chownSync(tlsDir, owner.uid, owner.gid);
    if (a.tls.ca) {
      writeFileAtomic(join(tlsDir, 'ca.pem'), readFileSync(a.tls.ca), 0o644);
      tlsYaml.ca = 'tls/ca.pem';
      created.push(`ca       ${join(tlsDir, 'ca.pem')}`);
    }
    const keyFile = join(tlsDir, 'client.key');
    const certFile = join(tlsDir, 'client.pem');
    if (a.tls.cert && a.tls.key) {
      writeFileAtomic(certFile, readFileSync(a.tls.cert), 0o644);
      writeFileAtomic(keyFile, readFileSync(a.tls.key), 0o600);
      created.push(`cert     ${certFile}`, `key      ${keyFile} (0600)`);
    } else if (a.tls.generate) {
      if (existsSync(keyFile) && !a.tls.newKey) {
        chmodSync(keyFile, 0o600);
        created.push(`key      ${keyFile} (0600, kept: --new-key replaces it)`);
      } else {
        const pem = await openssl(bin, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
        writeFileAtomic(keyFile, pem, 0o600);
        created.push(`key      ${keyFile} (EC P-256, 0600)`);
      }
      csrFile = join(tlsDir, 'client.csr');
      const csr = await openssl(bin, [
        'req', '-new', '-key', keyFile, '-subj', `/O=${a.tls.org.replace(/[/\\]/g, '_')}/OU=${a.site}/CN=${a.deviceId}`,
        '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth',
      ]);
      writeFileAtomic(csrFile, csr, 0o644);
      created.push(`csr      ${csrFile} (CN=${a.deviceId}, OU=${a.site})`);
      if (!existsSync(certFile)) pendingCert = certFile;
    }
    if (a.tls.cert || a.tls.generate) {
      tlsYaml.cert = 'tls/client.pem';
      tlsYaml.key = 'tls/client.key';
      if (owner) chownSync(keyFile, owner.uid, owner.gid);
    }
    if (Object.keys(tlsYaml).length === 0) tlsYaml = undefined;
  }

  // Secrets: never in the YAML. The loader reads these variables; systemd loads the file (EnvironmentFile=).
  const secrets: Record<string, string> = {};
  if (a.mqtt.password) secrets.ROADSIDE_MQTT_PASSWORD = a.mqtt.password;
  for (const cam of a.cameras) if (cam.password) secrets[`ROADSIDE_CAMERA_${cameraEnvKey(cam.id)}_PASSWORD`] = cam.password;
  const secretsText = [
    '# roadside-agent secrets, written by `roadside-agent provision`. Mode 0600: root only (systemd reads it).',
    ...Object.entries(secrets).map(([k, v]) => envLine(k, v)),
    '',
  ].join('\n');
  writeFileAtomic(secretsFile, secretsText, 0o600);
  created.push(`secrets  ${secretsFile} (0600: ${Object.keys(secrets).join(', ') || 'none'})`);

  const config = {
    device: { id: a.deviceId, site: a.site, data_dir: a.dataDir },
    cameras: a.cameras.map((c) => ({ id: c.id, url: c.url, ...(c.username ? { username: c.username } : {}), frame: c.frame })),
    mqtt: {
      url: a.mqtt.url,
      ...(a.mqtt.username ? { username: a.mqtt.username } : {}),
      ...(tlsYaml ? { tls: tlsYaml } : {}),
      ...(a.mqtt.allowInsecure ? { allow_insecure: true } : {}),
    },
  };
  const header = [
    '# yaml-language-server: $schema=/opt/roadside-agent/current/config/config.schema.json',
    `# roadside-agent configuration for ${a.site}/${a.deviceId}, written by \`roadside-agent provision\`.`,
    `# Secrets are not in this file: ${basename(secretsFile)} beside it holds ${Object.keys(secrets).join(', ') || '(none yet)'}.`,
    '# Add counting lines, zones and calibration per camera (see config/examples/field.yaml), then check:',
    `#   roadside-agent config check ${a.out}`,
    '',
  ].join('\n');
  const doc = new Document(config);
  config.cameras.forEach((_, i) => {
    const frame = doc.getIn(['cameras', i, 'frame'], true);
    if (isMap(frame)) frame.flow = true; // frame: { width: 1920, height: 1080 }, as in the examples
  });
  writeFileAtomic(a.out, header + doc.toString(), 0o644);
  created.unshift(`config   ${a.out}`);

  // The check the agent runs at start, with the environment systemd will give it.
  let problems: ConfigProblem[] = [];
  try {
    loadConfig(a.out, { ...secrets });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = err.problems.filter((p) => !(pendingCert && p.path === 'mqtt.tls.cert' && p.message.includes('not found')));
  }
  io.stdout(`provisioned ${a.site}/${a.deviceId} with ${a.cameras.length} camera(s):\n${created.map((c) => `  ${c}\n`).join('')}`);
  if (problems.length > 0) {
    io.stderr(`${formatProblems(problems)}\n${problems.length} problem(s) found in ${a.out}: fix them, then run roadside-agent config check ${a.out}\n`);
    return EXIT.CONFIG;
  }
  const steps: string[] = [];
  if (pendingCert && csrFile) {
    steps.push(`Send ${csrFile} to the control center; install the signed certificate as ${pendingCert}${tlsYaml?.ca ? '' : ' (and the center CA as tls/ca.pem with mqtt.tls.ca, unless the system CAs sign the broker)'}`);
  }
  steps.push(`Check the box: roadside-agent doctor --config ${a.out}`);
  steps.push('Start the agent: systemctl enable --now roadside-agent (or systemctl restart roadside-agent)');
  io.stdout(`config check: ok${pendingCert ? ` (client certificate ${basename(pendingCert)} pending)` : ''}\nNext steps:\n${steps.map((s, i) => `  ${i + 1}. ${s}\n`).join('')}`);
  return EXIT.OK;
}
