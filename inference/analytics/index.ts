export { CameraAnalytics, type CameraAnalyticsOptions, type CameraAnalyticsStats } from './engine.js';
export { EvidenceStore, cropRegion, type EvidenceOptions, type EvidenceRequest, type EvidenceStats } from './evidence.js';
export { FlowBins, LineFlow, type FlowBin, type Tally } from './flow.js';
export { anchorOf, pointInPolygon, polygonSignedDistance, segmentIntersectsBox, type Vec2 } from './geometry.js';
export { Homography, solveLinear } from './homography.js';
export { type DeviceRef, type EventSink } from './outlet.js';
export { SignalTimeline, type SignalState } from './signals.js';
export { GroundTrack, percentile, SPEED_HALF_WINDOW_MS, SPEED_TRAIL_MS, SPEED_WIDE_HALF_WINDOW_MS, SpeedMeter, type SpeedEstimate, type SpeedReference } from './speed.js';
