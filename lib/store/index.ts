/** The storage seam: interfaces and the implementations the composition roots choose from. */
export type * from './types.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { FileBlobStore } from './file-blob-store.js';
