import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { AnswerClosedError, corkedPipe } from '../../../lib/transport/http/corked-pipe.js';

const KiB = 1024;

/** A loopback server whose every answer is `answer(res)`; resolves to its URL. */
async function serve(answer: (res: http.ServerResponse) => void): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** The whole body of a GET. */
function body(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('corkedPipe', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('sends every byte in order, ends the answer and resolves', async () => {
    const chunks = Array.from({ length: 50 }, () => randomBytes(64 * KiB));
    let piped!: Promise<void>;
    const { url, server } = await serve((res) => {
      res.writeHead(200, { 'content-length': String(50 * 64 * KiB) });
      piped = corkedPipe(Readable.from(chunks), res, 1024 * KiB);
    });
    servers.push(server);
    expect((await body(url)).equals(Buffer.concat(chunks))).toBe(true);
    await expect(piped).resolves.toBeUndefined();
  });

  it('stops taking from the source while a window of bytes waits for a slow client, and goes on once they are sent', async () => {
    const window = 256 * KiB;
    const total = 64 * 1024 * KiB;
    let sent = 0;
    let mostWaiting = 0;
    let res!: http.ServerResponse;
    const source = new Readable({
      read() {
        mostWaiting = Math.max(mostWaiting, res.writableLength);
        if (sent >= total) return void this.push(null);
        sent += 64 * KiB;
        this.push(Buffer.alloc(64 * KiB, sent % 251));
      },
    });
    let piped!: Promise<void>;
    const { url, server } = await serve((r) => {
      res = r;
      r.writeHead(200, { 'content-length': String(total) });
      piped = corkedPipe(source, r, window);
    });
    servers.push(server);
    const received = await new Promise<number>((resolve, reject) => {
      http.get(url, (r) => {
        let n = 0;
        // A slow client: the socket fills, and the answer must stop taking from the source.
        r.pause();
        setTimeout(() => r.resume(), 200);
        r.on('data', (c: Buffer) => (n += c.length));
        r.on('end', () => resolve(n));
        r.on('error', reject);
      });
    });
    await piped;
    expect(received).toBe(total);
    expect(mostWaiting).toBeGreaterThan(0);
    expect(mostWaiting).toBeLessThan(window + 2 * 64 * KiB);
  });

  it('rejects with AnswerClosedError, and destroys the source, when the client goes away', async () => {
    const source = new Readable({
      read() {
        this.push(Buffer.alloc(64 * KiB, 1));
      },
    });
    let piped!: Promise<void>;
    const { url, server } = await serve((res) => {
      res.writeHead(200);
      piped = corkedPipe(source, res, 1024 * KiB);
    });
    servers.push(server);
    await new Promise<void>((resolve) => {
      const req = http.get(url, (res) => res.once('data', () => req.destroy()));
      req.on('error', () => undefined);
      req.on('close', () => resolve());
    });
    await expect(piped).rejects.toBeInstanceOf(AnswerClosedError);
    expect(source.destroyed).toBe(true);
  });

  it("rejects with the source's error, leaving the answer to the caller", async () => {
    let n = 0;
    const source = new Readable({
      read() {
        if (++n > 3) this.destroy(new Error('the upload failed'));
        else this.push(Buffer.alloc(64 * KiB, 2));
      },
    });
    let piped!: Promise<void>;
    const { url, server } = await serve((res) => {
      res.writeHead(200, { 'content-length': String(1024 * KiB) });
      piped = corkedPipe(source, res, 1024 * KiB);
      piped.catch(() => res.destroy());
    });
    servers.push(server);
    await expect(body(url)).rejects.toThrow();
    await expect(piped).rejects.toThrow('the upload failed');
  });
});
