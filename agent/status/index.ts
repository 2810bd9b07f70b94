export { hostAllowed, isLoopbackName, originAllowed, requestToken, tokenMatches } from './auth.js';
export { Binder, type BinderOptions, type BindState } from './binder.js';
export { ConfigEditor, type ConfigEditTarget, type EditAnswer, type EditRequest } from './config-edit.js';
export { HttpError, MAX_JSON_BODY_BYTES, readJsonBody } from './http.js';
export { METRIC_PREFIX, renderMetrics } from './metrics.js';
export { Mpeg1Preview, TsPackets, muxerOptions, ppmImage, type Mpeg1Options, type Mpeg1State, type Mpeg1Viewer, type TsChunk } from './mpeg1.js';
export { CameraPreview, JpegSplitter, previewCommand, type PreviewCommand, type PreviewOptions, type PreviewState, type PreviewViewer } from './preview.js';
export { StatusServer, type StatusServerOptions } from './server.js';
export { PLAYER_FILE, StaticFiles } from './static.js';
