export {
  CameraAnalytics,
  SPEED_HALF_WINDOW_MS,
  SPEED_TRAIL_MS,
  type CameraAnalyticsOptions,
  type CameraAnalyticsStats,
  type DeviceRef,
  type EventSink,
} from './engine.js';
export { EvidenceStore, cropRegion, type EvidenceOptions, type EvidenceRequest, type EvidenceStats } from './evidence.js';
export { FlowBins, type FlowBin } from './flow.js';
export { anchorOf, pointInPolygon, polygonSignedDistance, segmentIntersectsBox, type Vec2 } from './geometry.js';
export { Homography, solveLinear } from './homography.js';
export { SignalTimeline, type SignalState } from './signals.js';
export { GroundTrack, percentile, type SpeedEstimate } from './speed.js';
