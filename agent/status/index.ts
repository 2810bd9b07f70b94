export { hostAllowed, isLoopbackName, originAllowed, requestToken, tokenMatches } from './auth.js';
export { Binder, type BinderOptions, type BindState } from './binder.js';
export { METRIC_PREFIX, renderMetrics } from './metrics.js';
export { CameraPreview, JpegSplitter, previewCommand, type PreviewCommand, type PreviewOptions, type PreviewState, type PreviewViewer } from './preview.js';
export { StatusServer, type StatusServerOptions } from './server.js';
