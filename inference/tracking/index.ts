export { associate, bufferedIou, iou, match, matchEdges, type Association, type Edges, type Gated } from './associate.js';
export { hungarian } from './hungarian.js';
export { BoxKalman } from './kalman.js';
export { outsideFrame, Track, Tracker, type TrackerConfig, type TrackerOptions, type TrackerUpdate, type TrackState } from './tracker.js';
export type { Box, Detection, FrameContext } from './types.js';
