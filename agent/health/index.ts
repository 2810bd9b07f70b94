export { assess, detectorStuck, type Assessment, type AssessInput } from './assess.js';
export { overlayFromConfig, type AgentFigures, type CameraFigures, type CameraOverlay, type DetectionFigure, type DetectorFigures, type OutboxFigures, type RawFrame, type UplinkFigures } from './figures.js';
export { HealthPublisher, type HealthPublisherDeps, type HealthPublisherStats } from './publisher.js';
export { RestartLog, type RestartInfo, type RestartLogOptions, type RestartReason } from './restarts.js';
export { HealthSampler, type HealthSamplerOptions, type LoopVerdict } from './sampler.js';
export { SystemHealthSources, type HealthSources, type SystemSourcesOptions } from './sources.js';
export { SdNotifier, Watchdog, type SdNotifierOptions, type WatchdogOptions, type WatchdogState } from './watchdog.js';
