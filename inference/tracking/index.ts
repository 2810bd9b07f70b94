export { associate, bufferedIou, iou, match, matchEdges, type Association, type Edges, type Gated } from './associate.js';
export { hungarian } from './hungarian.js';
export { BoxKalman } from './kalman.js';
export { mergeDetections } from './merge.js';
export { outsideFrame, Track, Tracker, type TrackerConfig, type TrackerOptions, type TrackerUpdate, type TrackState } from './tracker.js';
export type { Box, ClassScore, Detection, FrameContext } from './types.js';
