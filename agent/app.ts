import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LoadedConfig } from '../config/loader.js';
import type { BirthInfo } from '../contract/birth.js';
import type { EventDraft } from '../contract/event.js';
import type { CameraStatusPayload } from '../contract/status.js';
import { relativeTopic } from '../contract/topics.js';
import type { CameraStatus } from '../ingest/index.js';
import { Detector } from '../inference/detector/index.js';
import { EvidencePackages, recordingsDir } from '../inference/evidence/index.js';
import { PlateReader } from '../inference/recognizers/index.js';
import { tamperHealthReason } from '../inference/tamper/index.js';
import { Outbox } from '../buffer/index.js';
import { registerAgentCommands } from './commands/index.js';
import { CameraSet, ConfigApplier, moduleProbe } from './config-apply/index.js';
import { readSecretsEnv, withSecrets } from './field/secrets-env.js';
import { LiveFigures } from './figures.js';
import { HealthPublisher, HealthSampler, overlayFromConfig, RestartLog, Watchdog } from './health/index.js';
import type { Logger, LogLevel } from '../core/log.js';
import type { Module } from '../core/module.js';
import { packageVersion } from '../core/paths.js';
import { EmbeddedBroker, Uplink } from './uplink/index.js';

export interface Agent {
  /** In start order; stopped in reverse. */
  modules: Module[];
  /** Config changes in place (config-apply, and local editors such as the status page's). */
  applier: ConfigApplier;
  /** Called with a reason when a module hits a condition only a restart can fix. */
  onFatal: (handler: (reason: string) => void) => void;
  /** Called once with the reason the process is about to exit (kept for the next birth message). */
  recordExit: (reason: string) => void;
  /** Violation evidence packages: `markAcknowledged(eventId)` once the center has one, `stats()` for health. */
  evidence: EvidencePackages;
}

/** Short hash of a file, or undefined when it cannot be read (the detector reports that on start). */
function fileSha256(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}

function cameraStatusPayload(s: CameraStatus): CameraStatusPayload | undefined {
  if (s.state === 'starting') return undefined;
  return { camera: s.camera, state: s.state, ts: new Date(s.since_ms).toISOString(), ...(s.reason ? { reason: s.detail ? `${s.reason}: ${s.detail}` : s.reason } : {}) };
}

/**
 * Composes the agent from a validated config. Constructors only assign: nothing runs until the controller
 * starts the modules, in this order: restart log, outbox, (embedded broker), uplink, detector, cameras (each
 * camera's source, then the pipelines), config (probation of a pushed config), health publisher, health, status
 * server, systemd watchdog. The reverse order on stop lets the pipelines flush their last events into the outbox
 * before the uplink stops: its stop commits them and delivers everything committed (bounded) before publishing
 * `stopped`. A config change replaces only the cameras it touches (CameraSet); the detector, outbox and uplink
 * keep running (ConfigApplier restarts the process for what only a restart can apply).
 */
export interface BuildOptions {
  /**
   * The environment the config was loaded with (secrets included): config-apply checks candidates with it.
   * Default: the process environment over secrets.env beside the config, as `run` reads it without --env-file.
   */
  env?: NodeJS.ProcessEnv;
}

export async function buildAgent(loaded: LoadedConfig, log: Logger, opts: BuildOptions = {}): Promise<Agent> {
  const { config } = loaded;
  const fatalHandlers: ((reason: string) => void)[] = [];
  const fatal = (reason: string) => fatalHandlers.forEach((h) => h(reason));

  const restarts = new RestartLog({ dataDir: config.device.data_dir, log });
  const outbox = new Outbox(config.outbox, log.child({ mod: 'outbox' }));
  const detector = new Detector(config.detector, log, { onFatal: () => fatal('detector_failed') });
  const figures = new LiveFigures(config);
  // Evidence packages of violations, cut from each camera's recording ring; plates read when enabled.
  const plateReader = config.recognizers.plates.enabled ? new PlateReader(config.recognizers.plates, log) : undefined;
  const plates: Module[] = plateReader ? [optionalModule(plateReader, log)] : [];
  const evidence = EvidencePackages.fromConfig(config, {
    file: loaded.file,
    config_hash: () => applier.config().hash,
    ...(plateReader ? { plates: { reader: plateReader, config: config.recognizers.plates } } : {}),
    log,
  });

  const publish = (e: EventDraft) => {
    outbox.append({ id: e.id, topic: relativeTopic.events(e.camera), priority: e.priority, payload: e });
    figures.noteEvent(e);
  };

  const health = new HealthSampler({ config: config.health, dataDir: config.device.data_dir, figures, log });
  const clockSynced = () => health.clockSynced() === true;
  const setLogLevel = (level: LogLevel): string => {
    const previous = log.level;
    log.level = level;
    return previous;
  };

  const modelPath = config.detector.model_path ?? '';
  const modelSha = fileSha256(modelPath);
  const uplink: Uplink = new Uplink({
    config: config.mqtt,
    device: config.device,
    outbox,
    log: log.child({ mod: 'uplink' }),
    setLogLevel,
    birth: (): BirthInfo => ({
      agent_version: packageVersion(),
      model: { name: basename(modelPath, '.onnx'), ...(modelSha ? { sha256: modelSha } : {}) },
      config_hash: applier.config().hash,
      config: applier.birthState(),
      cameras: applier.config().config.cameras.map((c) => ({ id: c.id, lines: c.lines.map((l) => l.id), zones: c.zones.map((z) => z.id) })),
      capabilities: capabilities(applier.config().config),
      last_reboot_reason: restarts.lastRestart().reason,
      restarts: restarts.lastRestart().count,
      ...(health.latest() ? { health: health.summary() } : {}),
      ...(applier.config().config.device.location ? { location: applier.config().config.device.location } : {}),
    }),
  });

  const cameraSet = new CameraSet(
    {
      detector,
      target: { ...config.detector.input_size, resize: config.detector.resize },
      device: config.device,
      publish,
      clockSynced,
      onStatus: (s) => {
        const payload = cameraStatusPayload(s);
        if (payload) uplink.publishNow(relativeTopic.cameraStatus(s.camera), payload, { retain: true });
      },
      log,
      tamperDir: join(config.device.data_dir, 'tamper'),
      sourceOptions: { recording: { dir: recordingsDir(config) } },
      evidence: (cam, analytics) => evidence.forCamera(cam, { evidence: analytics.evidence }),
      onTamper: (camera, kinds) => health.setCondition(`tamper:${camera}`, tamperHealthReason(camera, kinds)),
    },
    config.cameras,
    config.analytics,
  );
  figures.attach({ cameras: cameraSet.sources, pipelines: cameraSet.pipelines, detector, outbox, uplink, evidence });
  const applier: ConfigApplier = new ConfigApplier({
    loaded,
    cameras: cameraSet,
    probe: moduleProbe({ cameras: cameraSet.sources, detector, uplink }),
    log: log.child({ mod: 'config' }),
    setLogLevel,
    rebirth: () => void uplink.rebirth().catch(() => undefined), // offline: the next connect publishes the birth
    requestRestart: (reason) => fatal(reason),
    env: opts.env ?? withSecrets(process.env, readSecretsEnv(loaded.file)),
    onApplied: (next) => next.config.cameras.forEach((c) => figures.setOverlay(c.id, overlayFromConfig(c))),
  });
  // Health goes through the outbox, and also directly while the disk is full (status then carries disk_full).
  const healthPublisher = new HealthPublisher({ health, outbox, uplink, log: log.child({ mod: 'health' }) });
  registerAgentCommands({
    commands: uplink.commands,
    loaded: () => applier.config(),
    cameras: cameraSet.configs,
    signals: cameraSet,
    config: applier,
    log,
    requestRestart: (reason: string) => fatal(reason),
    tamper: (camera) => cameraSet.tamper(camera),
  });

  // The status page (http/ws server, metrics, previews) is loaded only when on (~3.5 MB resident, measured).
  const status = config.status.enabled
    ? [new (await import('./status/server.js')).StatusServer({ config: config.status, cameras: cameraSet.configs, device: config.device, health, figures, restarts, log, applier })]
    : [];
  const watchdog = new Watchdog({ isHealthy: () => health.mainLoopHealthy(), restarts, log });
  const broker = config.mqtt.embedded_broker ? [new EmbeddedBroker(config.mqtt, log.child({ mod: 'broker' }))] : [];

  const modules: Module[] = [restarts, outbox, ...broker, uplink, detector, ...plates, cameraSet, applier, healthPublisher, health, ...status, watchdog];
  return {
    applier,
    modules,
    onFatal: (h) => fatalHandlers.push(h),
    recordExit: (reason) => restarts.recordExit(reason),
    evidence,
  };
}

/** A module whose failure to start is logged, not fatal (the plate reader: packages then go without plates). */
function optionalModule(m: Module, log: Logger): Module {
  return {
    name: m.name,
    start: (signal) => m.start(signal).catch((err: unknown) => log.error({ err, module: m.name }, 'optional module failed to start; going on without it')),
    stop: () => m.stop(),
  };
}

function capabilities(config: LoadedConfig['config']): string[] {
  const caps = new Set(['counting', 'tracking', 'flow', 'snapshot', 'resend']);
  for (const c of config.cameras) {
    if (c.zones.length > 0) caps.add('zones');
    if (c.zones.some((z) => z.allowed_direction)) caps.add('wrong_way');
    if (c.calibration) caps.add('speed');
    if (c.lines.some((l) => l.stop_line)) caps.add('red_light');
  }
  return [...caps].sort();
}
