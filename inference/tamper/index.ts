export { Hysteresis, type Stamp, type Transition } from './hysteresis.js';
export { COARSE_STEP, FrameSampler, meanGradient, percentileOfHistogram, THUMB_H, THUMB_W, type FrameMeasures, type PictureRegion } from './measures.js';
export { loadReference, REFERENCE_SCHEMA, ReferenceLearner, referenceFile, retireReference, saveReference, type ReferenceData, type TamperReference } from './reference.js';
export { edgeMap, edgeMatch, PhaseCorrelator, type Registration } from './registration.js';
export { pictureRegion, tamperHealthReason, TamperWatcher, type RebaseResult, type TamperStats, type TamperWatcherOptions } from './watcher.js';
