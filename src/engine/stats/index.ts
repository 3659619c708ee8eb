export * from '../random.js';
export * from './store.js';
export * from './cka.js';
export * from './dr.js';
export * from './metrics.js';
