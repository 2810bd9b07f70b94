export { cropRgb } from './crop.js';
export { RecognizerError, type RecognizerErrorCode } from './errors.js';
export type { RecognizerWorkerDebug } from './protocol.js';
export { RecognizerWorker, type RecognizerWorkerOptions, type RecognizerWorkerStats } from './recognizer-worker.js';
export type { Recognizer, RecognizerEngine } from './types.js';
export * from './plate/index.js';
