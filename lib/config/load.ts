/**
 * Loads the configuration: defaults < config file < environment < flags (< the `css|ess`
 * subcommand for the node type), validated in one pass so that every bad key is reported at once.
 */
import { join, resolve } from 'node:path';
import { configSchema, fieldSchemas, type Config, type ConfigKey, type NodeType } from './schema.js';
import {
  describeOrigin,
  fromEnv,
  fromFile,
  fromFlags,
  keyNames,
  type ConfigIssue,
  type FileFormat,
  type Origin,
  type RawConfig,
} from './sources.js';

/** The configuration is invalid; `issues` lists every problem, the message has one per line. */
export class ConfigError extends Error {
  /** Every problem found, in the order: sources (unknown keys, syntax), then keys, then cross-key rules. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((i) => `  - ${i.key}${i.where !== undefined ? ` (${i.where})` : ''}: ${i.message}`);
    super(`invalid configuration (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface LoadConfigOptions {
  /** Arguments after the subcommand, e.g. `process.argv.slice(3)`. */
  readonly argv: readonly string[];
  /** Usually `process.env`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** From `edgesync css|ess`; overrides NODE_TYPE and `--node-type`. */
  readonly mode?: NodeType;
  /** Base of relative paths (config file, persistenceRootPath, logRootPath); default `process.cwd()`. */
  readonly cwd?: string;
}

/** A loaded configuration and how it came to be, for the startup log. */
export interface ConfigReport {
  readonly config: Config;
  /** Where each key that was set came from; a key absent here has its default. */
  readonly origins: Partial<Record<ConfigKey, Origin>>;
  /** Reference settings that were set but that edgesync does not use: worth a warning each. */
  readonly ignored: readonly Origin[];
  /** The config file read, absolute. */
  readonly configFile?: string;
}

/**
 * Loads and validates the configuration.
 * @throws ConfigError listing every invalid, unknown or missing key.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  return loadConfigReport(options).config;
}

/**
 * As `loadConfig`, and also tells where each value came from and which reference settings were
 * ignored, so the caller can log them.
 * @throws ConfigError listing every invalid, unknown or missing key.
 */
export function loadConfigReport(options: LoadConfigOptions): ConfigReport {
  const cwd = options.cwd ?? process.cwd();
  const flags = fromFlags(options.argv);
  const configFile = flags.configFile === undefined ? undefined : resolve(cwd, flags.configFile.path);
  const file = configFile === undefined ? undefined : fromFile(configFile);
  const env = fromEnv(options.env);

  const raw: RawConfig = { ...file?.values, ...env.values, ...flags.values };
  const issues: ConfigIssue[] = [...(file?.issues ?? []), ...env.issues, ...flags.issues];

  if (options.mode !== undefined) {
    // The subcommand wins, but a NODE_TYPE=foo next to it is still garbage worth reporting.
    const given = raw.nodeType;
    if (given !== undefined && !fieldSchemas.nodeType.safeParse(given.value).success) {
      issues.push({ key: given.origin.key, where: describeOrigin(given.origin), message: `must be CSS or ESS; got ${JSON.stringify(given.value)}` });
    }
    raw.nodeType = { value: options.mode, origin: { source: 'subcommand', key: `edgesync ${options.mode.toLowerCase()}` } };
  }

  const origins: Partial<Record<ConfigKey, Origin>> = {};
  const input: Partial<Record<ConfigKey, unknown>> = {};
  for (const [key, value] of Object.entries(raw) as [ConfigKey, RawConfig[ConfigKey]][]) {
    if (value === undefined) continue;
    origins[key] = value.origin;
    input[key] = value.value;
  }

  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    for (const i of parsed.error.issues) issues.push(toIssue(i.path[0], i.message, origins, file?.format));
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);

  const report = { config: resolvePaths(parsed.data, cwd), origins, ignored: [...(file?.ignored ?? []), ...env.ignored] };
  return configFile === undefined ? report : { ...report, configFile };
}

/**
 * Names a key the way its user wrote it; a key nobody set (a missing required value) is named
 * in the form the user is evidently using (the file's, else the reference's env name), with the
 * other spellings as a hint.
 */
function toIssue(path: PropertyKey | undefined, message: string, origins: Partial<Record<ConfigKey, Origin>>, format: FileFormat | undefined): ConfigIssue {
  const key = typeof path === 'string' ? (path as ConfigKey) : undefined;
  if (key === undefined) return { key: 'config', message };
  const origin = origins[key];
  if (origin !== undefined) return { key: origin.key, message, where: describeOrigin(origin) };
  const names = keyNames(key);
  const env = names.env[0] ?? key;
  const fileKey = format === 'conf' ? (names.props[0] ?? key) : key;
  const written = format === undefined ? env : fileKey;
  return { key: written, message: `${message} (set ${env}, --${names.flag} or ${fileKey} in the config file)` };
}

/** PEM text starts with a BEGIN line; anything else in these keys is a file path. */
const isPem = (v: string): boolean => v.includes('-----BEGIN');

/**
 * Makes every path absolute. persistenceRootPath and logRootPath are relative to the working
 * directory; certificate files and a unix socket are relative to persistenceRootPath, as in the
 * reference. [ref sync.conf ServerCertificate, ListeningAddress]
 */
function resolvePaths(c: Config, cwd: string): Config {
  const root = resolve(cwd, c.persistenceRootPath);
  const underRoot = (v: string): string => (v === '' || isPem(v) ? v : resolve(root, v));
  const unix = c.listeningType === 'unix' || c.listeningType === 'secure-unix';
  return {
    ...c,
    persistenceRootPath: root,
    logRootPath: c.logRootPath === '' ? join(root, 'log') : resolve(cwd, c.logRootPath),
    listeningAddress: unix ? resolve(root, c.listeningAddress) : c.listeningAddress,
    serverCertificate: underRoot(c.serverCertificate),
    serverKey: underRoot(c.serverKey),
    httpCSSCACertificate: underRoot(c.httpCSSCACertificate),
    externalAuthCACertificate: underRoot(c.externalAuthCACertificate),
    mongoCACertificate: underRoot(c.mongoCACertificate),
    mqttCACertificate: underRoot(c.mqttCACertificate),
    mqttSSLCert: underRoot(c.mqttSSLCert),
    mqttSSLKey: underRoot(c.mqttSSLKey),
  };
}
