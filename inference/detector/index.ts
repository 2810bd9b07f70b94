export { Detector, detectImage, type DetectorConfigInput, type DetectorEvents, type DetectorHooks, type DetectorOptions } from './detector.js';
export { DetectorError, type DetectorErrorCode } from './errors.js';
export { pointInPolygon, iou, boxArea } from './geometry.js';
export { loadImageFrame } from './image.js';
export type { ModelInfo } from './pipeline.js';
export type { WorkerDebug } from './protocol.js';
export type * from './types.js';
