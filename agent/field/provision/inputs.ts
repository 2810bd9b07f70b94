// Turning flags and answers into checked values for `provision`: ids, camera URLs, frame sizes, files, output
// locations. A bad value is a ProvisionInputError (exit 64) naming the flag; nothing is written before.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pseudoFilesystem } from '../../../config/fs-checks.js';
import { Slug } from '../../../config/schema/common.js';
import type { Prompter } from './prompter.js';

/** Input that cannot be used: a usage error (64), reported as `roadside-agent provision: <message>`. */
export class ProvisionInputError extends Error {}

export interface CameraInput {
  id: string;
  url: string;
  username?: string;
  password?: string;
  frame?: { width: number; height: number };
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

export function slugProblem(value: string): string | undefined {
  const r = Slug.safeParse(value);
  return r.success ? undefined : (r.error.issues[0]?.message ?? 'invalid');
}

/** Asks until `check` accepts the answer (interactive), or fails with a usage error naming the flag. */
export async function need(
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

/**
 * `ID=VALUE` pairs keyed by camera id; a bare VALUE applies when there is exactly one camera. An `ID=` that
 * names no camera of this box is refused: the value (a password) must not land on another camera. For a
 * secret flag the message shows no part of the value.
 */
export function byCamera(flag: string, items: string[], cameras: CameraInput[], secret = false): Map<string, string> {
  const m = new Map<string, string>();
  const ids = cameras.map((c) => c.id).join(', ');
  const set = (id: string, value: string) => {
    if (m.has(id)) throw new ProvisionInputError(`${flag} given twice for camera ${id}`);
    m.set(id, value);
  };
  for (const item of items) {
    const eq = item.indexOf('=');
    const id = eq > 0 ? item.slice(0, eq) : undefined;
    if (id !== undefined && cameras.some((c) => c.id === id)) set(id, item.slice(eq + 1));
    else if (id !== undefined && !slugProblem(id)) {
      const named = secret ? 'the ID= prefix names no camera of this box' : `no camera "${id}" on this box`;
      throw new ProvisionInputError(`${flag}: ${named} (cameras: ${ids}); write CAMERA_ID=VALUE (a value with "=" too)`);
    } else if (cameras.length === 1 && cameras[0]) set(cameras[0].id, item);
    else throw new ProvisionInputError(`${flag} "${secret ? '...' : item.replace(/=.*/, '=...')}": expected CAMERA_ID=VALUE with a camera given by --camera`);
  }
  return m;
}

export function parseFrame(text: string): { width: number; height: number } | undefined {
  const m = /^\s*(\d{2,5})\s*[x×X]\s*(\d{2,5})\s*$/.exec(text);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}

/** Splits credentials out of an RTSP URL (they would leak into logs and process lists from the config). */
export function splitUrl(raw: string): { url: string; username?: string; password?: string } {
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

export function checkBrokerUrl(v: string): string | undefined {
  try {
    const u = new URL(v);
    if (!/^(mqtts?|wss?):$/.test(u.protocol)) return 'expected mqtt://, mqtts://, ws:// or wss://';
    if (u.username || u.password) return 'put the user name and password in --mqtt-user / --mqtt-password, not in the URL';
    return undefined;
  } catch {
    return 'not a valid URL';
  }
}

export const isTlsUrl = (url: string) => /^(mqtts|wss):/i.test(url);

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function readableFile(flag: string, f: string | undefined): string | undefined {
  if (f === undefined || f === '') return undefined;
  const p = resolve(f);
  if (!isFile(p)) throw new ProvisionInputError(`${flag} ${f}: file not found`);
  return p;
}

/**
 * Refuses an output location on /proc, /sys, /dev or another kernel pseudo-filesystem: writes there fail in
 * odd ways or never return, and nothing of the agent belongs there.
 */
export function checkOutputLocation(flag: string, path: string): void {
  const pseudo = pseudoFilesystem(path);
  if (pseudo) throw new ProvisionInputError(`${flag} ${path}: on ${pseudo}, a kernel pseudo-filesystem; provision writes only to a real disk`);
}
