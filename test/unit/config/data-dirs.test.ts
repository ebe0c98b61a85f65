/**
 * SOURCE_DATA_DIRS and DESTINATION_DATA_DIRS: absolute directories only (a REST client's file
 * URIs are confined to them), and DESTINATION_DATA_DIRS only where objects are received.
 */
import { describe, expect, it } from '@jest/globals';
import { tmpdir } from 'node:os';
import { ConfigError, loadConfig, type LoadConfigOptions } from '../../../lib/config/index.js';

const load = (o: Partial<LoadConfigOptions>) => loadConfig({ argv: [], env: {}, cwd: tmpdir(), ...o });
const ESS_ENV = { NODE_TYPE: 'ESS', ORG_ID: 'myorg', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'node1', HTTP_CSS_HOST: 'localhost', HTTP_CSS_PORT: '8080' };

function messages(o: Partial<LoadConfigOptions>): string[] {
  try {
    load(o);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('data directories', () => {
  it('are off by default', () => {
    expect(load({})).toMatchObject({ sourceDataDirs: '', destinationDataDirs: '' });
  });

  it('take comma-separated absolute directories', () => {
    expect(load({ env: { ...ESS_ENV, SOURCE_DATA_DIRS: '/srv/a, /srv/b', DESTINATION_DATA_DIRS: '/var/in' } })).toMatchObject({ sourceDataDirs: '/srv/a, /srv/b', destinationDataDirs: '/var/in' });
  });

  it('refuse a relative directory, naming it', () => {
    expect(messages({ env: { SOURCE_DATA_DIRS: '/srv/a,out' } })).toEqual([expect.stringMatching(/^SOURCE_DATA_DIRS: must list absolute directories, got "out"/)]);
  });

  it('DESTINATION_DATA_DIRS is for an ESS', () => {
    expect(messages({ env: { DESTINATION_DATA_DIRS: '/var/in' } })).toEqual([expect.stringMatching(/^DESTINATION_DATA_DIRS: is for an ESS/)]);
  });
});
