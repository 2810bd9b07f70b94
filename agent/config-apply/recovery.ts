// At start, before the config is loaded: a pushed config whose probation never finished (the agent crashed,
// lost power or was stopped during it) is not trusted. Its predecessor (<config>.prev) is restored and the
// rollback is kept for the birth. A restart the agent asked for itself (a change only a restart applies)
// continues the probation instead.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { loadConfig } from '../../config/loader.js';
import type { CliIo } from '../../core/cli-io.js';
import { errorMessage } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import { readConfigState, writeConfigState, type ConfigStateFile } from './state.js';

export interface RecoveryReport {
  /** none: nothing pending; continue: the probation goes on in this run; cleared: nothing to roll back; rolled_back: <config>.prev restored. */
  action: 'none' | 'continue' | 'cleared' | 'rolled_back';
  message?: string;
}

export const prevFileOf = (file: string): string => `${file}.prev`;

/** sha256 of the bytes, first 16 hex digits: the config hash of config/loader.ts. */
export const configHash = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

function dataDirOf(file: string, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return existsSync(file) ? loadConfig(file, env).config.device.data_dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Settles a pending probation found in the data dir of the config (or of its predecessor, when the change
 * moved data_dir). Prints one line to stderr when it acted. Never throws: a problem here must not keep the
 * agent from starting with what is on disk.
 */
export function recoverPendingConfig(file: string, io: Pick<CliIo, 'stderr' | 'env'>, now: () => Date = () => new Date()): RecoveryReport {
  try {
    const report = recover(file, io.env, now);
    if (report.message) io.stderr(`roadside-agent: ${report.message}\n`);
    return report;
  } catch (err) {
    const message = `config probation recovery failed: ${errorMessage(err)}; starting with ${file} as it is`;
    io.stderr(`roadside-agent: ${message}\n`);
    return { action: 'none', message };
  }
}

function recover(file: string, env: NodeJS.ProcessEnv, now: () => Date): RecoveryReport {
  const prevFile = prevFileOf(file);
  const dirs = [...new Set([dataDirOf(file, env), dataDirOf(prevFile, env)].filter((d): d is string => d !== undefined))];
  for (const dir of dirs) {
    const { state } = readConfigState(dir);
    const p = state.pending;
    if (!p) continue;
    const current = existsSync(file) ? configHash(readFileSync(file)) : undefined;
    if (current !== p.to_hash) {
      writeConfigState(dir, { ...state, pending: null });
      return { action: 'cleared', message: `config ${p.to_hash} was on probation but ${file} holds ${current ?? 'nothing'}: nothing to roll back` };
    }
    if (p.phase === 'restarting') {
      writeConfigState(dir, { ...state, pending: { ...p, phase: 'probing', started_at: now().toISOString() } });
      return { action: 'continue', message: `config ${p.to_hash} applied by this restart; its probation (${p.probation_s} s) continues` };
    }
    if (!existsSync(prevFile)) {
      writeConfigState(dir, { ...state, pending: null });
      return { action: 'cleared', message: `config ${p.to_hash} did not finish its probation but ${prevFile} is missing: keeping it` };
    }
    const prev = readFileSync(prevFile);
    writeFileAtomic(file, prev, statSync(file).mode & 0o777);
    const at = now().toISOString();
    const reason = `the agent stopped during the probation of ${p.to_hash} (crash, power loss or stop) before it was confirmed`;
    const next: ConfigStateFile = { version: 1, pending: null, applied: { hash: configHash(prev), applied_at: at }, last_rollback: { at, reason, from_hash: p.to_hash } };
    writeConfigState(dir, next);
    // The restored config may keep its state elsewhere (the change had moved data_dir): the birth reads it there.
    const restoredDir = dataDirOf(file, env);
    if (restoredDir && restoredDir !== dir) writeConfigState(restoredDir, next);
    return { action: 'rolled_back', message: `${reason}: restored ${prevFile} (${configHash(prev)})` };
  }
  return { action: 'none' };
}
