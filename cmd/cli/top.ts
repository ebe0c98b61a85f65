/**
 * `edgesync top`: a live terminal view of a node's fleet (nodes, objects, transfers) from the
 * fleet API the web dashboard reads, redrawn as the server's event stream brings changes and
 * every second for the clocks. `--once` prints one frame, `--json` one snapshot; `q` or Ctrl-C
 * quits.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { FleetClient, type FleetDelivery, type FleetSnapshot } from '../../sdk/index.js';
import { resolveConnection, type Connection, type ConnectionFlags } from './connection.js';
import { describeError, EXIT, UsageError } from './exit-codes.js';
import { formatBytes } from './progress.js';

export const TOP_USAGE = `Usage: edgesync top [connection flags] [--limit N] [--once | --json]
  --url, --user, --password, --password-file, --org, --ca, --profile
              as every client command: flags, else EDGESYNC_URL/_USER/_PASSWORD/_ORG/_CA, else the
              profile "edgesync login" saved; the org defaults to the user name's prefix (org/user)
  --limit     nodes and objects per page, 1-1000 (default 50)
  --once      print one frame and exit
  --json      print one snapshot as JSON and exit
Keys: q or Ctrl-C quits.`;

/** Where top writes and reads; the process's own streams unless a test gives others. */
export interface TopIo {
  stdout: { write(s: string): unknown; columns?: number; rows?: number; isTTY?: boolean; on?(event: 'error', listener: () => void): unknown; off?(event: 'error', listener: () => void): unknown };
  stderr: { write(s: string): unknown };
  stdin?: NodeJS.ReadStream;
  env?: NodeJS.ProcessEnv;
  /** Ends the live view (tests); Ctrl-C and `q` do it otherwise. */
  signal?: AbortSignal;
}

interface TopOptions {
  connection: Connection;
  org: string;
  limit: number;
  mode: 'live' | 'once' | 'json';
}

/** null for --help. @throws UsageError */
async function parse(args: string[], env: NodeJS.ProcessEnv): Promise<TopOptions | null> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        'password-file': { type: 'string' },
        org: { type: 'string' },
        ca: { type: 'string' },
        profile: { type: 'string' },
        timeout: { type: 'string' },
        limit: { type: 'string' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return null;
  const limitText = values.limit ?? '50';
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= 1000)) throw new UsageError(`--limit must be an integer from 1 to 1000, not ${limitText}`);
  if (values.once === true && values.json === true) throw new UsageError('--once and --json exclude each other');
  const flags: ConnectionFlags = {};
  for (const [k, v] of [
    ['url', values.url],
    ['user', values.user],
    ['password', values.password],
    ['passwordFile', values['password-file']],
    ['org', values.org],
    ['ca', values.ca],
    ['profile', values.profile],
    ['timeout', values.timeout],
  ] as const) {
    if (v !== undefined) flags[k] = v;
  }
  const connection = await resolveConnection(flags, env);
  const { user } = connection;
  const org = connection.org ?? (user.includes('/') ? user.slice(0, user.indexOf('/')) : '');
  if (org === '') throw new UsageError('give --org (or EDGESYNC_ORG), or a user name of the form org/user');
  return { connection, org, limit, mode: values.json === true ? 'json' : values.once === true ? 'once' : 'live' };
}

// ---- one frame ------------------------------------------------------------------------------

/** A size for the table: formatBytes (as the progress bar writes it), `?` when unknown. */
function bytes(n: number | null): string {
  return n === null ? '?' : formatBytes(n);
}

function ago(iso: string | null, now: number): string {
  if (iso === null) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return s < 86400 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
}

function bar(d: FleetDelivery): string {
  if (d.progress === undefined) return '';
  const { bytes: done, total } = d.progress;
  if (total === null || total === 0) return `${bytes(done)} sent`;
  const frac = Math.min(1, done / total);
  const width = 12;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(frac * 100)}% ${bytes(done)}/${bytes(total)}`;
}

/** Left-aligned columns, each as wide as its widest cell, cut to the terminal's width. */
function table(header: string[], rows: string[][], columns: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd().slice(0, columns);
  return [line(header), ...rows.map(line)];
}

/** The text of one frame: a header, the nodes, then objects with a line per delivery. */
export function renderFrame(s: FleetSnapshot, opts: { url: string; columns: number; rows?: number; now?: number; live?: boolean }): string {
  const now = opts.now ?? Date.now();
  const cols = Math.max(40, opts.columns);
  const out: string[] = [];
  const health = { ok: 0, late: 0, silent: 0 };
  for (const n of s.nodes.items) health[n.health]++;
  out.push(`edgesync top  ${s.nodeType} ${opts.url}  org ${s.orgID}  ${new Date(now).toLocaleTimeString()}${opts.live === true ? '  (q: quit)' : ''}`.slice(0, cols));
  out.push('');
  out.push(`NODES ${s.nodes.total}: ${health.ok} ok, ${health.late} late, ${health.silent} silent${s.nodes.next !== null ? ` (first ${s.nodes.items.length})` : ''}`);
  out.push(
    ...table(
      ['TYPE', 'ID', 'KIND', 'COMM', 'LAST CONTACT', 'HEALTH'],
      s.nodes.items.map((n) => [n.destinationType, n.destinationID, n.kind, n.communication, ago(n.lastContact, now), n.health]),
      cols,
    ),
  );
  const counts: Record<string, number> = {};
  for (const o of s.objects.items) for (const [k, v] of Object.entries(o.deliveryCounts)) counts[k] = (counts[k] ?? 0) + v;
  const summary = Object.entries(counts)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  out.push('');
  out.push(`OBJECTS ${s.objects.total}${s.objects.next !== null ? ` (first ${s.objects.items.length})` : ''}${summary !== '' ? `  deliveries: ${summary}` : ''}`);
  const rows: string[][] = [];
  // Transfers under way first: they are what a live view is for.
  const order = (o: FleetSnapshot['objects']['items'][number]): number => (o.deliveries.some((d) => d.status === 'delivering' || d.progress !== undefined) ? 0 : 1);
  for (const o of [...s.objects.items].sort((a, b) => order(a) - order(b))) {
    const first = o.deliveries[0];
    rows.push([o.objectType, o.objectID, o.status, bytes(o.size), first !== undefined ? `${first.destinationType}/${first.destinationID}` : '-', first?.status ?? '', first !== undefined ? bar(first) : '']);
    for (const d of o.deliveries.slice(1)) rows.push(['', '', '', '', `${d.destinationType}/${d.destinationID}`, d.status, bar(d)]);
    if (o.deliveriesTotal > o.deliveries.length) rows.push(['', '', '', '', `+${o.deliveriesTotal - o.deliveries.length} more`, '', '']);
  }
  out.push(...table(['TYPE', 'ID', 'STATUS', 'SIZE', 'DESTINATION', 'DELIVERY', 'PROGRESS'], rows, cols));
  const lines = opts.rows !== undefined && opts.rows > 3 && out.length > opts.rows - 1 ? [...out.slice(0, opts.rows - 2), `… ${out.length - opts.rows + 2} more lines`] : out;
  return `${lines.join('\n')}\n`;
}

// ---- the command ----------------------------------------------------------------------------

/** Runs `edgesync top ARGS`; resolves to the exit code of the CLI (README, "Command line"). */
export async function runTop(args: string[], io: TopIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  let opts: TopOptions | null;
  let client: FleetClient | null = null;
  try {
    opts = await parse(args, io.env ?? process.env);
    if (opts === null) {
      io.stdout.write(`${TOP_USAGE}\n`);
      return EXIT.ok;
    }
    const c = opts.connection;
    client = new FleetClient({
      url: c.url,
      appKey: c.user,
      appSecret: c.password,
      ...(c.ca !== undefined ? { ca: await readFile(c.ca) } : {}),
      ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
    });
    if (opts.mode !== 'live') {
      const snap = await client.snapshot(opts.org, { limit: opts.limit });
      io.stdout.write(opts.mode === 'json' ? `${JSON.stringify(snap, null, 2)}\n` : renderFrame(snap, { url: c.url, columns: io.stdout.columns ?? 120 }));
      return EXIT.ok;
    }
    return await live(client, opts, io);
  } catch (err) {
    const { code, message } = describeError(err);
    io.stderr.write(`edgesync top: ${message}${code === EXIT.usage ? `\n${TOP_USAGE}` : ''}\n`);
    return code;
  } finally {
    client?.close();
  }
}

/** Redraws on each snapshot and each second, until q, Ctrl-C, the caller's signal or the server's end. */
async function live(client: FleetClient, opts: TopOptions, io: TopIo): Promise<number> {
  const ctl = new AbortController();
  const quit = (): void => ctl.abort();
  io.signal?.addEventListener('abort', quit);
  const stdin = io.stdin;
  const raw = stdin?.isTTY === true;
  const onKey = (key: Buffer | string): void => {
    const k = key.toString();
    if (k === 'q' || k === 'Q' || k === '\u0003') quit();
  };
  if (raw) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onKey);
  }
  process.on('SIGINT', quit);
  // A reader that went away (`edgesync top | head`) ends the view, as q does.
  io.stdout.on?.('error', quit);
  const tty = io.stdout.isTTY === true;
  let last: FleetSnapshot | null = null;
  const draw = (): void => {
    if (last === null) return;
    const frame = renderFrame(last, { url: opts.connection.url, columns: io.stdout.columns ?? 120, ...(io.stdout.rows !== undefined ? { rows: io.stdout.rows } : {}), live: true });
    // Home and clear on a terminal; a pipe gets frames one after another.
    io.stdout.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
  };
  const clock = setInterval(draw, 1000);
  try {
    while (!ctl.signal.aborted) {
      for await (const snap of client.events(opts.org, { limit: opts.limit, signal: ctl.signal })) {
        last = snap;
        draw();
      }
      // The server ended the stream (it stopped or restarts): try again shortly.
      if (!ctl.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
    return EXIT.ok;
  } catch (err) {
    if (ctl.signal.aborted) return EXIT.ok;
    throw err;
  } finally {
    clearInterval(clock);
    process.off('SIGINT', quit);
    io.stdout.off?.('error', quit);
    io.signal?.removeEventListener('abort', quit);
    if (raw) {
      stdin.off('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
}
