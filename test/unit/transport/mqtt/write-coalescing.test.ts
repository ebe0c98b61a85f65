/**
 * Packets written to a socket in one turn of the event loop leave in one write
 * (lib/transport/mqtt/write-coalescing.ts), and all of them arrive, in order.
 */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { coalesceWrites, flushCorked } from '../../../../lib/transport/mqtt/write-coalescing.js';

describe('coalesceWrites', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const c of closers.splice(0)) c();
  });

  async function pair(): Promise<{ client: Socket; received: () => string }> {
    let text = '';
    const server = createServer((s) => s.on('data', (d: Buffer) => (text += d.toString())));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    closers.push(() => {
      client.destroy();
      server.close();
    });
    return { client, received: () => text };
  }

  it('sends what one turn writes in one system write, in order', async () => {
    const { client, received } = await pair();
    let writes = 0;
    // Counted where the socket hands its buffered data to the system.
    const writev = client._writev?.bind(client);
    const write = client._write.bind(client);
    client._writev = (chunks, cb) => {
      writes++;
      writev!(chunks, cb);
    };
    client._write = (chunk, enc, cb) => {
      writes++;
      write(chunk, enc, cb);
    };
    const flush = coalesceWrites(client);
    for (const part of ['a', 'b', 'c']) {
      flush();
      client.write(part);
    }
    await new Promise((r) => setImmediate(r));
    expect(writes).toBe(1);
    flush();
    client.write('d');
    const deadline = Date.now() + 2000;
    while (received() !== 'abcd' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(received()).toBe('abcd');
    expect(writes).toBe(2);
  });

  it('sends what the turn holds back before the socket is destroyed, when flushed', async () => {
    const { client, received } = await pair();
    const flush = coalesceWrites(client);
    flush();
    client.write('last words');
    flushCorked(client);
    client.destroy();
    const deadline = Date.now() + 2000;
    while (received() !== 'last words' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(received()).toBe('last words');
  });
});
