// Commands of the whole agent (the uplink registers ping, rebirth, resend and set-log-level itself).
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { ConfigError, formatProblems, loadConfig, type LoadedConfig } from '../config/loader.js';
import type { Config } from '../config/schema/index.js';
import type { CameraAnalytics } from '../inference/analytics/index.js';
import { grabFrame, type CameraSource } from '../inference/camera/index.js';
import type { CameraPipeline } from '../inference/pipeline.js';
import { ReloadConfigArgs, SignalArgs, SnapshotArgs } from '../contract/command.js';
import { AgentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Uplink } from './uplink/index.js';

export interface CommandDeps {
  uplink: Uplink;
  config: Config;
  loaded: LoadedConfig;
  cameras: CameraSource[];
  pipelines: CameraPipeline[];
  analytics: CameraAnalytics[];
  log: Logger;
  /** Ends the process so the service manager starts it again (with the new config). */
  requestRestart: (reason: string) => void;
}

export function registerAgentCommands(d: CommandDeps): void {
  const cameraConfig = (id: string) => {
    const cam = d.config.cameras.find((c) => c.id === id);
    if (!cam) throw new AgentError('UNKNOWN_CAMERA', `no camera "${id}" (cameras: ${d.config.cameras.map((c) => c.id).join(', ')})`);
    return cam;
  };

  // A JPEG of the camera at its native resolution, from a short extra connection (the live path runs at
  // the detector's input size only).
  d.uplink.commands.register('snapshot', SnapshotArgs, async ({ camera, quality }) => {
    const cam = cameraConfig(camera);
    const frame = await grabFrame(cam, { width: cam.frame.width, height: cam.frame.height, resize: 'stretch' }, { timeoutMs: 10_000 }).catch((err: unknown) => {
      throw new AgentError('SNAPSHOT_FAILED', `camera "${camera}": ${(err as Error).message}`);
    });
    const jpeg = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality }).toBuffer();
    return {
      camera,
      width: frame.width,
      height: frame.height,
      captured_at: new Date(frame.captured_at_ms).toISOString(),
      sha256: createHash('sha256').update(jpeg).digest('hex'),
      jpeg_base64: jpeg.toString('base64'),
    };
  });

  // Signal state for red-light enforcement, from the center or a local signal-controller bridge.
  d.uplink.commands.register('signal', SignalArgs, ({ signal, state, at }) => {
    const known = d.config.analytics.signals.some((s) => s.id === signal) || d.config.cameras.some((c) => c.lines.some((l) => l.signal === signal));
    if (!known) throw new AgentError('UNKNOWN_SIGNAL', `no stop line uses signal "${signal}"`);
    const at_ms = at ? Date.parse(at) : Date.now();
    d.analytics.forEach((a) => a.setSignal(signal, state, at_ms));
    return { signal, state, at: new Date(at_ms).toISOString() };
  });

  // Re-reads the config file. A config with problems is refused with every problem and the running one is
  // kept; a valid, changed one is applied by a restart (every module starts from the new file).
  d.uplink.commands.register('reload-config', ReloadConfigArgs, () => {
    let next: LoadedConfig;
    try {
      next = loadConfig(d.loaded.file);
    } catch (err) {
      if (err instanceof ConfigError) throw new AgentError('CONFIG_INVALID', `${err.problems.length} problem(s), running config kept:\n${formatProblems(err.problems)}`);
      throw err;
    }
    if (next.hash === d.loaded.hash) return { changed: false, config_hash: next.hash };
    d.log.warn({ from: d.loaded.hash, to: next.hash }, 'config changed: restarting to apply it');
    // Leave time for the response to go out before the orderly stop begins.
    setTimeout(() => d.requestRestart('config_reload'), 500).unref();
    return { changed: true, config_hash: next.hash, restarting: true };
  });
}
