import type { Config } from '../config/schema/index.js';
import type { Outbox } from '../buffer/index.js';
import type { CameraSource } from '../ingest/index.js';
import type { Detector } from '../inference/detector/index.js';
import type { CameraPipeline } from '../inference/pipeline.js';
import type { EventDraft } from '../contract/event.js';
import { overlayFromConfig, type AgentFigures, type CameraFigures, type CameraOverlay, type DetectionFigure, type DetectorFigures, type OutboxFigures, type RawFrame, type UplinkFigures } from './health/index.js';
import type { Uplink } from './uplink/index.js';
import type { EvidencePackages } from '../inference/evidence/index.js';
import type { EvidenceHealth } from '../contract/health.js';

interface Parts {
  cameras: CameraSource[];
  pipelines: CameraPipeline[];
  detector: Detector;
  outbox: Outbox;
  uplink: Uplink;
  evidence?: EvidencePackages;
}

const RECENT_EVENTS = 100;
const r2 = (v: number) => Math.round(v * 100) / 100;

/** The health sampler's and status server's view of the running modules: counters read, nothing computed twice. */
export class LiveFigures implements AgentFigures {
  private parts: Parts | undefined;
  private readonly events: EventDraft[] = [];
  private readonly overlays: Map<string, CameraOverlay>;
  private lastRuns = { runs: 0, at: performance.now(), fps: 0, last_done_at: 0 };

  constructor(config: Config) {
    this.overlays = new Map(config.cameras.map((c) => [c.id, overlayFromConfig(c)]));
  }

  attach(parts: Parts): void {
    this.parts = parts;
  }

  /** Keeps the latest events for the status page (newest first). */
  noteEvent(e: EventDraft): void {
    this.events.unshift(e);
    if (this.events.length > RECENT_EVENTS) this.events.length = RECENT_EVENTS;
  }

  /** After a config reload: what the page draws follows the config in force. */
  setOverlay(cameraId: string, overlay: CameraOverlay): void {
    this.overlays.set(cameraId, overlay);
  }

  private need(): Parts {
    if (!this.parts) throw new Error('figures read before the modules were attached');
    return this.parts;
  }

  cameras(): CameraFigures[] {
    return this.need().cameras.map((src) => {
      const s = src.stats();
      const st = src.status();
      return {
        id: s.camera,
        status: st.state,
        ...(st.reason ? { reason: st.detail ? `${st.reason}: ${st.detail}`.slice(0, 500) : st.reason } : {}),
        camera_fps: r2(s.camera_fps),
        process_fps: r2(s.process_fps),
        skipped_fps: r2(s.skipped_fps),
        motion_skipped_fps: r2(s.motion_skipped_fps),
        reconnects_last_hour: s.reconnects_last_hour,
        stalls_last_hour: s.stalls_last_hour,
        last_frame_age_s: s.last_frame_age_ms === null ? null : r2(s.last_frame_age_ms / 1000),
      };
    });
  }

  detector(): DetectorFigures {
    const s = this.need().detector.stats();
    const now = performance.now();
    const dt = (now - this.lastRuns.at) / 1000;
    if (s.runs !== this.lastRuns.runs) this.lastRuns.last_done_at = now;
    if (dt >= 1) this.lastRuns = { runs: s.runs, at: now, fps: (s.runs - this.lastRuns.runs) / dt, last_done_at: this.lastRuns.last_done_at };
    return {
      // The detector's states are a subset of the health contract's (which adds "stuck", judged by the sampler).
      state: s.state,
      inference_ms_mean: s.runs > 0 ? r2(s.inference_ms_mean) : null,
      inference_ms_p95: s.runs > 0 ? r2(s.inference_ms_p95) : null,
      detection_fps: r2(this.lastRuns.fps),
      restarts: s.restarts,
      last_inference_age_s: this.lastRuns.last_done_at > 0 ? r2((now - this.lastRuns.last_done_at) / 1000) : null,
    };
  }

  outbox(): OutboxFigures {
    const s = this.need().outbox.stats();
    const evicted = Object.values(s.evicted).reduce((a, b) => a + b, 0) + Object.values(s.expired).reduce((a, b) => a + b, 0);
    return { depth: s.depth_total, oldest_unsent_age_s: s.oldest_unsent_age_s, evicted, ...(s.quarantined_file ? { quarantined_file: s.quarantined_file } : {}) };
  }

  evidence(): EvidenceHealth {
    const evidence = this.need().evidence;
    if (!evidence) throw new Error('no evidence packages on this box');
    const s = evidence.stats();
    return { packages: s.packages, size_mb: r2(s.bytes / 1e6), unacknowledged: s.unacknowledged, evicted_acknowledged: s.evicted_acknowledged, evicted_unacknowledged: s.evicted_unacknowledged, expired: s.expired };
  }

  uplink(): UplinkFigures {
    const s = this.need().uplink.stats();
    return {
      connected: s.state === 'online',
      state: s.state,
      publish_rate_per_s: r2(s.publish_rate_per_s),
      session: s.session,
      ...(s.last_error ? { last_error: `${s.last_error.code}: ${s.last_error.message}`.slice(0, 500) } : {}),
      broker: s.broker,
      failovers: s.failovers,
    };
  }

  recentEvents(limit: number): unknown[] {
    return this.events.slice(0, limit);
  }

  latestDetections(cameraId: string): DetectionFigure[] {
    const p = this.need().pipelines.find((x) => x.name === `pipeline:${cameraId}`);
    return (p?.latestDetections() ?? []).map((d) => ({ box: d.box, class_name: d.class_name, score: d.score }));
  }

  cameraOverlay(cameraId: string): CameraOverlay | undefined {
    return this.overlays.get(cameraId);
  }

  latestFrame(cameraId: string): RawFrame | undefined {
    const p = this.need().pipelines.find((x) => x.name === `pipeline:${cameraId}`);
    return p?.latest()?.frame;
  }
}
