// The config's own state file in the data dir: the change on probation (so a crash or power loss during it is
// rolled back at the next start), when the config in force was applied, and the last rollback. Written
// atomically; an unreadable file counts as empty (the worst case is a probation not finished: nothing rolls
// back, which is what happened before this file existed).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigRollback } from '../../contract/commands.js';
import { writeFileAtomic } from '../../core/fs.js';

export const CONFIG_STATE_FILE = 'config-state.json';

const Hash = z.string().regex(/^[0-9a-f]{16}$/);

const Pending = z.strictObject({
  /** The last good config: what a rollback restores (kept as <config>.prev). */
  from_hash: Hash,
  /** The config on probation (the file). */
  to_hash: Hash,
  started_at: z.iso.datetime({ offset: true }),
  probation_s: z.number().positive(),
  /** restarting: the agent restarts on purpose to apply it (the next start continues the probation); probing: checks running. */
  phase: z.enum(['restarting', 'probing']),
});
export type PendingChange = z.infer<typeof Pending>;

export const ConfigStateFile = z.strictObject({
  version: z.literal(1),
  pending: Pending.nullable(),
  applied: z.strictObject({ hash: Hash, applied_at: z.iso.datetime({ offset: true }) }).nullable(),
  last_rollback: ConfigRollback.nullable(),
});
export type ConfigStateFile = z.infer<typeof ConfigStateFile>;

export const EMPTY_STATE: ConfigStateFile = { version: 1, pending: null, applied: null, last_rollback: null };

export function stateFile(dataDir: string): string {
  return join(dataDir, CONFIG_STATE_FILE);
}

/** The state in `dataDir`; empty when absent or unreadable (with the reason, for the log). */
export function readConfigState(dataDir: string): { state: ConfigStateFile; problem?: string } {
  let text: string;
  try {
    text = readFileSync(stateFile(dataDir), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { state: EMPTY_STATE } : { state: EMPTY_STATE, problem: `cannot read ${stateFile(dataDir)} (${code ?? 'error'})` };
  }
  try {
    const parsed = ConfigStateFile.safeParse(JSON.parse(text));
    if (parsed.success) return { state: parsed.data };
    return { state: EMPTY_STATE, problem: `${stateFile(dataDir)} is not a config state file; ignored` };
  } catch {
    return { state: EMPTY_STATE, problem: `${stateFile(dataDir)} is not JSON; ignored` };
  }
}

export function writeConfigState(dataDir: string, state: ConfigStateFile): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(stateFile(dataDir), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
