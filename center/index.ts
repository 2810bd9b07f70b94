export * from './cli.js';
export * from './pg/sink.js';
export * from './receiver.js';
export * from './seq-tracker.js';
export * from './sinks.js';
export * from './state.js';
export * from './traffic.js';
export * from './view.js';
