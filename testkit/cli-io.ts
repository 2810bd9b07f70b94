// A CliIo (core/cli-io.ts) that keeps what a command printed, for tests and benchmarks that run commands in-process.
import type { CliIo } from '../core/cli-io.js';

export type CapturedIo = CliIo & { out: () => string; err: () => string };

/** Not interactive, empty environment unless given. */
export function captureIo(env: NodeJS.ProcessEnv = {}): CapturedIo {
  let out = '';
  let err = '';
  return { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, interactive: false, out: () => out, err: () => err };
}
