import { describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../lib/config/index.js';

const cwd = mkdtempSync(join(tmpdir(), 'edgesync-auth-settings-'));
const load = (env: Record<string, string>) => loadConfig({ argv: [], env, cwd, mode: 'CSS' });

function messages(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('authentication settings', () => {
  it('throttle 10 failed logins per 60 s by default, and leave the external service unset', () => {
    const c = load({});
    expect(c).toMatchObject({ loginFailureLimit: 10, loginFailureWindow: 60, externalAuthUrl: '', externalAuthCacheTtl: 60, externalAuthTimeout: 5 });
  });

  it('take the external handler with its URL, CA, TTL and timeout', () => {
    const c = load({
      AUTHENTICATION_HANDLER: 'external',
      EXTERNAL_AUTH_URL: 'https://idp.example.com/check',
      EXTERNAL_AUTH_CA_CERTIFICATE: 'idp-ca.pem',
      EXTERNAL_AUTH_CACHE_TTL: '0',
      EXTERNAL_AUTH_TIMEOUT: '2',
      LOGIN_FAILURE_LIMIT: '0',
    });
    expect(c).toMatchObject({ authenticationHandler: 'external', externalAuthUrl: 'https://idp.example.com/check', externalAuthCacheTtl: 0, externalAuthTimeout: 2, loginFailureLimit: 0 });
    // A CA file is found under the persistence root, as the other certificate settings.
    expect(c.externalAuthCACertificate).toBe(join(c.persistenceRootPath, 'idp-ca.pem'));
  });

  it('refuse the external handler without a URL, and a URL that is not http(s)', () => {
    expect(messages({ AUTHENTICATION_HANDLER: 'external' })).toEqual([expect.stringMatching(/^EXTERNAL_AUTH_URL: is required when authenticationHandler is external/)]);
    expect(messages({ AUTHENTICATION_HANDLER: 'external', EXTERNAL_AUTH_URL: 'ftp://idp/check' })).toEqual([expect.stringMatching(/^EXTERNAL_AUTH_URL: must be an http:\/\/ or https:\/\/ URL/)]);
    expect(messages({ EXTERNAL_AUTH_URL: 'not a url' })).toHaveLength(1);
  });

  it('refuse a zero-length window and a timeout of 0', () => {
    expect(messages({ LOGIN_FAILURE_WINDOW: '0', EXTERNAL_AUTH_TIMEOUT: '0' })).toHaveLength(2);
  });
});
