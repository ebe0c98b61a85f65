/**
 * What every client command gets: its output, its connection (resolved only when the command
 * needs it), the cancellation of Ctrl-C, and the TTY test of the progress bar.
 */
import type { Command } from 'commander';
import type { SyncServiceClient } from '../../sdk/index.js';
import { clientFor, resolveConnection, type Connection, type ConnectionFlags } from './connection.js';
import { UsageError } from './exit-codes.js';
import { createOutput, type Output } from './output.js';
import { showsProgress } from './progress.js';

/** The program-wide options (see program.ts). */
export interface GlobalFlags extends ConnectionFlags {
  json?: boolean;
  quiet?: boolean;
}

export interface CommandContext {
  readonly out: Output;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted by Ctrl-C. */
  readonly signal: AbortSignal;
  /** Whether transfers show a progress bar. */
  readonly progress: boolean;
  readonly flags: GlobalFlags;
  connection(): Promise<Connection>;
  /** A client of the node; closed by the runner after the command. */
  client(): Promise<SyncServiceClient>;
  /** The client, after checking that an org was given (a CSS-only command). */
  cssClient(what: string): Promise<SyncServiceClient>;
}

/** What the program runs in; tests give their own. */
export interface Runtime {
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  stderrIsTTY: boolean;
}

export function createContext(command: Command, runtime: Runtime): { ctx: CommandContext; close(): void } {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const json = flags.json === true;
  const quiet = flags.quiet === true;
  let connection: Promise<Connection> | undefined;
  let client: Promise<SyncServiceClient> | undefined;
  const ctx: CommandContext = {
    out: createOutput({ json, quiet }),
    env: runtime.env,
    signal: runtime.signal,
    progress: showsProgress({ isTTY: runtime.stderrIsTTY, json, quiet }),
    flags,
    connection: () => (connection ??= resolveConnection(flags, runtime.env)),
    client: () => (client ??= ctx.connection().then(clientFor)),
    async cssClient(what) {
      const c = await ctx.connection();
      if (c.org === undefined) throw new UsageError(`${what} is a CSS command and needs an org: use --org or EDGESYNC_ORG`);
      return ctx.client();
    },
  };
  return {
    ctx,
    close() {
      void client?.then((c) => c.close(), () => undefined);
    },
  };
}
