// `roadside-agent provision`: the work behind the command (cli/provision-cmd.ts holds its flags). The parts
// are in provision/: prompter (questions at a terminal), inputs (checked values), gather (flags + environment +
// camera probe + questions → Answers), probe (a camera's frame size, or why it gives no picture), tls (key,
// CSR, given certificates), document (agent.yaml and secrets.env text), apply (the writes and the final check).
import { existsSync } from 'node:fs';
import { EXIT } from '../../core/errors.js';
import type { CliIo } from '../../core/cli-io.js';
import { apply } from './provision/apply.js';
import { gather, outputLocations, type Values } from './provision/gather.js';
import { ProvisionInputError } from './provision/inputs.js';
import { readlinePrompter, type Prompter } from './provision/prompter.js';

export { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR } from './locations.js';
export { DEFAULT_OWNER } from './provision/owner.js';
export { cameraEnvKey, envLine, ProvisionInputError } from './provision/inputs.js';
export { readlinePrompter, type Prompter } from './provision/prompter.js';
export type { Values as ProvisionValues } from './provision/gather.js';

/** Optional seams for tests: the prompter and the external commands. */
export interface ProvisionDeps {
  prompter?: Prompter;
  openssl?: string;
  /** ffmpeg for the camera probe. */
  ffmpeg?: string;
}

/**
 * Provisions this box from `values` (flags by name, as typed). Input that cannot be used throws a
 * ProvisionInputError (a usage error, 64) before anything is written; otherwise resolves the exit code.
 */
export async function provision(values: Values, io: CliIo, deps: ProvisionDeps = {}): Promise<number> {
  const { out } = outputLocations(values);
  if (existsSync(out) && values.force !== true) {
    throw new ProvisionInputError(`${out} exists: not overwriting it (use --force to replace it, or roadside-agent config check ${out})`);
  }
  const interactive = io.interactive && values['non-interactive'] !== true;
  const prompter = interactive ? (deps.prompter ?? readlinePrompter(process.stdin, process.stdout)) : undefined;
  try {
    const answers = await gather(values, io, prompter, deps.ffmpeg ?? 'ffmpeg');
    prompter?.close();
    return await apply(answers, io, deps.openssl ?? 'openssl');
  } catch (err) {
    prompter?.close();
    if ((err as { name?: string }).name === 'AbortError') {
      io.stderr('\nprovision aborted: nothing was written\n');
      return EXIT.FATAL;
    }
    throw err;
  }
}
