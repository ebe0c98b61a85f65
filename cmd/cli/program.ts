/**
 * The client commands (`edgesync object|destination|acl|org|health|login|top …`) on commander:
 * global connection and output options, one module per command group, and the one place where
 * an error becomes a message and an exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerAcl } from './acl.js';
import { createContext, type CommandContext, type Runtime } from './context.js';
import { ENV_NAMES } from './connection.js';
import { registerDestination } from './destination.js';
import { describeError, EXIT, UsageError } from './exit-codes.js';
import { registerHealth, registerLogin } from './health.js';
import { registerObject } from './object.js';
import { registerOrg } from './org.js';

/**
 * Wraps a command's body as a commander action: the body gets its context, its operands and its
 * command (for `opts()`); the context's client is closed afterwards.
 */
export type Act = (fn: (ctx: CommandContext, operands: string[], command: Command) => Promise<void>) => (...args: unknown[]) => Promise<void>;

const PRECEDENCE = `
Connection: each setting comes from its flag, else its environment variable, else the profile:
the one named (--profile NAME, ${ENV_NAMES.profile}), or without a URL from a flag or
${ENV_NAMES.url}, the one the last "edgesync login" saved.
  --url ${ENV_NAMES.url}   --user ${ENV_NAMES.user}   --password ${ENV_NAMES.password}
  --password-file ${ENV_NAMES.passwordFile}   --org ${ENV_NAMES.org}   --ca ${ENV_NAMES.ca}
Without --org the node is taken for an ESS.

Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 credentials or permission refused,
5 request refused (other 4xx), 6 service unavailable (5xx, 429, no connection), 130 interrupted.`;

export function buildProgram(runtime: Runtime): Command {
  const program = new Command('edgesync');
  program
    .description('Client of an edgesync (or edge-sync-service) CSS or ESS')
    .addOption(new Option('--url <url>', `base URL of the node, e.g. http://127.0.0.1:8080 [${ENV_NAMES.url}]`))
    .addOption(new Option('--user <name>', `user name (app key) [${ENV_NAMES.user}]`))
    .addOption(new Option('--password <password>', `password (visible in ps: prefer --password-file) [${ENV_NAMES.password}]`))
    .addOption(new Option('--password-file <file>', `file holding the password [${ENV_NAMES.passwordFile}]`))
    .addOption(new Option('--org <org>', `organization, for a CSS [${ENV_NAMES.org}]`))
    .addOption(new Option('--ca <file>', `PEM certificate to trust, e.g. an ESS's self-signed one [${ENV_NAMES.ca}]`))
    .addOption(new Option('--profile <name>', `profile saved by edgesync login [${ENV_NAMES.profile}]`))
    .addOption(new Option('--timeout <seconds>', 'give up on a connection idle that long'))
    .option('--json', 'print JSON for scripts (exact 64-bit ids), no progress bar')
    .option('-q, --quiet', 'no progress bar, no notes on stderr')
    .addHelpText('after', PRECEDENCE)
    // A command's --help also lists the connection options it takes (set before the commands: they inherit it).
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError()
    .exitOverride();

  const act: Act =
    (fn) =>
    async (...args) => {
      const command = args[args.length - 1] as Command;
      const context = createContext(command, runtime);
      try {
        await fn(context.ctx, command.args, command);
      } finally {
        context.close();
      }
    };

  registerObject(program, act);
  registerDestination(program, act);
  registerAcl(program, act);
  registerOrg(program, act);
  registerHealth(program, act);
  registerLogin(program, act);
  program
    .command('top')
    .description('live view of nodes and transfers (see edgesync top --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments();
  // Every command and subcommand reports errors through the exit code below, not process.exit.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

/** The contract of `cmd/cli/top.ts`, loaded only when `top` runs. */
interface TopModule {
  runTop(args: string[]): Promise<number>;
}

async function runTop(args: string[]): Promise<number> {
  // A computed specifier: top.ts is built by the dashboard work and loaded only for `top`.
  const specifier = './top.js';
  let module: TopModule;
  try {
    module = (await import(specifier)) as TopModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    process.stderr.write('edgesync: top is not part of this build\n');
    return EXIT.failure;
  }
  return module.runTop(args);
}

/** Runs a client command line (`argv` without node and script); resolves with the exit code. */
export async function runClient(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === 'top') return runTop(argv.slice(1));
  const controller = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    // A transfer stops at once and saves where it got to; a request that does not watch the
    // signal (a listing) gets a moment, then the process ends anyway.
    controller.abort(new Error('interrupted'));
    setTimeout(() => {
      process.stderr.write('edgesync: interrupted\n');
      process.exit(EXIT.interrupted);
    }, 2000).unref();
  };
  process.on('SIGINT', onSigint);
  // `edgesync object list | head`: a reader that stops early is not a failure.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
  const program = buildProgram({ env, signal: controller.signal, stderrIsTTY: process.stderr.isTTY });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return interrupted ? EXIT.interrupted : EXIT.ok;
  } catch (err) {
    if (interrupted) {
      process.stderr.write('edgesync: interrupted\n');
      return EXIT.interrupted;
    }
    if (err instanceof CommanderError) {
      // Commander has printed the help, the version, or its error message.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { code, message } = describeError(err);
    process.stderr.write(`edgesync: ${message}${err instanceof UsageError ? ' (see --help)' : ''}\n`);
    return code;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
