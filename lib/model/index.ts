export * from './errors.js';
export * from './status.js';
export * from './names.js';
export * from './metadata.js';
export * from './decode.js';
export * from './object-update.js';
export * from './ranges.js';
