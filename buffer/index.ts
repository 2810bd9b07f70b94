export * from './errors.js';
export * from './outbox.js';
