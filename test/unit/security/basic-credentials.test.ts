import { describe, expect, it } from '@jest/globals';
import { basicCredentials } from '../../../lib/security/index.js';

const basic = (text: string, scheme = 'Basic'): string => `${scheme} ${Buffer.from(text).toString('base64')}`;

describe('basicCredentials', () => {
  it('reads the user up to the first colon and the secret after it', () => {
    expect(basicCredentials(basic('myorg/admin:s3cret'))).toEqual({ appKey: 'myorg/admin', secret: 's3cret' });
  });

  it('keeps colons in the secret, as the reference does', () => {
    expect(basicCredentials(basic('user:a:b:c'))).toEqual({ appKey: 'user', secret: 'a:b:c' });
  });

  it('takes the scheme in any case', () => {
    expect(basicCredentials(basic('u:p', 'basic'))).toEqual({ appKey: 'u', secret: 'p' });
  });

  it('gives null without a header, with another scheme or without a colon', () => {
    expect(basicCredentials(undefined)).toBeNull();
    expect(basicCredentials(basic('u:p', 'Bearer'))).toBeNull();
    expect(basicCredentials(basic('no-colon'))).toBeNull();
    expect(basicCredentials('Basic')).toBeNull();
  });
});
