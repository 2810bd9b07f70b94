// A figures provider holding plain values, for tests and benchmarks (moved out of agent/health so it never ships in dist/).
import type {
  AgentFigures,
  CameraFigures,
  CameraOverlay,
  DetectionFigure,
  DetectorFigures,
  OutboxFigures,
  RawFrame,
  UplinkFigures,
} from '../agent/health/figures.js';

/** Initial values of a StaticFigures provider. */
export interface StaticFiguresInit {
  cameras?: CameraFigures[];
  detector?: DetectorFigures;
  outbox?: OutboxFigures;
  uplink?: UplinkFigures;
  events?: unknown[];
  detections?: Record<string, DetectionFigure[]>;
  overlays?: Record<string, CameraOverlay>;
  frames?: Record<string, RawFrame>;
}

/** A provider whose fields the test sets: public, and may be replaced at any time. */
export class StaticFigures implements AgentFigures {
  cameraList: CameraFigures[];
  detectorFigures: DetectorFigures;
  outboxFigures: OutboxFigures;
  uplinkFigures: UplinkFigures;
  events: unknown[];
  detections: Record<string, DetectionFigure[]>;
  overlays: Record<string, CameraOverlay>;
  frames: Record<string, RawFrame>;

  constructor(init: StaticFiguresInit = {}) {
    this.cameraList = init.cameras ?? [];
    this.detectorFigures = init.detector ?? { state: 'starting', inference_ms_mean: null, inference_ms_p95: null, detection_fps: 0, restarts: 0, last_inference_age_s: null };
    this.outboxFigures = init.outbox ?? { depth: 0, oldest_unsent_age_s: null, evicted: 0 };
    this.uplinkFigures = init.uplink ?? { connected: false, state: 'starting', publish_rate_per_s: 0, session: 0 };
    this.events = init.events ?? [];
    this.detections = init.detections ?? {};
    this.overlays = init.overlays ?? {};
    this.frames = init.frames ?? {};
  }

  cameras(): CameraFigures[] {
    return this.cameraList.map((c) => ({ ...c }));
  }
  detector(): DetectorFigures {
    return { ...this.detectorFigures };
  }
  outbox(): OutboxFigures {
    return { ...this.outboxFigures };
  }
  uplink(): UplinkFigures {
    return { ...this.uplinkFigures };
  }
  recentEvents(limit: number): unknown[] {
    return this.events.slice(0, limit);
  }
  latestDetections(cameraId: string): DetectionFigure[] {
    return this.detections[cameraId] ?? [];
  }
  cameraOverlay(cameraId: string): CameraOverlay | undefined {
    return this.overlays[cameraId];
  }
  latestFrame(cameraId: string): RawFrame | undefined {
    return this.frames[cameraId];
  }
}
