/**
 * JSON with exact Go int64 values: the reference's ids are 19-digit nanosecond stamps, beyond
 * 2^53, and a double round trip turns 1796424756755170134 into 1796424756755170000.
 */
import { describe, expect, it } from '@jest/globals';
import { METADATA_INT64_KEYS, parseInt64, parseJson, stringifyJson, toInt64, INT64_MAX } from '../../../lib/model/index.js';
import { INT64_KEYS, parseJson as sdkParseJson, stringifyJson as sdkStringifyJson } from '../../../sdk/json.js';

const REF_ID = '1796424756755170134';

describe.each([
  ['server (lib/model/json.ts)', parseJson, stringifyJson],
  ['SDK (sdk/json.ts)', sdkParseJson, sdkStringifyJson],
])('JSON codec of the %s', (_name, parse, stringify) => {
  it('reads integers beyond 2^53 exactly, as bigint, and leaves safe numbers as numbers', () => {
    expect(parse(`{"instanceID":${REF_ID},"dataID":1796424756755170133,"objectSize":3072}`)).toEqual({
      instanceID: 1796424756755170134n,
      dataID: 1796424756755170133n,
      objectSize: 3072,
    });
    expect(parse(`[-9223372036854775808, 9223372036854775807, 9007199254740991]`)).toEqual([-(2n ** 63n), 2n ** 63n - 1n, 9007199254740991]);
  });

  it('reads the named keys as bigint whatever their size', () => {
    expect(parse('{"instanceID":5,"dataID":0,"consumers":1,"destinationPolicy":{"timestamp":7}}', METADATA_INT64_KEYS)).toEqual({
      instanceID: 5n,
      dataID: 0n,
      consumers: 1,
      destinationPolicy: { timestamp: 7n },
    });
  });

  it('leaves digits inside strings, fractions and exponents alone', () => {
    expect(parse(`{"objectID":"${REF_ID}","a":12345678901234567890.5,"b":1234567890123456789e2,"c":"x\\"${REF_ID}"}`)).toEqual({
      objectID: REF_ID,
      a: Number('12345678901234567890.5'),
      b: Number('1234567890123456789e2'),
      c: `x"${REF_ID}`,
    });
  });

  it('does not let a peer forge a bigint out of a string', () => {
    // The marker holds a per-process nonce: a string that looks like one stays a string.
    const forged = '"\\u0000int64:000000000000:12345678901234567890"';
    expect(typeof parse(`[${forged}, ${REF_ID}]`, METADATA_INT64_KEYS)).toBe('object');
    expect(parse(`[${forged}, ${REF_ID}]`)).toEqual(['\u0000int64:000000000000:12345678901234567890', 1796424756755170134n]);
  });

  it('reads ids at any depth and at the top, and keeps a `__proto__` key an own property', () => {
    expect(parse(REF_ID)).toBe(1796424756755170134n);
    expect(parse(`{"a":[{"b":[${REF_ID}]}]}`)).toEqual({ a: [{ b: [1796424756755170134n] }] });
    const odd = parse(`{"__proto__":${REF_ID},"x":{"__proto__":{"instanceID":${REF_ID}}}}`) as Record<string, unknown>;
    expect(Object.getPrototypeOf(odd)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(odd, '__proto__')?.value).toBe(1796424756755170134n);
    expect(Object.getPrototypeOf(odd.x)).toBe(Object.prototype);
    expect((Object.getOwnPropertyDescriptor(odd.x, '__proto__')?.value as { instanceID: unknown }).instanceID).toBe(1796424756755170134n);
  });

  it('still refuses bad JSON, including leading zeros on a long integer', () => {
    expect(() => parse('{"instanceID": 01796424756755170134}')).toThrow(SyntaxError);
    expect(() => parse('{"instanceID": ')).toThrow(SyntaxError);
  });

  it('writes a bigint as a bare JSON number, indented as asked', () => {
    const text = stringify({ instanceID: 1796424756755170134n, dataID: 0n, s: 'x' }, 2);
    expect(text).toBe(`{\n  "instanceID": ${REF_ID},\n  "dataID": 0,\n  "s": "x"\n}`);
    expect(parse(text)).toEqual({ instanceID: 1796424756755170134n, dataID: 0, s: 'x' });
    expect(stringify([1, 'a'])).toBe('[1,"a"]');
  });
});

describe('int64 values', () => {
  it('parse from decimal text exactly, within a Go int64', () => {
    expect(parseInt64(REF_ID)).toBe(1796424756755170134n);
    expect(parseInt64('9223372036854775807')).toBe(INT64_MAX);
    expect(parseInt64('9223372036854775808')).toBeNull();
    expect(parseInt64('12a')).toBeNull();
    expect(parseInt64('')).toBeNull();
  });

  it('come from a safe number or a bigint, never from a rounded double', () => {
    expect(toInt64(5)).toBe(5n);
    expect(toInt64(1796424756755170134n)).toBe(1796424756755170134n);
    expect(toInt64(1796424756755170000)).toBeNull();
    expect(toInt64(1.5)).toBeNull();
    expect(toInt64('5')).toBeNull();
  });

  it('the SDK reads the same keys as int64 as the server', () => {
    expect([...INT64_KEYS].sort()).toEqual([...METADATA_INT64_KEYS].sort());
  });
});
