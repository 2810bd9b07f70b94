export * from './command-transport.js';
export * from './drain.js';
export * from './embedded-broker.js';
export * from './errors.js';
export * from './session.js';
export * from './uplink.js';
