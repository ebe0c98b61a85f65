/**
 * `dataSent` told as a data answer's bytes go, every PROGRESS_STEP and at the end, rather than
 * once when it is over: an ESS fetches an object in one range, and the live transfer view and
 * the byte counters would otherwise jump from 0 to done.
 */
import type { Readable } from 'node:stream';
import type { DeliveryRef, PeerRef, SyncEvents } from '../../sync/sync-events.js';

/** How many bytes of a data answer go between two `dataSent` events. */
const PROGRESS_STEP = 1024 * 1024;

/**
 * Sends `source` with `send` (which pipes it to the response) and tells `events.dataSent` of the
 * bytes taken from it, from `start`; bytes of an answer cut short are told too.
 */
export async function sendTellingProgress(
  source: Readable,
  send: () => Promise<void>,
  events: SyncEvents | undefined,
  about: { obj: DeliveryRef; peer: PeerRef; start: number; total: number | null },
): Promise<void> {
  if (events?.dataSent === undefined) return send();
  let told = about.start;
  let read = about.start;
  const tell = (): void => {
    if (read > told) events.dataSent?.(about.obj, about.peer, 'http', read - told, told, about.total);
    told = read;
  };
  // After send() has piped the source: a 'data' listener added first would start the flow early.
  const sending = send();
  source.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read - told >= PROGRESS_STEP) tell();
  });
  try {
    await sending;
  } finally {
    tell();
  }
}
