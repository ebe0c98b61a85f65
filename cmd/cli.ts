/**
 * The program behind the bin (`edgesync.ts`): `edgesync css|ess [flags]` runs a node;
 * `edgesync users …` manages the preset users file. Without a mode, NODE_TYPE decides, as in
 * the reference.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// The node's modules are loaded only to run a node or manage its users: a client command
// (`edgesync object …`) starts in a fraction of the time without them.
import type { Config } from '../lib/config/index.js';
import type { Logger } from '../lib/log/logger.js';
import type { RunningNode } from '../lib/node/node.js';
import { onRelayedSignal } from './runtime.js';
import { CLIENT_COMMANDS } from './cli/commands.js';

const USAGE = `Usage:
  edgesync object publish|get|download|list|status|destinations|delete|activate ...
  edgesync destination list|objects ...   edgesync acl list|get|add|remove ...
  edgesync org list|put|delete ...        edgesync health [--details]
  edgesync login --url URL --user U --password-file F [--org ORG] [--ca PEM] [--profile NAME]
  edgesync top                                        live view of nodes and transfers
      (client commands: "edgesync <command> --help" for each; connection from flags, else
       EDGESYNC_URL/_USER/_PASSWORD/_ORG/_CA, else the profile "edgesync login" saved)
  edgesync css [--config FILE] [--flag value ...]   run a Cloud Sync Service
  edgesync ess [--config FILE] [--flag value ...]   run an Edge Sync Service
  edgesync [--flag value ...]                        run the node NODE_TYPE names (CSS by default)
  edgesync users add APPKEY --type TYPE [--org ORG] [--username NAME] [--secret S] [--persistence-root-path DIR]
  edgesync users remove APPKEY [--persistence-root-path DIR]
  edgesync users list [--persistence-root-path DIR]
  edgesync --help | --version`;

/** The whole `--help`: commands, then every setting from the config table. */
async function help(): Promise<string> {
  const [{ flagsHelp }, { USER_TYPES }] = await Promise.all([import('../lib/config/index.js'), import('../lib/security/index.js')]);
  return `${USAGE}\n\nUser types: ${USER_TYPES.join(', ')}.\n\n${flagsHelp()}\nSee README.md, "Configuration".`;
}

/** The version in the package.json next to dist/ (this file is dist/cmd/cli.js). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** Exit code that asks a supervisor for a restart (POST /api/v1/shutdown?restart=true). */
const EXIT_RESTART = 75;

async function makeLogger(config: Config): Promise<Logger> {
  const [{ createLogger }, { tracingEnabled }] = await Promise.all([import('../lib/log/logger.js'), import('../lib/telemetry/tracing-enabled.js')]);
  const destination = config.logTraceDestination === 'file' ? join(config.logRootPath, `${config.logFileName}.log`) : 1;
  return createLogger({ level: config.logLevel, destination, traceIds: tracingEnabled(config) });
}

function banner(config: Config, node: RunningNode, layout: (root: string) => { users: string }): string {
  const lines = [`edgesync ${config.nodeType} is running`];
  for (const url of node.urls) {
    lines.push(`  API:       ${url}/api/v1`);
    if (url.startsWith('unix:')) continue;
    lines.push(`  Swagger:   ${url}/swagger`);
    lines.push(`  Dashboard: ${url}/dashboard/`);
    lines.push(`  Metrics:   ${url}/metrics (the sync admin's credentials)`);
  }
  if (node.metricsUrl !== null) lines.push(`  Metrics:   ${node.metricsUrl} (no credentials, METRICS_PORT)`);
  for (const url of node.brokerUrls) lines.push(`  MQTT:      ${url}`);
  lines.push(`  Data:      ${config.persistenceRootPath}`);
  lines.push(`  Store:     ${node.storage}`);
  if (node.createdAdmin !== null) {
    lines.push('  A sync-admin credential was created; it is shown only this once:');
    lines.push(`    user:     ${node.createdAdmin.appKey}`);
    lines.push(`    password: ${node.createdAdmin.secret}`);
    lines.push(`  (stored hashed in ${layout(config.persistenceRootPath).users})`);
  }
  return lines.join('\n');
}

type SignalSource = 'direct' | 'launcher';

/**
 * One request to stop can arrive twice, and must not count as the second signal that means
 * "exit now":
 * - through the launcher and directly (a supervisor that signals every process of a cgroup or
 *   group): a signal from one source within a second of the same one from the other source;
 * - directly, twice within 250 ms: `npm start` passes on to the node the Ctrl-C that the
 *   terminal sent to the node as well.
 * A person pressing Ctrl-C twice does so further apart, and that is two.
 */
function duplicateSignalFilter(now: () => number = Date.now): (signal: string, from: SignalSource) => boolean {
  const unpaired: { signal: string; from: SignalSource; at: number }[] = [];
  return (signal, from) => {
    const t = now();
    const i = unpaired.findIndex((u) => u.signal === signal && (u.from !== from ? t - u.at < 1000 : t - u.at < 250));
    if (i >= 0) {
      unpaired.splice(i, 1);
      return true;
    }
    unpaired.push({ signal, from, at: t });
    return false;
  };
}

async function runNode(mode: 'CSS' | 'ESS' | undefined, argv: string[]): Promise<number> {
  const { loadConfigReport } = await import('../lib/config/index.js');
  const { layout } = await import('../lib/node/node.js');
  const report = loadConfigReport({ argv, env: process.env, ...(mode ? { mode } : {}) });
  const config = report.config;
  const logger = await makeLogger(config);
  for (const ignored of report.ignored) logger.warn({ setting: ignored }, 'reference setting accepted but not used by edgesync');
  // Signals are handled from the start: one that arrives while the node starts stops it as
  // soon as it is up, rather than killing it half-way through opening its storage.
  let node: RunningNode | null = null;
  let stopRequested = false;
  let signals = 0;
  const duplicate = duplicateSignalFilter();
  const onSignal = (signal: string, from: SignalSource): void => {
    if (duplicate(signal, from)) return;
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      logger.flush();
      process.exit(1);
    }
    logger.info({ signal }, 'signal received, stopping gracefully');
    stopRequested = true;
    if (node !== null) void node.stop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM', 'direct'));
  process.on('SIGINT', () => onSignal('SIGINT', 'direct'));
  onRelayedSignal((signal) => onSignal(signal, 'launcher'));
  node = config.nodeType === 'CSS' ? await (await import('../lib/node/css.js')).startCss(config, logger) : await (await import('../lib/node/ess.js')).startEss(config, logger);
  process.stdout.write(`${banner(config, node, layout)}\n`);
  if (stopRequested) void node.stop();
  const { restart } = await node.stopped;
  logger.flush();
  return restart ? EXIT_RESTART : 0;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

/**
 * The user name when `--username` is not given: the app key, except for an edge node whose app
 * key is the reference's `org/destType/destID`, whose user name is then `destType/destID`.
 */
function defaultUsername(appKey: string, type: string): string {
  const parts = appKey.split('/');
  return type.toLowerCase() === 'edgenode' && parts.length === 3 && parts.every((p) => p !== '') ? `${parts[1]!}/${parts[2]!}` : appKey;
}

async function runUsers(args: string[]): Promise<number> {
  const root = option(args, '--persistence-root-path') ?? process.env.PERSISTENCE_ROOT_PATH ?? './data';
  const { layout } = await import('../lib/node/node.js');
  const { addUser, checkUserEntry, generateSecret, loadUsersFile, removeUser } = await import('../lib/security/index.js');
  const file = layout(root).users;
  const [verb, appKey] = args;
  if (verb === 'list') {
    const users = await loadUsersFile(file);
    for (const [key, c] of Object.entries(users.credentials)) process.stdout.write(`${key}\t${c.type}\t${c.orgID}\t${c.username}\n`);
    return 0;
  }
  if (appKey === undefined) throw new Error(`users ${verb ?? ''}: an APPKEY is required\n${USAGE}`);
  if (verb === 'remove') {
    const removed = await removeUser(file, appKey);
    process.stdout.write(removed ? `removed ${appKey}\n` : `${appKey} was not in ${file}\n`);
    return removed ? 0 : 1;
  }
  if (verb === 'add') {
    const type = option(args, '--type') ?? '';
    const orgID = option(args, '--org') ?? '';
    const username = option(args, '--username') ?? defaultUsername(appKey, type);
    // Judged by the server's own schema before a secret is made or anything written: an entry
    // this accepts is one the node loads, and one the node would refuse gets its message here.
    checkUserEntry(file, { appKey, orgID, username, type });
    const given = option(args, '--secret');
    const secret = given ?? generateSecret();
    await addUser(file, { appKey, secret, type, orgID, username });
    process.stdout.write(given === undefined ? `added ${appKey}; its secret (shown once): ${secret}\n` : `added ${appKey}\n`);
    return 0;
  }
  throw new Error(`unknown users command "${verb ?? ''}"\n${USAGE}`);
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  // Client commands parse their own flags and help (commander), and load only what they use.
  if (first !== undefined && CLIENT_COMMANDS.includes(first)) return (await import('./cli/program.js')).runClient(argv);
  // `edgesync css --help` too: a help flag anywhere asks for the usage, never for a node.
  if (first === 'help' || argv.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${await help()}\n`);
    return 0;
  }
  if (first === 'version' || first === '--version' || first === '-v') {
    process.stdout.write(`edgesync ${version()}\n`);
    return 0;
  }
  if (first === 'users') return runUsers(rest);
  if (first === 'css') return runNode('CSS', rest);
  if (first === 'ess') return runNode('ESS', rest);
  return runNode(undefined, argv);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    const { ConfigError } = await import('../lib/config/index.js');
    if (err instanceof ConfigError) process.stderr.write(`edgesync: ${err.message}\n`);
    else process.stderr.write(`edgesync: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
