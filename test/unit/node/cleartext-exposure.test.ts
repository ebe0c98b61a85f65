/**
 * Where a CSS would take Basic credentials in clear beyond loopback (listeners.ts
 * `cleartextExposure`, the start-up warning's list). Unit-tested with listeners that are not
 * bound: tests listen on loopback only, where the warning is rightly absent (auth-hardening).
 */
import type http from 'node:http';
import { describe, expect, test } from '@jest/globals';
import { cleartextExposure, type Listener } from '../../../lib/node/listeners.js';

function listener(protocol: 'http' | 'https', address: string, port: number): Listener {
  const server = { address: () => ({ address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' }) } as unknown as http.Server;
  return { server, url: `${protocol}://${address.includes(':') ? `[${address}]` : address}:${port}`, protocol };
}

describe('cleartextExposure', () => {
  test('plain HTTP on every interface, or on a routable address, is exposed; HTTPS is not', () => {
    expect(cleartextExposure({ listeningAddress: '0.0.0.0' }, [listener('http', '0.0.0.0', 8080), listener('https', '0.0.0.0', 8443)])).toEqual(['http://0.0.0.0:8080']);
    expect(cleartextExposure({ listeningAddress: '' }, [listener('http', '::', 8080)])).toEqual(['http://[::]:8080']);
    expect(cleartextExposure({ listeningAddress: '10.1.2.3' }, [listener('http', '10.1.2.3', 8080)])).toEqual(['http://10.1.2.3:8080']);
  });

  test('the embedded broker without TLS beyond loopback counts too; with TLS it does not', () => {
    expect(cleartextExposure({ listeningAddress: '0.0.0.0' }, [listener('https', '0.0.0.0', 8443)], ['mqtt://0.0.0.0:1883', 'mqtts://0.0.0.0:8883'])).toEqual(['mqtt://0.0.0.0:1883']);
  });

  test('loopback in any spelling exposes nothing', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) {
      expect(cleartextExposure({ listeningAddress: host }, [listener('http', host.replace(/[[\]]/g, ''), 8080)], ['mqtt://127.0.0.1:1883'])).toEqual([]);
    }
  });
});
