export * from './cli.js';
export * from './receiver.js';
export * from './seq-tracker.js';
export * from './sinks.js';
export * from './view.js';
