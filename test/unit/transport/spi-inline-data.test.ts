/**
 * Inline data in poll answers (spi-inline-data.ts): the parsing and budget rules, and the ESS
 * agent over HTTP against a stand-in CSS on loopback whose poll answer carries an object's data.
 * The ESS side is real: SqliteStore, FileBlobStore, ObjectService, Receiver.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { emptyMetaData, stringifyJson } from '../../../lib/model/index.js';
import type { StoredObject } from '../../../lib/store/index.js';
import { INLINE_BUDGET_BYTES, InlineBudget, MAX_INLINE_BYTES, parseInlineData, pollInlineLimit } from '../../../lib/transport/http/spi-inline-data.js';
import { startStandInCss } from '../../helpers/stand-in-css.js';
import { answerAcks, standInEss } from '../../helpers/stand-in-ess.js';
import { modelForEdge } from '../../helpers/sync-fixtures.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const withQuery = (query: Record<string, unknown>): Request => ({ query }) as unknown as Request;

describe('the inline data rules', () => {
  it('reads ?inline=N as bytes, capped at the largest object data a poll entry carries', () => {
    expect(pollInlineLimit(withQuery({}))).toBe(0);
    expect(pollInlineLimit(withQuery({ inline: '1024' }))).toBe(1024);
    expect(pollInlineLimit(withQuery({ inline: String(10 * MAX_INLINE_BYTES) }))).toBe(MAX_INLINE_BYTES);
  });

  it('refuses a limit that is not a number of bytes with a 400 naming the parameter', () => {
    for (const bad of ['-1', 'lots', '1e3', ['1', '2']]) {
      expect(() => pollInlineLimit(withQuery({ inline: bad }))).toThrow(expect.objectContaining({ status: 400, message: expect.stringContaining('inline parameter') }));
    }
  });

  const stored = (size: number, m: Partial<StoredObject['meta']> = {}): StoredObject =>
    ({ meta: { ...emptyMetaData(), objectSize: size, ...m }, blobId: 'b', dataSha256: 'a'.repeat(64) }) as StoredObject;

  it('inlines objects up to the limit, while the answer has room, and never metaOnly or noData ones', () => {
    const budget = new InlineBudget(MAX_INLINE_BYTES);
    expect(budget.take(stored(MAX_INLINE_BYTES + 1))).toBe(false);
    expect(budget.take(stored(10, { metaOnly: true }))).toBe(false);
    expect(budget.take(stored(10, { noData: true }))).toBe(false);
    let taken = 0;
    while (budget.take(stored(MAX_INLINE_BYTES))) taken++;
    expect(taken).toBe(INLINE_BUDGET_BYTES / MAX_INLINE_BYTES);
    expect(new InlineBudget(0).take(stored(1))).toBe(false);
  });

  it('takes a poll entry\'s data only with a well-formed digest', () => {
    expect(parseInlineData({ Data: Buffer.from('hi').toString('base64'), DataSHA256: sha(Buffer.from('hi')) })).toEqual({ data: Buffer.from('hi'), sha256: sha(Buffer.from('hi')) });
    expect(parseInlineData({ Data: 'aGk=' })).toBeNull();
    expect(parseInlineData({ Data: 'aGk=', DataSHA256: 'not-a-digest' })).toBeNull();
  });
});

describe('an ESS given data in its poll answer', () => {
  const ess = standInEss('edgesync-inline-');
  const DATA = Buffer.from('configuration of the edge node, small enough to travel inline');
  let requests: string[];
  let acks: string[];

  /** A CSS whose first poll answer announces model/cfg with `digest` stated for its inline data. */
  async function startCss(digest: string): Promise<{ server: http.Server; url: string }> {
    let polled = false;
    return startStandInCss((req, body, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.url?.startsWith('/spi/v1/objects/?') === true && !polled) {
        polled = true;
        const meta = { ...modelForEdge('cfg', { objectSize: DATA.length }), destinationID: 'n1' };
        res.writeHead(200, { 'content-type': 'application/json' }).end(stringifyJson([{ Type: 'update', MetaData: meta, Data: DATA.toString('base64'), DataSHA256: digest }]));
        return true;
      }
      if (req.url?.endsWith('/data') === true) {
        res.writeHead(200, { 'content-length': DATA.length, 'x-edgesync-data-sha256': sha(DATA) }).end(DATA);
        return true;
      }
      return answerAcks(req, body, res, acks);
    });
  }

  beforeEach(() => {
    requests = [];
    acks = [];
  });

  it('asks for it, keeps it without a data request, and answers `received` alone', async () => {
    ess.start(await startCss(sha(DATA)), { inlineDataLimit: MAX_INLINE_BYTES });
    expect((await ess.completed('model', 'cfg')).equals(DATA)).toBe(true);
    const deadline = Date.now() + 10_000;
    while (!acks.includes('received') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(requests.find((l) => l.startsWith('GET /spi/v1/objects/?'))).toMatch(/[?&]inline=65536(&|$)/);
    expect(requests.filter((l) => l.endsWith('/data'))).toEqual([]);
    expect(acks).toEqual(['received']);
  });

  it('fetches the data with a GET instead when the stated digest does not match', async () => {
    ess.start(await startCss('0'.repeat(64)), { inlineDataLimit: MAX_INLINE_BYTES });
    expect((await ess.completed('model', 'cfg')).equals(DATA)).toBe(true);
    expect(requests.filter((l) => l.endsWith('/data'))).toHaveLength(1);
    expect(requests.some((l) => l.endsWith('/feedback'))).toBe(true);
  });
});
