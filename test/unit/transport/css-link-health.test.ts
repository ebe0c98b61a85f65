/** The colour rule of an ESS's link to its CSS (css-link-health.ts), on a fake clock. */
import { describe, expect, test } from '@jest/globals';
import { CssLinkHealth, cssHealthThresholds } from '../../../lib/transport/http/css-link-health.js';

function link(): { health: CssLinkHealth; advance: (ms: number) => void } {
  let now = 1_000_000;
  const health = new CssLinkHealth({ css: 'http://css:8080', yellowAfterMs: 50_000, redAfterMs: 90_000, now: () => now });
  return { health, advance: (ms) => (now += ms) };
}

describe('CssLinkHealth', () => {
  test('the thresholds follow the polling interval, the resend interval and the long-poll hold', () => {
    expect(cssHealthThresholds({ pollingIntervalMs: 10_000, resendIntervalMs: 10_000, longPollSeconds: 30 })).toEqual({ yellowAfterMs: 50_000, redAfterMs: 90_000 });
    expect(cssHealthThresholds({ pollingIntervalMs: 60_000, resendIntervalMs: 10_000, longPollSeconds: 0 })).toEqual({ yellowAfterMs: 120_000, redAfterMs: 360_000 });
  });

  test('yellow before the first answer, green once the CSS answers', () => {
    const { health, advance } = link();
    expect(health.report()).toEqual({ cssStatus: 'yellow', cssConnectionStatus: 'connecting', css: 'http://css:8080', registered: false, timeSinceLastSuccessfulExchange: 0 });
    advance(2000);
    health.answered(204, 'PUT /spi/v1/register/o/t/i');
    health.setRegistered(true);
    expect(health.report()).toEqual({
      cssStatus: 'green',
      cssConnectionStatus: 'connected',
      css: 'http://css:8080',
      registered: true,
      lastSuccessfulExchange: new Date(1_002_000).toISOString(),
      timeSinceLastSuccessfulExchange: 0,
    });
  });

  test('a CSS that answers is green only once the ESS is registered with it, and yellow again when the CSS forgets it', () => {
    const { health } = link();
    health.answered(204, 'PUT /spi/v1/register/o/t/i');
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'connected', registered: false });
    health.setRegistered(true);
    expect(health.report()).toMatchObject({ cssStatus: 'green', registered: true });
    health.setRegistered(false);
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'connected', registered: false });
  });

  test('an unreachable CSS is yellow at once, red once nothing succeeded for redAfter', () => {
    const { health, advance } = link();
    health.succeeded();
    health.setRegistered(true);
    advance(1000);
    health.noAnswer(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'GET /spi/v1/objects/');
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'unreachable', reason: 'GET /spi/v1/objects/: connect ECONNREFUSED 127.0.0.1:1' });
    advance(89_000);
    expect(health.report().cssStatus).toBe('yellow');
    advance(1);
    expect(health.report()).toMatchObject({ cssStatus: 'red', cssConnectionStatus: 'unreachable', timeSinceLastSuccessfulExchange: 90 });
    health.answered(200, 'GET /spi/v1/objects/');
    expect(health.report()).toMatchObject({ cssStatus: 'green', cssConnectionStatus: 'connected', timeSinceLastSuccessfulExchange: 0 });
    expect(health.report().reason).toBeUndefined();
  });

  test('a link with no exchange for yellowAfter (a request that hangs) is yellow though its last exchange succeeded', () => {
    const { health, advance } = link();
    health.succeeded();
    advance(50_001);
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'connected' });
  });

  test('refused credentials and an untrusted certificate are red at once; 5xx answers are failing (yellow)', () => {
    const { health } = link();
    health.succeeded();
    health.answered(403, 'PUT /spi/v1/register/o/t/i');
    expect(health.report()).toMatchObject({ cssStatus: 'red', cssConnectionStatus: 'credentialsRefused', reason: 'PUT /spi/v1/register/o/t/i answered 403' });
    health.noAnswer(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'PUT /spi/v1/register/o/t/i');
    expect(health.report()).toMatchObject({ cssStatus: 'red', cssConnectionStatus: 'certificateUntrusted' });
    health.answered(503, 'GET /spi/v1/objects/');
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'failing', reason: 'GET /spi/v1/objects/ answered 503' });
  });

  test('a link that stays open says itself how it fares: up is green however long it was idle, a lost broker connection is yellow at once', () => {
    let now = 1_000_000;
    let live: { up: true } | { up: false; reason: string } | null = null;
    const health = new CssLinkHealth({ css: 'mqtt://broker:1883', yellowAfterMs: 20_000, redAfterMs: 60_000, now: () => now, live: () => live });
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'connecting' });
    live = { up: true };
    health.setRegistered(true);
    now += 3_600_000;
    expect(health.report()).toMatchObject({ cssStatus: 'green', cssConnectionStatus: 'connected', registered: true, timeSinceLastSuccessfulExchange: 0 });
    live = { up: false, reason: 'the connection to the MQTT broker is lost' };
    now += 1_000;
    expect(health.report()).toMatchObject({ cssStatus: 'yellow', cssConnectionStatus: 'unreachable', reason: 'the connection to the MQTT broker is lost' });
    now += 60_000;
    expect(health.report().cssStatus).toBe('red');
    live = { up: true };
    expect(health.report()).toMatchObject({ cssStatus: 'green', cssConnectionStatus: 'connected' });
  });
});
