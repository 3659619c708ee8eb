// Moved to the runtime layer; kept so existing imports keep working.
export * from '../runtime/session.js';
