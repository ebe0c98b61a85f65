import { describe, expect, it } from '@jest/globals';
import { BadRequestError, isValidName, validatePathParam } from '../../../lib/model/index.js';

describe('path parameter names', () => {
  it('accepts letters, digits, unicode letters and the reference punctuation', () => {
    for (const ok of ['model', 'a-b_c.d~e', 'x|y!z@w#v$u^t*s', 'модель', '模型1']) expect(isValidName(ok)).toBe(true);
  });

  it('rejects separators, percent, spaces and NUL', () => {
    for (const bad of ['a/b', 'a%2Fb', 'a b', 'a:b', 'a\0b', 'a+b', 'a&b', 'a=b', 'a,b', '(a)']) expect(isValidName(bad)).toBe(false);
  });

  it('reports the field and the escaped value', () => {
    expect(() => validatePathParam('object ID', 'a<b')).toThrow(new BadRequestError('object ID (a&lt;b) contains invalid characters'));
  });

  it('treats dot segments as traversal', () => {
    expect(() => validatePathParam('object ID', '..')).toThrow(BadRequestError);
    expect(() => validatePathParam('object ID', '.')).toThrow(BadRequestError);
  });

  it('lets empty values pass, as the reference does', () => {
    expect(() => validatePathParam('object ID', '')).not.toThrow();
  });
});
