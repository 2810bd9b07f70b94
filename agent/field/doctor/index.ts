// `roadside-agent doctor`: is this box ready? The config first (everything else needs it), then every other check
// at once (cameras in parallel with the model and the broker), each bounded by its own timeout. Right after
// provision the client certificate is still being signed: a WARN, and every check that does not need it runs
// (the broker gets a TCP + TLS reachability probe instead of the login).
import { ConfigError, formatProblem, loadConfig, type LoadedConfig } from '../../../config/loader.js';
import { HealthSchema, type Config } from '../../../config/schema/index.js';
import { EXIT } from '../../../core/errors.js';
import { SystemHealthSources, type HealthSources } from '../../health/index.js';
import { checkBroker } from './checks/broker.js';
import { probeBroker } from './checks/broker-probe.js';
import { checkCamera, measureMs } from './checks/camera.js';
import { checkConfigFile, checkDataDir, checkSecretsFile, checkTlsFiles, resolveAgentUser, type AgentUser } from './checks/files.js';
import { checkModel } from './checks/model.js';
import { checkOutbox } from './checks/outbox.js';
import { checkClock, checkDisk } from './checks/system.js';
import { pendingClientCert, isPendingCertProblem, type PendingCert } from '../pending-cert.js';
import { readSecretsEnv, withSecrets, type SecretsEnv } from '../secrets-env.js';
import { runChecks, type RunHooks } from './runner.js';
import { fail, pass, skip, warn, type CheckOutcome, type CheckResult, type DoctorCheck } from './types.js';

export { runChecks, type RunHooks } from './runner.js';
export type { CheckResult, CheckStatus, DoctorCheck } from './types.js';

export interface DoctorOptions {
  configFile: string;
  /** The caller's environment; the secrets file fills in what it lacks (agent/field/secrets-env.ts). */
  env: NodeJS.ProcessEnv;
  /** --env-file: the secrets file; default secrets.env beside the config. */
  envFile?: string;
  /** Seconds of camera stream measured after the first frame. */
  seconds: number;
  /** User the agent runs as (default: roadside if it exists, else the current user). */
  user?: string;
  /** Clock and disk figures (tests inject them); default: the health sampler's system sources. */
  sources?: Pick<HealthSources, 'clock' | 'disk'>;
  ffmpegPath?: string;
}

export interface DoctorReport {
  results: CheckResult[];
  /** 0 all pass (warnings allowed), 1 a check failed, 78 the config is invalid. */
  exitCode: number;
  duration_ms: number;
}

/** Longest wait for a camera's first frame, ms (the measurement runs `seconds` after it). */
export const CAMERA_CONNECT_MS = 10_000;

interface ConfigCheck {
  outcome: CheckOutcome;
  loaded?: LoadedConfig;
  /** The client certificate still to be signed (the config is valid apart from it). */
  pending?: PendingCert;
}

/** The loaded config when its only problem is a client certificate still being signed. */
function pendingOnly(err: ConfigError, file: string): { loaded: LoadedConfig; pending: PendingCert } | undefined {
  const pending = err.parsed && pendingClientCert(err.parsed.config);
  if (!err.parsed || !pending || err.total !== err.problems.length || !err.problems.every(isPendingCertProblem)) return undefined;
  return { loaded: { config: err.parsed.config, file, hash: err.parsed.hash }, pending };
}

/** The config check: valid (every problem listed when not), with secrets from secrets.env as the service gets them. */
function configOutcome(file: string, secrets: SecretsEnv, env: NodeJS.ProcessEnv): ConfigCheck {
  const secretsNote = secrets.error === null ? `; secrets from ${secrets.file}` : '';
  const valid = (loaded: LoadedConfig, pending?: PendingCert): ConfigCheck => {
    const { config } = loaded;
    const figures = { path: file, hash: loaded.hash, cameras: config.cameras.length, secrets_file: secrets.error === null ? secrets.file : null, ...(pending ? { pending_cert: pending.cert, csr: pending.csr } : {}) };
    const head = `valid: ${config.device.site}/${config.device.id}, ${config.cameras.length} camera(s), hash ${loaded.hash}${secretsNote}`;
    if (pending) {
      return {
        loaded,
        pending,
        outcome: warn(
          `${head}; client certificate ${pending.cert} not there yet: waiting for the center to sign the CSR ${pending.csr}`,
          `send ${pending.csr} to the control center, install the signed certificate as ${pending.cert}, then run doctor again (the broker login is tested then)`,
          figures,
        ),
      };
    }
    if (secrets.error === 'EACCES') {
      return { loaded, outcome: warn(`${head}; cannot read ${secrets.file} (EACCES)`, 'run doctor with sudo: the passwords the service gets are in secrets.env', figures) };
    }
    return { loaded, outcome: pass(head, figures) };
  };
  try {
    return valid(loadConfig(file, env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const waiting = pendingOnly(err, file);
    if (waiting) return valid(waiting.loaded, waiting.pending);
    const problems = err.problems;
    return {
      outcome: {
        ...fail(
          `${problems.length} problem(s) in ${file}`,
          `fix each line below, then: roadside-agent config check ${file}`,
          { path: file, problems: problems.map((p) => ({ line: p.line ?? null, path: p.path, message: p.message })) },
        ),
        lines: problems.map(formatProblem),
      },
    };
  }
}

const NEEDS_CONFIG = 'not run: needs a valid config';

function planChecks(config: Config | undefined, opts: DoctorOptions, user: AgentUser | Error, pending: PendingCert | undefined): DoctorCheck[] {
  const sources = opts.sources ?? new SystemHealthSources();
  const health = config?.health ?? HealthSchema.parse({});
  const checks: DoctorCheck[] = [];
  const userFailed = (u: AgentUser | Error): u is Error => u instanceof Error;
  const withUser = (fn: (u: AgentUser) => CheckOutcome | null) => () =>
    Promise.resolve(userFailed(user) ? fail(`cannot check for the agent user: ${user.message}`, 'pass --user with the user the service runs as (systemd User=)') : (fn(user) ?? skip('no TLS files configured')));

  if (config) {
    const target = { ...config.detector.input_size, resize: config.detector.resize };
    config.cameras.forEach((cam, i) => {
      checks.push({
        name: `camera:${cam.id}`,
        title: `stream of ${cam.id} for ${opts.seconds} s`,
        timeoutMs: CAMERA_CONNECT_MS + measureMs(cam, opts.seconds) + 10_000,
        run: (signal) => checkCamera(cam, i, target, { seconds: opts.seconds, connectMs: CAMERA_CONNECT_MS, ffmpegPath: opts.ffmpegPath }, signal),
      });
    });
    checks.push({ name: 'model', title: 'model load and inference', timeoutMs: 45_000, run: (signal) => checkModel(config, signal) });
    checks.push(
      pending
        ? { name: 'broker', title: 'broker reachable (TCP + TLS)', timeoutMs: 15_000, run: (signal) => probeBroker(config, pending, { connectMs: 8_000 }, signal) }
        : { name: 'broker', title: 'broker connect and round trip', timeoutMs: 20_000, run: (signal) => checkBroker(config, { connectMs: 8_000, roundTripMs: 5_000 }, signal) },
    );
  } else {
    checks.push({ name: 'cameras', title: 'cameras', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
    checks.push({ name: 'model', title: 'model', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
    checks.push({ name: 'broker', title: 'broker', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
  }
  checks.push({ name: 'clock', title: 'clock synchronisation', timeoutMs: 10_000, onTimeout: 'warn', timeoutFix: 'chronyc / timedatectl hang: check chrony or systemd-timesyncd', run: () => checkClock(sources, health) });
  if (config) {
    checks.push({ name: 'disk', title: 'free space', timeoutMs: 5_000, onTimeout: 'warn', run: () => checkDisk(sources, config.device.data_dir, health) });
    checks.push({ name: 'outbox', title: 'outbox integrity', timeoutMs: 30_000, onTimeout: 'warn', timeoutFix: 'quick_check is slow on a large outbox: run doctor again with the agent stopped', run: (signal) => checkOutbox(config.outbox, signal) });
  } else {
    checks.push({ name: 'disk', title: 'disk', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
    checks.push({ name: 'outbox', title: 'outbox', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
  }
  checks.push({ name: 'files:config', title: 'config file permissions', timeoutMs: 5_000, run: withUser((u) => checkConfigFile(opts.configFile, u)) });
  checks.push({ name: 'files:secrets', title: 'secrets.env permissions', timeoutMs: 5_000, run: () => Promise.resolve(checkSecretsFile(readSecretsEnv(opts.configFile, opts.envFile).file)) });
  if (config) {
    if (config.mqtt.tls) checks.push({ name: 'files:tls', title: 'TLS file permissions', timeoutMs: 5_000, run: withUser((u) => checkTlsFiles(config, u, pending)) });
    checks.push({ name: 'files:data', title: 'data dir permissions', timeoutMs: 5_000, run: withUser((u) => checkDataDir(config, u)) });
  } else {
    checks.push({ name: 'files:data', title: 'data dir', timeoutMs: 1_000, run: () => Promise.resolve(skip(NEEDS_CONFIG)) });
  }
  return checks;
}

/** Runs every check; `hooks` see each one start and finish (progress). */
export async function runDoctor(opts: DoctorOptions, hooks: RunHooks = {}): Promise<DoctorReport> {
  const t0 = performance.now();
  const secrets = readSecretsEnv(opts.configFile, opts.envFile);
  const env = withSecrets(opts.env, secrets);
  let loaded: LoadedConfig | undefined;
  let pending: PendingCert | undefined;
  const configCheck: DoctorCheck = {
    name: 'config',
    title: 'config file',
    timeoutMs: 5_000,
    run: () => {
      const r = configOutcome(opts.configFile, secrets, env);
      loaded = r.loaded;
      pending = r.pending;
      return Promise.resolve(r.outcome);
    },
  };
  const user = await resolveAgentUser(opts.user).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  const [configResult] = await runChecks([configCheck], hooks);
  const rest = await runChecks(planChecks(loaded?.config, opts, user, pending), hooks);
  const results = [configResult!, ...rest];
  const exitCode = loaded === undefined ? EXIT.CONFIG : results.some((r) => r.status === 'fail') ? EXIT.FATAL : EXIT.OK;
  return { results, exitCode, duration_ms: Math.round(performance.now() - t0) };
}
