export * from './commands.js';
export * from './embedded-broker.js';
export * from './errors.js';
export * from './uplink.js';
