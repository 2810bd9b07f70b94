// Reading a config file without trusting it: a regular file (not a pipe that blocks forever, not /dev/zero),
// at most MAX_CONFIG_BYTES, within a time limit, and valid UTF-8 (a bad byte is reported with its line,
// not silently replaced).
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { withTimeout } from '../core/time.js';
import { fileKind, pseudoFilesystem } from './fs-checks.js';
import { ConfigError, MAX_PROBLEMS_SHOWN, type ConfigProblem } from './problems.js';

export const MAX_CONFIG_BYTES = 1024 * 1024;
export const CONFIG_READ_TIMEOUT_MS = 5_000;

// O_NONBLOCK: opening a named pipe must not wait for a writer; the fstat below refuses it anyway.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

const fail = (file: string, message: string, line?: number): ConfigError => new ConfigError([{ file, path: '', message, ...(line === undefined ? {} : { line }) }]);

function openError(file: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
  return fail(file, `cannot read the config file (${code})`);
}

/** Refuses what is not a plain file of a sane size on a real filesystem, before a byte is read. */
function checkStat(file: string, st: Stats): void {
  if (!st.isFile()) throw fail(file, `the config must be a regular file, not ${fileKind(st)}`);
  const pseudo = pseudoFilesystem(file);
  if (pseudo) throw fail(file, `the config must be on a real filesystem, not ${pseudo}`);
  if (st.size > MAX_CONFIG_BYTES) throw fail(file, `the config file is ${st.size} bytes: at most ${MAX_CONFIG_BYTES} (1 MB) are read`);
}

function tooLong(file: string): ConfigError {
  return fail(file, `the config file grew beyond ${MAX_CONFIG_BYTES} bytes (1 MB) while being read`);
}

/** Reads `file` synchronously (library callers); bounded in size, not in time. */
export function readConfigBytesSync(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (err) {
    throw openError(file, err);
  }
  try {
    checkStat(file, fstatSync(fd));
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_CONFIG_BYTES) throw tooLong(file);
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw openError(file, err);
  } finally {
    closeSync(fd);
  }
}

/** Reads `file` with the same bounds plus a time limit (a hung network mount ends in a problem, not a hang). */
export async function readConfigBytes(file: string, timeoutMs = CONFIG_READ_TIMEOUT_MS): Promise<Buffer> {
  const work = (async () => {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file, OPEN_FLAGS);
    } catch (err) {
      throw openError(file, err);
    }
    try {
      checkStat(file, await fh.stat());
      const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      let n = 0;
      for (let got = -1; got !== 0 && n < buf.length; n += got) got = (await fh.read(buf, n, buf.length - n, null)).bytesRead;
      if (n > MAX_CONFIG_BYTES) throw tooLong(file);
      return buf.subarray(0, n);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw openError(file, err);
    } finally {
      await fh.close().catch(() => undefined);
    }
  })();
  try {
    return await withTimeout(work, timeoutMs, `reading ${file}`);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    work.catch(() => undefined);
    throw fail(file, `reading the config file did not finish within ${timeoutMs} ms`);
  }
}

/** Offset of the first byte that is not part of valid UTF-8 at or after `from`, or -1. */
export function invalidUtf8At(buf: Uint8Array, from = 0): number {
  for (let i = from; i < buf.length; ) {
    const b = buf[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = b & (0xff >> (need + 2));
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** The bytes as text; each line holding a byte that is not UTF-8 is a problem (the first MAX_PROBLEMS_SHOWN). */
export function decodeConfigText(bytes: Uint8Array, file: string): string {
  const problems: ConfigProblem[] = [];
  let total = 0;
  let line = 1;
  let counted = 0;
  for (let at = invalidUtf8At(bytes); at >= 0; ) {
    for (; counted < at; counted++) if (bytes[counted] === 0x0a) line++;
    const lineStart = bytes.lastIndexOf(0x0a, at) + 1;
    total++;
    if (problems.length < MAX_PROBLEMS_SHOWN) {
      problems.push({ file, line, path: '', message: `not valid UTF-8: byte 0x${bytes[at]!.toString(16).padStart(2, '0')} at column ${at - lineStart + 1} (save the file as UTF-8)` });
    }
    const next = bytes.indexOf(0x0a, at);
    at = next < 0 ? -1 : invalidUtf8At(bytes, next);
  }
  if (total > 0) throw new ConfigError(problems, total);
  return new TextDecoder('utf-8').decode(bytes);
}
