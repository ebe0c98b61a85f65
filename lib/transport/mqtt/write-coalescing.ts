/**
 * Packets written to a socket in one turn of the event loop leave in one write: with Nagle off
 * (setNoDelay), each packet would otherwise be a system call and a TCP segment of its own, and
 * many small ones (PUBACKs, control messages answering a batch of commits) cost more CPU in
 * those calls than in everything else the message needs. Unlike Nagle, nothing waits for the
 * peer: the socket is uncorked once the current turn's I/O callbacks have run.
 */
import type { Writable } from 'node:stream';

/**
 * @returns the function to call before each write: the first of a turn corks the stream until
 *   the turn ends.
 */
export function coalesceWrites(stream: Writable): () => void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  return () => {
    if (corked || stream.destroyed) return;
    corked = true;
    stream.cork();
    setImmediate(uncork);
  };
}

/**
 * Sends what a coalescing turn holds back, now: before the socket is destroyed (a refused
 * login's CONNACK is written just before the connection is cut), which would drop it.
 */
export function flushCorked(stream: Writable): void {
  while (stream.writableCorked > 0) stream.uncork();
}
