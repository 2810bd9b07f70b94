import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { LoadedConfig } from '../config/loader.js';
import type { EventDraft } from '../contract/event.js';
import type { CameraStatusPayload } from '../contract/status.js';
import { relativeTopic } from '../contract/topics.js';
import { CameraAnalytics } from '../inference/analytics/index.js';
import { CameraSource, type CameraStatus } from '../inference/camera/index.js';
import { Detector } from '../inference/detector/index.js';
import { CameraPipeline } from '../inference/pipeline.js';
import { Outbox } from '../buffer/index.js';
import { registerAgentCommands } from './commands/index.js';
import { LiveFigures } from './figures.js';
import { HealthPublisher, HealthSampler, RestartLog, Watchdog } from './health/index.js';
import type { Logger } from '../core/log.js';
import type { Module } from '../core/module.js';
import { packageVersion } from '../core/paths.js';
import { StatusServer } from './status/index.js';
import { EmbeddedBroker, Uplink } from './uplink/index.js';

export interface Agent {
  /** In start order; stopped in reverse. */
  modules: Module[];
  /** Called with a reason when a module hits a condition only a restart can fix. */
  onFatal: (handler: (reason: string) => void) => void;
  /** Called once with the reason the process is about to exit (kept for the next birth message). */
  recordExit: (reason: string) => void;
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
 * starts the modules, in this order: restart log, outbox, (embedded broker), uplink, detector, cameras,
 * pipelines, health publisher, health, status server, systemd watchdog. The reverse order on stop lets the
 * pipelines flush their last events into the outbox before the uplink stops: its stop commits them and delivers
 * everything committed (bounded) before publishing `stopped`.
 */
export function buildAgent(loaded: LoadedConfig, log: Logger): Agent {
  const { config } = loaded;
  const fatalHandlers: ((reason: string) => void)[] = [];
  const fatal = (reason: string) => fatalHandlers.forEach((h) => h(reason));

  const restarts = new RestartLog({ dataDir: config.device.data_dir, log });
  const outbox = new Outbox(config.outbox, log.child({ mod: 'outbox' }));
  const detector = new Detector(config.detector, log, { onFatal: () => fatal('detector_failed') });
  const figures = new LiveFigures(config);

  const publish = (e: EventDraft) => {
    outbox.append({ id: e.id, topic: relativeTopic.events(e.camera), priority: e.priority, payload: e });
    figures.noteEvent(e);
  };

  const health = new HealthSampler({ config: config.health, dataDir: config.device.data_dir, figures, log });
  const clockSynced = () => health.clockSynced() === true;
  const cameras = config.cameras.map((cam) => new CameraSource(cam, { ...config.detector.input_size, resize: config.detector.resize }, log));
  const analytics = config.cameras.map((cam) => new CameraAnalytics(cam, config.analytics, config.device, publish, log));
  const pipelines = config.cameras.map((cam, i) => new CameraPipeline({ camera: cam, source: cameras[i]!, detector, analytics: analytics[i]!, clockSynced, log }));

  const modelPath = config.detector.model_path ?? '';
  const modelSha = fileSha256(modelPath);
  const uplink = new Uplink({
    config: config.mqtt,
    device: config.device,
    outbox,
    log: log.child({ mod: 'uplink' }),
    setLogLevel: (level) => {
      const previous = log.level;
      log.level = level;
      return previous;
    },
    birth: () => ({
      agent_version: packageVersion(),
      model: { name: basename(modelPath, '.onnx'), ...(modelSha ? { sha256: modelSha } : {}) },
      config_hash: loaded.hash,
      cameras: config.cameras.map((c) => ({ id: c.id, lines: c.lines.map((l) => l.id), zones: c.zones.map((z) => z.id) })),
      capabilities: capabilities(config),
      last_reboot_reason: restarts.lastRestart().reason,
      restarts: restarts.lastRestart().count,
      ...(health.latest() ? { health: health.summary() } : {}),
      ...(config.device.location ? { location: config.device.location } : {}),
    }),
  });

  figures.attach({ cameras, pipelines, detector, outbox, uplink });
  cameras.forEach((cam) => {
    cam.on('status', (s) => {
      const payload = cameraStatusPayload(s);
      if (payload) uplink.publishNow(relativeTopic.cameraStatus(s.camera), payload, { retain: true });
    });
  });
  // Health goes through the outbox, and also directly while the disk is full (status then carries disk_full).
  const healthPublisher = new HealthPublisher({ health, outbox, uplink, log: log.child({ mod: 'health' }) });
  registerAgentCommands({ commands: uplink.commands, config, analytics, log, loaded, requestRestart: (reason: string) => fatal(reason) });

  const status = new StatusServer({ config: config.status, cameras: config.cameras, device: config.device, health, figures, restarts, log });
  const watchdog = new Watchdog({ isHealthy: () => health.mainLoopHealthy(), restarts, log });
  const broker = config.mqtt.embedded_broker ? [new EmbeddedBroker(config.mqtt, log.child({ mod: 'broker' }))] : [];

  const modules: Module[] = [restarts, outbox, ...broker, uplink, detector, ...cameras, ...pipelines, healthPublisher, health, ...(config.status.enabled ? [status] : []), watchdog];
  return {
    modules,
    onFatal: (h) => fatalHandlers.push(h),
    recordExit: (reason) => restarts.recordExit(reason),
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
