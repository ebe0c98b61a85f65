import { describe, expect, it } from '@jest/globals';
import { BadRequestError } from '../../../lib/model/index.js';
import { parseFeedback } from '../../../lib/transport/http/spi-object-actions.js';

describe('parseFeedback', () => {
  it('reads the reference keys, case-insensitively, with zero values for absent ones', () => {
    expect(parseFeedback('{"Code":2,"RetryInterval":30,"Reason":"disk full"}')).toEqual({ code: 2, retryInterval: 30, reason: 'disk full' });
    expect(parseFeedback('{"code":5,"reason":"gone","extra":true}')).toEqual({ code: 5, retryInterval: 0, reason: 'gone' });
    expect(parseFeedback('{}')).toEqual({ code: 0, retryInterval: 0, reason: '' });
    expect(parseFeedback('{"Code":null,"REASON":"x"}')).toEqual({ code: 0, retryInterval: 0, reason: 'x' });
  });

  it('refuses garbage with a 400', () => {
    for (const body of ['', 'not json', '[1]', '"x"', '{"Code":"two"}', '{"Code":1.5}', '{"Reason":3}', '{"RetryInterval":true}']) {
      expect(() => parseFeedback(body)).toThrow(BadRequestError);
    }
  });
});
