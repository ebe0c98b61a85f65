/**
 * A test double of an app's webhook: a real HTTP server on loopback that records every call
 * and answers with scripted statuses (or never answers, for timeouts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HookCall {
  method: string;
  path: string;
  contentType: string | undefined;
  /** Our `X-Edgesync-Event` header: `available` or `deleted`. */
  event: string | undefined;
  body: string;
  /** The body parsed (the object's metadata). */
  meta: Record<string, unknown>;
  at: number;
}

export interface HookDouble {
  /** `http://127.0.0.1:<port>/hook`; other paths reach the same server. */
  url: string;
  calls: HookCall[];
  /** Answers to the next calls, in order: a status, or 'hang' (no answer). Then 200. */
  script(...answers: (number | 'hang')[]): void;
  close(): Promise<void>;
}

export async function startHookDouble(): Promise<HookDouble> {
  const calls: HookCall[] = [];
  const answers: (number | 'hang')[] = [];
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let meta: Record<string, unknown> = {};
      try {
        meta = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // Recorded as is; the test looks at `body`.
      }
      calls.push({ method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], event: req.headers['x-edgesync-event'] as string | undefined, body, meta, at: Date.now() });
      const answer = answers.shift() ?? 200;
      if (answer === 'hang') hanging.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    calls,
    script: (...a) => void answers.push(...a),
    close: () =>
      new Promise<void>((r) => {
        for (const res of hanging) res.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
