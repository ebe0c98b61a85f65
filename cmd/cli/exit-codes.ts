/**
 * The exit codes scripts may rely on (README, "Command line"), and the one mapping from an
 * error to its code and message.
 */
import { NetworkError, SyncServiceError } from '../../sdk/index.js';

export const EXIT = {
  ok: 0,
  /** Anything not listed below: a local file that cannot be read, a failed size check… */
  failure: 1,
  /** Bad command line: unknown command or option, missing argument, missing credentials. */
  usage: 2,
  /** The object, destination or organization does not exist (404, or an empty answer where one was expected). */
  notFound: 3,
  /** The server refused the credentials or the permission (403; 401 from a proxy). */
  auth: 4,
  /** The server refused the request (other 4xx: bad request, conflict). */
  refused: 5,
  /** No usable answer: connection refused, timeout, TLS failure, 5xx, 429. */
  unavailable: 6,
  /** SIGINT (Ctrl-C), as shells report it (128 + 2). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI itself detects, with the code it exits with. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failure,
  ) {
    super(message);
  }
}

/** A command line that cannot run: exit code 2, with a hint to `--help`. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** Something asked for that is not there: exit code 3. */
export class NotFoundCliError extends CliError {
  override name = 'NotFoundCliError';
  constructor(message: string) {
    super(message, EXIT.notFound);
  }
}

/** The exit code for a server status (0: no response at all). */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 0 || status >= 500 || status === 429) return EXIT.unavailable;
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status >= 400) return EXIT.refused;
  return EXIT.failure;
}

/** The exit code and the one-line message (without the `edgesync: ` prefix) of any error. */
export function describeError(err: unknown): { code: ExitCode; message: string } {
  if (err instanceof CliError) return { code: err.exitCode, message: err.message };
  if (err instanceof NetworkError) {
    const cause = err.cause instanceof Error ? err.cause.message : String(err.cause);
    return { code: EXIT.unavailable, message: `cannot reach the sync service: ${cause}` };
  }
  if (err instanceof SyncServiceError) {
    const body = err.body.trim();
    const what = err.status === 403 ? 'refused (check the user, password and org)' : `failed with status ${err.status}`;
    return { code: exitCodeForStatus(err.status), message: `${err.method} ${err.path} ${what}${body === '' ? '' : `: ${body}`}` };
  }
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT') return { code: EXIT.failure, message: err.message };
  return { code: EXIT.failure, message: err instanceof Error ? err.message : String(err) };
}
