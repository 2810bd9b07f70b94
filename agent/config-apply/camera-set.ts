// The cameras of the box as one module: per camera a source (ffmpeg), its analytics and the pipeline between
// them and the shared detector. A config change replaces only what it touches, camera by camera, while the
// detector, outbox and uplink keep running. The arrays handed out (sources, pipelines, configs) are kept
// up to date in place, so the status page, the figures and the commands always see the cameras in force.
import type { AnalyticsConfig, CameraConfig } from '../../config/schema/index.js';
import type { TamperKind } from '../../contract/event.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { CameraAnalytics, type DeviceRef, type EventSink, type SignalState } from '../../inference/analytics/index.js';
import type { ViolationEvidence } from '../../inference/analytics/evidence.js';
import { CameraSource, type CameraSourceOptions, type CameraStatus, type FrameTarget } from '../../ingest/index.js';
import type { Detector } from '../../inference/detector/index.js';
import { CameraPipeline } from '../../inference/pipeline.js';
import { TamperWatcher } from '../../inference/tamper/index.js';
import type { CameraDiff } from './plan.js';

export interface CameraSetDeps {
  detector: Detector;
  /** The detector's input size and resize mode: what ffmpeg scales to. */
  target: FrameTarget;
  device: DeviceRef;
  publish: EventSink;
  clockSynced: () => boolean;
  /** Every status change of every camera (also of one replaced or removed: its source says `stopped`). */
  onStatus: (s: CameraStatus) => void;
  log: Logger;
  sourceOptions?: CameraSourceOptions;
  /** The evidence of a camera's violations (a new one for each new analytics); default images (CameraAnalytics). */
  evidence?: (cam: CameraConfig, analytics: AnalyticsConfig) => ViolationEvidence;
  /** Where the cameras' tamper reference views are stored (`<device.data_dir>/tamper`). */
  tamperDir: string;
  /** The active tamper kinds of a camera changed (health condition); [] when its watch ends. */
  onTamper?: (camera: string, kinds: TamperKind[]) => void;
}

interface Unit {
  cam: CameraConfig;
  source: CameraSource;
  analytics: CameraAnalytics;
  pipeline: CameraPipeline;
  tamper: TamperWatcher | undefined;
  /** Track ids go on from the replaced analytics': a track id never means two objects in one run. */
  firstTrackId: number;
}

/** What one reconfiguration did. */
export interface CameraChanges {
  added: string[];
  removed: string[];
  restarted: string[];
  analytics: string[];
  roi: string[];
}

export class CameraSet implements Module {
  readonly name = 'cameras';
  /** Live views, in config order. */
  readonly sources: CameraSource[] = [];
  readonly pipelines: CameraPipeline[] = [];
  readonly analytics: CameraAnalytics[] = [];
  readonly configs: CameraConfig[] = [];
  private readonly units = new Map<string, Unit>();
  /** Last state of every signal, replayed into replaced analytics (red-light checks must not forget a red). */
  private readonly signals = new Map<string, { state: SignalState; at_ms: number }>();
  private running = false;
  private stopped = false;
  /** Start, reconfigurations and stop run one after the other. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: CameraSetDeps,
    cameras: readonly CameraConfig[],
    private analyticsConfig: AnalyticsConfig,
  ) {
    for (const cam of cameras) this.units.set(cam.id, this.unit(cam, 1));
    this.publishViews(cameras);
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.serial(async () => {
      const started: Unit[] = [];
      try {
        for (const u of this.units.values()) {
          await u.source.start(signal);
          started.push(u);
        }
      } catch (err) {
        // The controller does not stop a module whose start failed: leave nothing running.
        await Promise.allSettled(started.map((u) => u.source.stop()));
        throw err;
      }
      for (const u of this.units.values()) await u.pipeline.start();
      this.running = true;
    });
  }

  /** Pipelines first (their last events reach the outbox), then the sources. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.serial(async () => {
      if (!this.running) return;
      this.running = false;
      const units = [...this.units.values()];
      // All at once: each pipeline's stop ends with its evidence builds hurrying (analytics.flush), and one
      // camera's builds must not wait for another's before they start (4 cameras on 2 cores: 10 s one by one).
      await Promise.all(units.map((u) => u.pipeline.stop().catch((err: unknown) => this.deps.log.error({ err, camera: u.cam.id }, 'pipeline failed to stop'))));
      await Promise.all(units.map((u) => u.source.stop()));
    });
  }

  /** A traffic signal's state, for every camera's red-light checks (the `signal` command). */
  setSignal(id: string, state: SignalState, at_ms: number = Date.now()): void {
    this.signals.set(id, { state, at_ms });
    for (const u of this.units.values()) u.analytics.setSignal(id, state, at_ms);
  }

  /** The tamper watch of a camera in force (rebase-reference); undefined when it has none. */
  tamper(camera: string): TamperWatcher | undefined {
    return this.units.get(camera)?.tamper;
  }

  /**
   * Brings the cameras to `cameras` as `diff` says (plan.ts diffCameras): removed ones stop, changed sources
   * and analytics are replaced, ROI changes reach the detector, new cameras start. Unchanged cameras are not
   * touched. Refused once the set is stopping.
   */
  reconfigure(cameras: readonly CameraConfig[], analytics: AnalyticsConfig, diff: CameraDiff): Promise<CameraChanges> {
    return this.serial(async () => {
      if (this.stopped) throw new AgentError('AGENT_STOPPING', 'the agent is stopping: cameras are not reconfigured');
      this.analyticsConfig = analytics;
      const byId = new Map(cameras.map((c) => [c.id, c]));
      const log = this.deps.log;
      for (const id of diff.removed) {
        const u = this.units.get(id);
        if (!u) continue;
        this.units.delete(id);
        await this.halt(u, true);
        this.deps.detector.setRoi(id, undefined);
        log.info({ camera: id }, 'camera removed');
      }
      for (const id of diff.source) {
        const u = this.units.get(id);
        const cam = byId.get(id);
        if (!u || !cam) continue;
        await this.halt(u, true);
        const next = this.unit(cam, this.nextTrackId(u));
        this.units.set(id, next);
        await this.launch(next, true);
        log.info({ camera: id }, 'camera restarted with its new settings');
      }
      for (const id of diff.analytics) {
        const u = this.units.get(id);
        const cam = byId.get(id);
        if (!u || !cam) continue;
        await this.halt(u, false);
        const next = this.unit(cam, this.nextTrackId(u), u.source);
        this.units.set(id, next);
        await this.launch(next, false);
        log.info({ camera: id }, 'camera analytics restarted with the new lines, zones and rules');
      }
      for (const id of diff.roi) {
        const u = this.units.get(id);
        const cam = byId.get(id);
        if (!u || !cam) continue;
        u.cam = cam;
        this.deps.detector.setRoi(id, cam.roi);
        log.info({ camera: id }, 'camera region of interest updated');
      }
      for (const id of diff.added) {
        const cam = byId.get(id);
        if (!cam || this.units.has(id)) continue;
        const u = this.unit(cam, 1);
        this.units.set(id, u);
        await this.launch(u, true);
        log.info({ camera: id }, 'camera added');
      }
      // Unchanged cameras keep their modules; their config object is the new one (same values).
      for (const cam of cameras) {
        const u = this.units.get(cam.id);
        if (u) u.cam = cam;
      }
      this.publishViews(cameras);
      return { added: diff.added, removed: diff.removed, restarted: diff.source, analytics: diff.analytics, roi: diff.roi };
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private unit(cam: CameraConfig, firstTrackId: number, source?: CameraSource): Unit {
    const d = this.deps;
    const src = source ?? new CameraSource(cam, d.target, d.log, d.sourceOptions);
    if (!source) src.on('status', (s) => d.onStatus(s));
    const analytics = new CameraAnalytics(cam, this.analyticsConfig, d.device, d.publish, d.log, { first_track_id: firstTrackId, ...(d.evidence ? { evidence: d.evidence(cam, this.analyticsConfig) } : {}) });
    for (const [id, s] of this.signals) analytics.setSignal(id, s.state, s.at_ms);
    const tamper = cam.tamper.enabled
      ? new TamperWatcher({ camera: cam, device: d.device, emit: d.publish, dir: d.tamperDir, clockSynced: d.clockSynced, log: d.log, ...(d.onTamper ? { onChange: d.onTamper } : {}) })
      : undefined;
    const pipeline = new CameraPipeline({ camera: cam, source: src, detector: d.detector, analytics, clockSynced: d.clockSynced, log: d.log, ...(tamper ? { tamper } : {}) });
    return { cam, source: src, analytics, pipeline, tamper, firstTrackId };
  }

  private nextTrackId(u: Unit): number {
    return u.firstTrackId + u.analytics.stats().track_ids_issued;
  }

  /** Stops a unit's pipeline (flushing its analytics: tracks end, partial flow bins go out) and, if asked, its source. */
  private async halt(u: Unit, source: boolean): Promise<void> {
    if (!this.running) return;
    await u.pipeline.stop().catch((err: unknown) => this.deps.log.error({ err: errorMessage(err), camera: u.cam.id }, 'pipeline failed to stop'));
    if (u.tamper?.active().length) this.deps.onTamper?.(u.cam.id, []); // its replacement raises them again if they hold
    if (source) await u.source.stop();
  }

  private async launch(u: Unit, source: boolean): Promise<void> {
    if (!this.running) return;
    if (source) await u.source.start();
    await u.pipeline.start();
  }

  private publishViews(cameras: readonly CameraConfig[]): void {
    const units = cameras.map((c) => this.units.get(c.id)).filter((u): u is Unit => u !== undefined);
    this.sources.splice(0, this.sources.length, ...units.map((u) => u.source));
    this.pipelines.splice(0, this.pipelines.length, ...units.map((u) => u.pipeline));
    this.analytics.splice(0, this.analytics.length, ...units.map((u) => u.analytics));
    this.configs.splice(0, this.configs.length, ...units.map((u) => u.cam));
  }
}
