// Changing the config of a running box: check a candidate exactly as `config check` does, write it atomically
// (the previous kept as <config>.prev), apply in place what can be (cameras, analytics, log level) and restart
// for the rest, then keep the change on probation and roll it back by itself when the box stops working.
// Used by the config-get / config-apply commands, and usable without MQTT (the status page's line editor).
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, formatProblems, loadConfig, parseConfig, type ConfigProblem, type LoadedConfig } from '../../config/loader.js';
import { MAX_CONFIG_BYTES } from '../../config/read.js';
import type { CameraConfig, AnalyticsConfig } from '../../config/schema/index.js';
import { parseConfigYaml } from '../../config/yaml.js';
import { REDACTED_SECRET, type CommandArgs, type CommandResult } from '../../contract/commands.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import type { Logger, LogLevel } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { planChanges, type CameraDiff, type ChangePlan } from './plan.js';
import { Probation, type ProbationExcuses, type ProbationProbe, type ProbationVerdict } from './probation.js';
import { configHash, prevFileOf } from './recovery.js';
import { readConfigState, writeConfigState, type ConfigStateFile } from './state.js';
import { mergePatch, parseTrusted, pushedSecrets, redactConfigText, restoreRedacted } from './yaml-text.js';

export type ConfigApplyRequest = CommandArgs<'config-apply'>;
export type ConfigApplyResult = CommandResult<'config-apply'>;
export type ConfigGetResult = CommandResult<'config-get'>;

export interface ConfigApplierDeps {
  /** The config the agent started with. */
  loaded: LoadedConfig;
  cameras: { reconfigure(cameras: readonly CameraConfig[], analytics: AnalyticsConfig, diff: CameraDiff): Promise<unknown> };
  probe: ProbationProbe;
  log: Logger;
  setLogLevel: (level: LogLevel) => void;
  /** Publishes the birth again (best effort: while offline the next connect publishes it). */
  rebirth: () => void;
  /** Ends the process so the service manager starts it again with the file on disk. */
  requestRestart: (reason: string) => void;
  /** After a change applied in place (the status page's overlays follow it). */
  onApplied?: (loaded: LoadedConfig) => void;
  env?: NodeJS.ProcessEnv;
  /** Time for the answer to go out before a restart, ms. Default 500. */
  restartDelayMs?: number;
}

/** Counters of the config changes (metrics: CONFIG_METRICS). */
export interface ConfigApplierStats {
  dry_runs: number;
  applied_in_place: number;
  applied_restart: number;
  refused_invalid: number;
  refused_conflict: number;
  refused_secret: number;
  confirmed: number;
  rollbacks: number;
  rollback_failures: number;
  in_probation: boolean;
}

/** Prometheus names for the counters above (for agent/status/metrics.ts). */
export const CONFIG_METRICS = {
  roadside_config_applies_total: 'Config changes accepted, by mode (label mode: in_place | restart)',
  roadside_config_refused_total: 'Config changes refused, by reason (label reason: invalid | conflict | secret)',
  roadside_config_dry_runs_total: 'Config dry runs answered',
  roadside_config_confirmed_total: 'Config changes confirmed at the end of their probation',
  roadside_config_rollbacks_total: 'Config changes rolled back (probation failed or the apply failed)',
  roadside_config_rollback_failures_total: 'Rollbacks that could not be made (previous config missing or no longer valid)',
  roadside_config_probation: '1 while a config change is on probation',
} as const;

const RESTART_DELAY_MS = 500;

type Checked = { ok: true; loaded: LoadedConfig } | { ok: false; problems: ConfigProblem[]; total: number };

export class ConfigApplier implements Module {
  readonly name = 'config';
  private current: LoadedConfig;
  /** The text of the running config (read at start, then what was written): the base of patches and of .prev. */
  private runningText: string | undefined;
  private writtenAt: Date | undefined;
  /** Read on first use: the uplink (started before this module) may publish a birth first. */
  private loadedState: ConfigStateFile | undefined;
  private probation: Probation | undefined;
  private probationUntil: number | null = null;
  private stopped = false;
  /** A change only a restart applies was written: nothing more until the restart (its probation follows it). */
  private restarting = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly counters = { dry_runs: 0, applied_in_place: 0, applied_restart: 0, refused_invalid: 0, refused_conflict: 0, refused_secret: 0, confirmed: 0, rollbacks: 0, rollback_failures: 0 };

  constructor(private readonly d: ConfigApplierDeps) {
    this.current = d.loaded;
  }

  private get file(): string {
    return this.d.loaded.file;
  }

  private get dataDir(): string {
    return this.d.loaded.config.device.data_dir;
  }

  /** The config in force. */
  config(): LoadedConfig {
    return this.current;
  }

  /** Reads the running text; continues a probation left pending for this config (see recovery.ts). */
  start(): Promise<void> {
    try {
      const bytes = readFileSync(this.file);
      if (configHash(bytes) === this.current.hash) this.runningText = bytes.toString('utf8');
      else this.d.log.warn({ file: this.file, running: this.current.hash, on_disk: configHash(bytes) }, 'the config file changed since it was loaded: config-get and patches need a restart or reload-config');
    } catch (err) {
      this.d.log.warn({ err: errorMessage(err), file: this.file }, 'cannot read the config file again');
    }
    const state = this.state;
    if (state.last_rollback) this.d.log.info({ last_rollback: state.last_rollback }, 'last config rollback');
    const p = state.pending;
    if (p && p.to_hash === this.current.hash) {
      const left = Math.max(1000, this.pendingUntil(p) - Date.now());
      this.d.log.info({ hash: p.to_hash, probation_ms: left }, 'config on probation');
      this.beginProbation(left, p.to_hash);
    } else if (p) this.saveState({ ...state, pending: null });
    return Promise.resolve();
  }

  private get state(): ConfigStateFile {
    if (!this.loadedState) {
      const { state, problem } = readConfigState(this.dataDir);
      if (problem) this.d.log.warn({ problem }, 'config state ignored');
      this.loadedState = state;
    }
    return this.loadedState;
  }

  private pendingUntil(p: NonNullable<ConfigStateFile['pending']>): number {
    return Date.parse(p.started_at) + p.probation_s * 1000;
  }

  /** A change still on probation stays pending: the next start rolls it back (unless this stop is its own restart). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.serial(() => Promise.resolve());
    this.probation?.cancel();
  }

  stats(): ConfigApplierStats {
    return { ...this.counters, in_probation: this.probationUntil !== null };
  }

  /** The config part of the birth. */
  birthState(): { hash: string; applied_at: string; probation_until: string | null; last_rollback: ConfigStateFile['last_rollback'] } {
    const { applied, pending, last_rollback } = this.state;
    // Before start() the probation of a pending change has not begun, but it is due: the birth must not look confirmed.
    const until = this.probationUntil ?? (pending?.to_hash === this.current.hash ? this.pendingUntil(pending) : null);
    return {
      hash: this.current.hash,
      applied_at: applied?.hash === this.current.hash ? applied.applied_at : this.fileWrittenAt().toISOString(),
      probation_until: until === null ? null : new Date(until).toISOString(),
      last_rollback,
    };
  }

  /** When the file in force was written (a config never pushed): its mtime. */
  private fileWrittenAt(): Date {
    if (!this.writtenAt) {
      try {
        this.writtenAt = statSync(this.file).mtime;
      } catch {
        this.writtenAt = new Date();
      }
    }
    return this.writtenAt;
  }

  /** config-get: the running config, secrets redacted. */
  get(): ConfigGetResult {
    let previous: string | null = null;
    try {
      previous = configHash(readFileSync(prevFileOf(this.file)));
    } catch {
      // no previous config kept
    }
    return { ...this.birthState(), yaml: redactConfigText(this.needRunningText()), previous_hash: previous };
  }

  /** config-apply: one at a time; a second caller with the same base gets CONFIG_CONFLICT once the first is applied. */
  apply(req: ConfigApplyRequest): Promise<ConfigApplyResult> {
    return this.serial(() => this.applyLocked(req));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyLocked(req: ConfigApplyRequest): Promise<ConfigApplyResult> {
    if (this.stopped || this.restarting) throw new AgentError('AGENT_STOPPING', 'the agent is stopping or restarting: no config change now');
    const base = this.current;
    if (req.base_hash !== base.hash) {
      this.counters.refused_conflict++;
      this.d.log.info({ base_hash: req.base_hash, current: base.hash }, 'config change refused: stale base');
      throw new AgentError('CONFIG_CONFLICT', `base_hash ${req.base_hash} is not the running config (current hash ${base.hash}): get the config again and redo the change`);
    }
    const running = this.needRunningText();
    const text = this.candidateText(req, running);
    const checked = this.check(text);
    const answer = { base_hash: base.hash, problems: [], changes: [], restart: null, probation_until: null };
    if (req.dry_run) this.counters.dry_runs++;
    if (!checked.ok) {
      const problems = checked.problems.map(({ file: _file, ...p }) => p);
      if (req.dry_run) return { ...answer, outcome: 'invalid', problems, ...(checked.total > problems.length ? { problems_total: checked.total } : {}) };
      this.counters.refused_invalid++;
      this.d.log.info({ problems: checked.total }, 'config change refused: invalid');
      throw new AgentError('CONFIG_INVALID', `${checked.total} problem(s), running config kept:\n${formatProblems(checked.problems, checked.total)}`);
    }
    const next = { ...checked.loaded, file: this.file };
    if (next.hash === base.hash) return { ...answer, outcome: 'unchanged', hash: next.hash };
    const plan = planChanges(base.config, next.config);
    const restart = plan.restart.length > 0 ? plan.restart.join(', ') : null;
    if (req.dry_run) return { ...answer, outcome: 'valid', hash: next.hash, changes: plan.changes, restart };
    return this.commit(base, next, text, running, plan);
  }

  /** The candidate's text: the pushed YAML or the patched running text, secrets refused, placeholders put back. */
  private candidateText(req: ConfigApplyRequest, running: string): string {
    const refuse = (found: string[]): never => {
      this.counters.refused_secret++;
      this.d.log.warn({ paths: found.map((f) => f.split(':')[0]) }, 'config change refused: it carries secrets');
      throw new AgentError(
        'SECRET_IN_CONFIG',
        `${found.join('; ')}. Secrets stay on the box (env/secrets.env, ROADSIDE_* variables); send "${REDACTED_SECRET}" to keep the box's value`,
      );
    };
    if (req.yaml !== undefined) {
      let parsed: ReturnType<typeof parseConfigYaml>;
      try {
        parsed = parseConfigYaml(req.yaml, this.file);
      } catch (err) {
        if (err instanceof ConfigError) return req.yaml; // the check reports it, at its line
        throw err;
      }
      const found = pushedSecrets(parsed.raw);
      if (found.length > 0) refuse(found);
      return restoreRedacted(parsed.doc, running) ? parsed.doc.toString() : req.yaml;
    }
    const patch = req.patch ?? {};
    const found = pushedSecrets(patch);
    if (found.length > 0) refuse(found);
    const doc = parseTrusted(running);
    mergePatch(doc, patch);
    restoreRedacted(doc, running);
    return doc.toString();
  }

  /**
   * `config check` on the candidate, read as if it were the config file (relative paths resolve against its
   * directory, the environment's secrets apply); nothing is written, so a dry run works on a read-only /etc.
   */
  private check(text: string): Checked {
    const bytes = Buffer.from(text, 'utf8');
    try {
      if (bytes.length > MAX_CONFIG_BYTES) throw new ConfigError([{ file: this.file, path: '', message: `the config is ${bytes.length} bytes: at most ${MAX_CONFIG_BYTES} (1 MB)` }]);
      return { ok: true, loaded: parseConfig(bytes, this.file, this.d.env ?? process.env) };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return { ok: false, problems: err.problems, total: err.total };
    }
  }

  private async commit(base: LoadedConfig, next: LoadedConfig, text: string, running: string, plan: ChangePlan): Promise<ConfigApplyResult> {
    const superseding = this.state.pending !== null && this.probation !== undefined;
    const from_hash = superseding && this.state.pending ? this.state.pending.from_hash : base.hash;
    const now = new Date().toISOString();
    const restart = plan.restart.length > 0;
    const probation_s = base.config.device.config_probation_s;
    const before = this.state;
    try {
      const mode = statSync(this.file).mode & 0o777;
      // During a probation .prev already holds the last good config: it stays the rollback target.
      if (!superseding) writeFileAtomic(prevFileOf(this.file), running, mode);
      // The state before the file: a power cut between the two leaves a pending change whose file was not written (cleared at start).
      const pending: ConfigStateFile = { ...before, pending: { from_hash, to_hash: next.hash, started_at: now, probation_s, phase: restart ? 'restarting' : 'probing' }, applied: { hash: next.hash, applied_at: now } };
      writeConfigState(this.dataDir, pending);
      this.loadedState = pending;
      writeFileAtomic(this.file, text, mode);
    } catch (err) {
      this.saveState(before);
      const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
      throw new AgentError('CONFIG_NOT_WRITABLE', `cannot write ${this.file} or its state (${code}); running config kept. The service must be allowed to write the config directory (systemd ReadWritePaths)`);
    }
    this.probation?.cancel();
    this.probation = undefined;
    this.probationUntil = null;
    const excuses = restart ? undefined : this.excuses(plan);
    this.current = next;
    this.runningText = text;
    this.d.log.info({ from: base.hash, to: next.hash, changes: plan.changes, restart: plan.restart }, restart ? 'config written: restarting to apply it' : 'config applied');
    const answer = { outcome: 'applied' as const, hash: next.hash, base_hash: base.hash, problems: [], changes: plan.changes };
    if (restart) {
      this.restarting = true;
      this.counters.applied_restart++;
      setTimeout(() => this.d.requestRestart('config_apply'), this.d.restartDelayMs ?? RESTART_DELAY_MS).unref();
      return { ...answer, restart: plan.restart.join(', '), probation_until: null };
    }
    try {
      await this.applyInPlace(next, plan);
    } catch (err) {
      await this.rollback(`applying it failed: ${errorMessage(err)}`);
      throw new AgentError('CONFIG_APPLY_FAILED', `the config could not be applied (${errorMessage(err)}); rolled back to ${this.current.hash}`, { cause: err });
    }
    this.counters.applied_in_place++;
    this.beginProbation(probation_s * 1000, next.hash, excuses);
    this.d.rebirth();
    return { ...answer, restart: null, probation_until: new Date(this.probationUntil ?? Date.now()).toISOString() };
  }

  /** What is down before a change in place and untouched by it. */
  private excuses(plan: ChangePlan): ProbationExcuses {
    const s = this.d.probe.sample();
    const touched = new Set([...plan.cameras.source, ...plan.cameras.added]);
    return { cameras: new Set(s.cameras.filter((c) => c.state !== 'online' && !touched.has(c.id)).map((c) => c.id)), uplink: !s.uplink.online };
  }

  private async applyInPlace(next: LoadedConfig, plan: ChangePlan): Promise<void> {
    if (plan.logLevel) this.d.setLogLevel(plan.logLevel);
    await this.d.cameras.reconfigure(next.config.cameras, next.config.analytics, plan.cameras);
    this.d.onApplied?.(next);
  }

  private beginProbation(ms: number, hash: string, excuses?: ProbationExcuses): void {
    this.probationUntil = Date.now() + ms;
    const done = (v: ProbationVerdict): void => void this.serial(() => this.settle(v, hash)).catch((err: unknown) => this.d.log.error({ err }, 'config probation failed to settle'));
    this.probation = new Probation(this.d.probe, ms, done, excuses);
    this.probation.start();
  }

  private async settle(v: ProbationVerdict, hash: string): Promise<void> {
    if (this.stopped || this.current.hash !== hash) return; // superseded, or the agent is stopping (the next start decides)
    this.probation = undefined;
    this.probationUntil = null;
    if (!v.ok) {
      await this.rollback(`probation failed: ${v.reason}`);
      return;
    }
    this.saveState({ ...this.state, pending: null });
    this.counters.confirmed++;
    this.d.log.info({ hash }, 'config confirmed: probation passed');
    this.d.rebirth();
  }

  /** Restores <config>.prev, applies it (in place, else by a restart) and keeps why for the birth. */
  private async rollback(reason: string): Promise<void> {
    const from = this.current;
    this.probation?.cancel();
    this.probation = undefined;
    this.probationUntil = null;
    const prevFile = prevFileOf(this.file);
    let prev: LoadedConfig;
    let bytes: Buffer;
    try {
      bytes = readFileSync(prevFile);
      prev = { ...loadConfig(prevFile, this.d.env ?? process.env), file: this.file };
    } catch (err) {
      this.counters.rollback_failures++;
      this.saveState({ ...this.state, pending: null });
      this.d.log.error({ err: errorMessage(err), reason, hash: from.hash }, 'config rollback impossible: the previous config is missing or no longer valid; keeping the new one');
      return;
    }
    writeFileAtomic(this.file, bytes, statSync(this.file).mode & 0o777);
    const at = new Date().toISOString();
    this.saveState({ version: 1, pending: null, applied: { hash: prev.hash, applied_at: at }, last_rollback: { at, reason, from_hash: from.hash } });
    this.current = prev;
    this.runningText = bytes.toString('utf8');
    this.counters.rollbacks++;
    const plan = planChanges(from.config, prev.config);
    this.d.log.warn({ from: from.hash, to: prev.hash, reason, changes: plan.changes, restart: plan.restart }, 'config rolled back');
    if (plan.restart.length > 0) {
      this.restarting = true;
      setTimeout(() => this.d.requestRestart('config_rollback'), this.d.restartDelayMs ?? RESTART_DELAY_MS).unref();
      return;
    }
    try {
      await this.applyInPlace(prev, plan);
    } catch (err) {
      // The restored file is on disk: a restart applies it for sure.
      this.d.log.error({ err: errorMessage(err) }, 'the rolled-back config could not be applied in place: restarting');
      this.d.requestRestart('config_rollback');
      return;
    }
    this.d.rebirth();
  }

  private needRunningText(): string {
    if (this.runningText === undefined) {
      throw new AgentError('CONFIG_FILE_CHANGED', `${this.file} is not the running config (${this.current.hash}) any more: reload-config applies the file, or restart the agent`);
    }
    return this.runningText;
  }

  private saveState(state: ConfigStateFile): void {
    this.loadedState = state;
    try {
      writeConfigState(this.dataDir, state);
    } catch (err) {
      this.d.log.error({ err: errorMessage(err) }, 'cannot write the config state: a crash during probation would not be rolled back');
    }
  }
}
