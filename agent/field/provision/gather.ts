// Everything `provision` needs to know, from flags, the environment, a probe of each camera and (at a terminal)
// questions. Nothing here writes a file.
import { resolve } from 'node:path';
import { errorMessage } from '../../../core/errors.js';
import type { CliIo } from '../../../core/cli-io.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR } from '../locations.js';
import {
  byCamera,
  cameraEnvKey,
  checkBrokerUrl,
  checkOutputLocation,
  isTlsUrl,
  need,
  parseFrame,
  ProvisionInputError,
  readableFile,
  slugProblem,
  splitUrl,
  type CameraInput,
} from './inputs.js';
import { probeCamera } from './probe.js';
import type { Prompter } from './prompter.js';

export { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR } from '../locations.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Answers {
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

export const str = (v: Values[string]): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: Values[string]): string[] => (Array.isArray(v) ? v : []);

/** Where provision writes: the config file (secrets.env and tls/ beside it) and the data dir, checked first. */
export function outputLocations(values: Values): { out: string; dataDir: string } {
  const out = resolve(str(values.out) ?? DEFAULT_CONFIG_FILE);
  const dataDir = resolve(str(values['data-dir']) ?? DEFAULT_DATA_DIR);
  checkOutputLocation('--out', out);
  checkOutputLocation('--data-dir', dataDir);
  return { out, dataDir };
}

async function gatherCameras(values: Values, prompter: Prompter | undefined): Promise<CameraInput[]> {
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
  if (cameras.length > 0) return cameras;
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
    if (!/^y/i.test(more)) return cameras;
  }
}

/** Credentials and frame size per camera: flags, then the environment, then the camera itself and questions. */
async function completeCameras(cameras: CameraInput[], values: Values, io: CliIo, prompter: Prompter | undefined, ffmpeg: string): Promise<void> {
  const users = byCamera('--camera-user', list(values['camera-user']), cameras);
  const passwords = byCamera('--camera-password', list(values['camera-password']), cameras, true);
  const frames = byCamera('--frame', list(values.frame), cameras);
  for (const [index, cam] of cameras.entries()) {
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
    const probe = values['no-probe'] ? undefined : await probeCamera(cam, index, ffmpeg);
    const probed = probe && 'frame' in probe ? probe.frame : undefined;
    const failed = probe && 'problem' in probe ? probe : undefined;
    if (probed) io.stdout(`camera ${cam.id}: ${probed.width}x${probed.height} (probed)\n`);
    if (failed && prompter) prompter.note(`  camera ${cam.id} gave no picture: ${failed.problem}\n  ${failed.fix}`);
    if (prompter) {
      const def = probed ? `${probed.width}x${probed.height}` : undefined;
      const answer = await need(prompter, undefined, '--frame', `Camera ${cam.id} frame size WxH`, (v) => (parseFrame(v) ? undefined : 'expected WIDTHxHEIGHT, e.g. 1920x1080'), def);
      cam.frame = parseFrame(answer);
    } else if (probed) {
      cam.frame = probed;
    } else {
      throw new ProvisionInputError(
        failed
          ? `frame size of camera ${cam.id} unknown: it gave no picture: ${failed.problem}. Fix: ${failed.fix}`
          : `frame size of camera ${cam.id} unknown (--no-probe): give --frame ${cam.id}=WIDTHxHEIGHT`,
      );
    }
  }
}

async function gatherTls(values: Values, mqttUrl: string, prompter: Prompter | undefined): Promise<Answers['tls']> {
  let ca = readableFile('--ca', str(values.ca));
  let cert = readableFile('--cert', str(values.cert));
  let key = readableFile('--key', str(values.key));
  if (!isTlsUrl(mqttUrl)) {
    if (ca || cert || key) throw new ProvisionInputError(`certificates given, but ${mqttUrl} is not a TLS URL (mqtts:// or wss://)`);
    return undefined;
  }
  if (prompter && !values.ca) ca = readableFile('CA file', await prompter.ask('CA certificate of the broker, PEM file (empty: the system CAs)'));
  if (prompter && !values.cert && !values.key && !values['no-client-cert']) {
    cert = readableFile('client certificate', await prompter.ask('Client certificate, PEM file (empty: generate a key and a CSR)'));
    if (cert) key = readableFile('client key', await prompter.ask('Client private key, PEM file'));
  }
  if (Boolean(cert) !== Boolean(key)) throw new ProvisionInputError('--cert and --key go together');
  return { ca, cert, key, generate: !cert && !values['no-client-cert'], org: str(values.org) ?? 'roadside', newKey: values['new-key'] === true };
}

export async function gather(values: Values, io: CliIo, prompter: Prompter | undefined, ffmpeg: string): Promise<Answers> {
  const { out, dataDir } = outputLocations(values);
  const deviceId = await need(prompter, str(values['device-id']), '--device-id', 'Device id (e.g. box-n1-km12)', slugProblem);
  const site = await need(prompter, str(values.site), '--site', 'Site id (e.g. n1-km12)', slugProblem);
  const cameras = await gatherCameras(values, prompter);
  await completeCameras(cameras, values, io, prompter, ffmpeg);

  const mqttUrl = await need(prompter, str(values['mqtt-url']), '--mqtt-url', 'MQTT broker URL (e.g. mqtts://broker.example:8883)', checkBrokerUrl);
  const mqttUser = str(values['mqtt-user']) ?? (prompter ? await prompter.ask('MQTT user name', deviceId) : deviceId);
  let mqttPassword = str(values['mqtt-password']) ?? io.env.ROADSIDE_MQTT_PASSWORD;
  if (mqttPassword === undefined && prompter) mqttPassword = (await prompter.askSecret('MQTT password (not shown; empty: none)')) || undefined;
  const tls = await gatherTls(values, mqttUrl, prompter);
  return {
    out,
    dataDir,
    deviceId,
    site,
    cameras,
    mqtt: { url: mqttUrl, username: mqttUser, password: mqttPassword, allowInsecure: values['allow-insecure'] === true },
    tls,
    owner: str(values.owner),
    force: values.force === true,
  };
}
