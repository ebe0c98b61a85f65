/** Identities, authenticators, authorization rules and TLS material. */
export * from './identity.js';
export * from './basic-credentials.js';
export * from './secret-hash.js';
export * from './users-file.js';
export * from './preset-authenticator.js';
export * from './dummy-authenticator.js';
export * from './access.js';
export * from './tls.js';
export * from './org-secrets.js';
export * from './login-throttle.js';
export * from './login-gate.js';
export * from './client-address.js';
export * from './external-authenticator.js';
