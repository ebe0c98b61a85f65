/**
 * The three places a setting can come from: a config file, the environment (the reference's
 * variable names), the command line. Each returns raw values, not yet validated, tagged with the
 * key exactly as the user wrote it, so that the schema's complaints can name it.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { BOOLEAN_KEYS, type ConfigKey } from './schema.js';

export type SourceKind = 'file' | 'env' | 'flag' | 'subcommand';

/** Where a value came from. */
export interface Origin {
  readonly source: SourceKind;
  /** The key as written: `orgID` / `OrgID` (file), `ORG_ID` (env), `--org-id` (flag). */
  readonly key: string;
  /** The config file, with `:line` for properties files. */
  readonly file?: string;
}

/** One unvalidated value and its origin. */
export interface RawValue {
  readonly value: unknown;
  readonly origin: Origin;
}

export type RawConfig = Partial<Record<ConfigKey, RawValue>>;

/** One problem, named as the user wrote it. */
export interface ConfigIssue {
  /** `UNSECURE_LISTENING_PORT`, `--org-id`, `orgID`, ... */
  readonly key: string;
  readonly message: string;
  /** `environment`, `command line`, `config file <path>`; absent for a key nobody set. */
  readonly where?: string;
}

export interface SourceResult {
  readonly values: RawConfig;
  readonly issues: readonly ConfigIssue[];
  /** Reference settings that edgesync accepts but does not use (worth a warning). */
  readonly ignored: readonly Origin[];
}

export type FileFormat = 'yaml' | 'json' | 'conf';

export interface FileResult extends SourceResult {
  readonly format: FileFormat | undefined;
}

export interface FlagsResult extends SourceResult {
  /** `--config path` / `-c path`, as written (not resolved). */
  readonly configFile?: { readonly path: string; readonly origin: Origin };
}

/** How one field is spelled in each source. */
export interface KeyNames {
  readonly key: ConfigKey;
  /** Environment names; the first is the reference's, later ones are aliases. */
  readonly env: readonly string[];
  /** Properties-file (`sync.conf`) keys, as the reference's field names and tags. */
  readonly props: readonly string[];
  /** Command-line flag without the leading `--`. */
  readonly flag: string;
}

const row = (key: ConfigKey, env: string | string[], props: string | string[], flag: string): KeyNames => ({
  key,
  env: typeof env === 'string' ? [env] : env,
  props: typeof props === 'string' ? [props] : props,
  flag,
});

/** Every field's names. [ref sync-protocol §7; props from the reference's config.go] */
export const KEY_NAMES: readonly KeyNames[] = [
  row('nodeType', 'NODE_TYPE', 'NodeType', 'node-type'),
  row('listeningType', 'LISTENING_TYPE', 'ListeningType', 'listening-type'),
  row('listeningAddress', 'LISTENING_ADDRESS', 'ListeningAddress', 'listening-address'),
  row('unixSocketFilePermissions', 'UNIX_SOCKET_FILE_PERMISSIONS', 'UnixSocketFilePermissions', 'unix-socket-file-permissions'),
  row('secureListeningPort', 'SECURE_LISTENING_PORT', 'SecureListeningPort', 'secure-listening-port'),
  row('unsecureListeningPort', 'UNSECURE_LISTENING_PORT', 'UnsecureListeningPort', 'unsecure-listening-port'),
  row('serverCertificate', 'SERVER_CERTIFICATE', 'ServerCertificate', 'server-certificate'),
  row('serverKey', 'SERVER_KEY', 'ServerKey', 'server-key'),
  row('authenticationHandler', 'AUTHENTICATION_HANDLER', 'AuthenticationHandler', 'authentication-handler'),
  row('externalAuthUrl', 'EXTERNAL_AUTH_URL', 'ExternalAuthURL', 'external-auth-url'),
  row('externalAuthCACertificate', 'EXTERNAL_AUTH_CA_CERTIFICATE', 'ExternalAuthCACertificate', 'external-auth-ca-certificate'),
  row('externalAuthCacheTtl', 'EXTERNAL_AUTH_CACHE_TTL', 'ExternalAuthCacheTTL', 'external-auth-cache-ttl'),
  row('externalAuthTimeout', 'EXTERNAL_AUTH_TIMEOUT', 'ExternalAuthTimeout', 'external-auth-timeout'),
  row('loginFailureLimit', 'LOGIN_FAILURE_LIMIT', 'LoginFailureLimit', 'login-failure-limit'),
  row('loginFailureWindow', 'LOGIN_FAILURE_WINDOW', 'LoginFailureWindow', 'login-failure-window'),
  row('trustedProxies', 'TRUSTED_PROXIES', 'TrustedProxies', 'trusted-proxies'),
  row('webhookAllowedNetworks', 'WEBHOOK_ALLOWED_NETWORKS', 'WebhookAllowedNetworks', 'webhook-allowed-networks'),
  row('webhookTimeout', 'WEBHOOK_TIMEOUT', 'WebhookTimeout', 'webhook-timeout'),
  row('webhookMaxAttempts', 'WEBHOOK_MAX_ATTEMPTS', 'WebhookMaxAttempts', 'webhook-max-attempts'),
  row('webhookRetryDelay', 'WEBHOOK_RETRY_DELAY', 'WebhookRetryDelay', 'webhook-retry-delay'),
  row('metricsPort', 'METRICS_PORT', 'MetricsPort', 'metrics-port'),
  row('metricsListeningAddress', 'METRICS_LISTENING_ADDRESS', 'MetricsListeningAddress', 'metrics-listening-address'),
  row('persistenceRootPath', 'PERSISTENCE_ROOT_PATH', 'PersistenceRootPath', 'persistence-root-path'),
  row('sourceDataDirs', 'SOURCE_DATA_DIRS', 'SourceDataDirs', 'source-data-dirs'),
  row('destinationDataDirs', 'DESTINATION_DATA_DIRS', 'DestinationDataDirs', 'destination-data-dirs'),
  row('orgID', 'ORG_ID', ['OrgID', 'OrgId'], 'org-id'),
  row('destinationType', 'DESTINATION_TYPE', 'DestinationType', 'destination-type'),
  row('destinationID', 'DESTINATION_ID', ['DestinationID', 'DestinationId'], 'destination-id'),
  row('communicationProtocol', 'COMMUNICATION_PROTOCOL', 'CommunicationProtocol', 'communication-protocol'),
  row('httpCSSHost', 'HTTP_CSS_HOST', 'HTTPCSSHost', 'http-css-host'),
  row('httpCSSPort', 'HTTP_CSS_PORT', 'HTTPCSSPort', 'http-css-port'),
  row('httpCSSUseSSL', 'HTTP_CSS_USE_SSL', 'HTTPCSSUseSSL', 'http-css-use-ssl'),
  row('httpCSSCACertificate', 'HTTP_CSS_CA_CERTIFICATE', 'HTTPCSSCACertificate', 'http-css-ca-certificate'),
  row('httpPollingInterval', 'HTTP_POLLING_INTERVAL', 'HTTPPollingInterval', 'http-polling-interval'),
  row('httpCSSUser', 'HTTP_CSS_USER', 'HTTPCSSUser', 'http-css-user'),
  row('httpCSSPassword', 'HTTP_CSS_PASSWORD', 'HTTPCSSPassword', 'http-css-password'),
  row('compatibilityMode', 'EDGESYNC_REFERENCE_PROTOCOL', 'ReferenceProtocol', 'reference-protocol'),
  row('storageProvider', 'STORAGE_PROVIDER', 'StorageProvider', 'storage-provider'),
  row('mongoAddressCsv', 'MONGO_ADDRESS_CSV', 'MongoAddressCsv', 'mongo-address-csv'),
  row('mongoDbName', 'MONGO_DB_NAME', 'MongoDbName', 'mongo-db-name'),
  row('mongoAuthDbName', 'MONGO_AUTH_DB_NAME', 'MongoAuthDbName', 'mongo-auth-db-name'),
  row('mongoUsername', 'MONGO_USERNAME', 'MongoUsername', 'mongo-username'),
  row('mongoPassword', 'MONGO_PASSWORD', 'MongoPassword', 'mongo-password'),
  row('mongoUseSSL', 'MONGO_USE_SSL', 'MongoUseSSL', 'mongo-use-ssl'),
  // sync.conf documents MONGO_SSL_CA_FILE while the code reads MONGO_CA_CERTIFICATE: accept both.
  row('mongoCACertificate', ['MONGO_CA_CERTIFICATE', 'MONGO_SSL_CA_FILE'], 'MongoCACertificate', 'mongo-ca-certificate'),
  row('maxDataChunkSize', 'MAX_DATA_CHUNK_SIZE', 'MaxDataChunkSize', 'max-data-chunk-size'),
  row('resendInterval', 'RESEND_INTERVAL', 'ResendInterval', 'resend-interval'),
  row('essPingInterval', 'ESS_PING_INTERVAL', 'ESSPingInterval', 'ess-ping-interval'),
  row('removeESSRegistrationTime', 'REMOVE_ESS_REGISTRATION_TIME', 'RemoveESSRegistrationTime', 'remove-ess-registration-time'),
  row('objectActivationInterval', 'OBJECT_ACTIVATION_INTERVAL', 'ObjectActivationInterval', 'object-activation-interval'),
  row('storageMaintenanceInterval', 'STORAGE_MAINTENANCE_INTERVAL', 'StorageMaintenanceInterval', 'storage-maintenance-interval'),
  row('shutdownQuiesceTime', 'SHUTDOWN_QUIESCE_TIME', 'ShutdownQuiesceTime', 'shutdown-quiesce-time'),
  row('logLevel', 'LOG_LEVEL', 'LogLevel', 'log-level'),
  row('logTraceDestination', 'LOG_TRACE_DESTINATION', 'LogTraceDestination', 'log-trace-destination'),
  row('logRootPath', 'LOG_ROOT_PATH', 'LogRootPath', 'log-root-path'),
  row('logFileName', 'LOG_FILE_NAME', 'LogFileName', 'log-file-name'),
  row('brokerAddress', 'BROKER_ADDRESS', 'BrokerAddress', 'broker-address'),
  row('brokerPort', 'BROKER_PORT', 'BrokerPort', 'broker-port'),
  row('mqttUseSSL', 'MQTT_USE_SSL', 'MQTTUseSSL', 'mqtt-use-ssl'),
  row('mqttUserName', 'MQTT_USER_NAME', 'MQTTUserName', 'mqtt-user-name'),
  row('mqttPassword', 'MQTT_PASSWORD', 'MQTTPassword', 'mqtt-password'),
  row('mqttCACertificate', 'MQTT_CA_CERTIFICATE', 'MQTTCACertificate', 'mqtt-ca-certificate'),
  row('mqttSSLCert', 'MQTT_SSL_CERT', 'MQTTSSLCert', 'mqtt-ssl-cert'),
  row('mqttSSLKey', 'MQTT_SSL_KEY', 'MQTTSSLKey', 'mqtt-ssl-key'),
  row('mqttAllowInvalidCertificates', 'MQTT_ALLOW_INVALID_CERTIFICATES', 'MQTTAllowInvalidCertificates', 'mqtt-allow-invalid-certificates'),
  // sync.conf spells the field both ways in the reference's docs and code.
  row('mqttClientID', 'MQTT_CLIENT_ID', ['MQTTClientID', 'MQTTClientId'], 'mqtt-client-id'),
  row('mqttBrokerConnectTimeout', 'MQTT_BROKER_CONNECT_TIMEOUT', 'MQTTBrokerConnectTimeout', 'mqtt-broker-connect-timeout'),
  row('mqttSharedGroup', 'MQTT_SHARED_GROUP', 'MQTTSharedGroup', 'mqtt-shared-group'),
  row('maxInflightChunks', 'MAX_INFLIGHT_CHUNKS', 'MaxInflightChunks', 'max-inflight-chunks'),
  row('embeddedBrokerPort', 'EMBEDDED_BROKER_PORT', 'EmbeddedBrokerPort', 'embedded-broker-port'),
  row('embeddedBrokerTlsPort', 'EMBEDDED_BROKER_TLS_PORT', 'EmbeddedBrokerTlsPort', 'embedded-broker-tls-port'),
  row('maxRequestBodySize', 'EDGESYNC_MAX_BODY_SIZE', 'MaxRequestBodySize', 'max-request-body-size'),
  row('maxDataSize', 'EDGESYNC_MAX_DATA_SIZE', 'MaxDataSize', 'max-data-size'),
  // OpenTelemetry's own names, so a deployment's usual tracing environment just works.
  row('otlpEndpoint', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTLPEndpoint', 'otlp-endpoint'),
  row('otlpTracesEndpoint', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTLPTracesEndpoint', 'otlp-traces-endpoint'),
  row('otlpHeaders', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTLPHeaders', 'otlp-headers'),
  row('otelServiceName', 'OTEL_SERVICE_NAME', 'OTelServiceName', 'otel-service-name'),
  row('traceExportDelay', 'OTEL_BSP_SCHEDULE_DELAY', 'TraceExportDelay', 'trace-export-delay'),
];

/**
 * Reference settings edgesync does not use, as [sync.conf key, env name]. A sync.conf or an
 * environment written for the reference keeps loading; they are reported in `ignored`.
 */
export const IGNORED_REFERENCE_KEYS: readonly (readonly [string, string])[] = [
  ['CSSOnWIoTP', 'CSS_ON_WIOTP'], ['UsingEdgeConnector', 'USING_EDGE_CONNECTOR'], ['LeadershipTimeout', 'LEADERSHIP_TIMEOUT'],
  ['ObjectQueueBufferSize', 'OBJECT_QUEUE_BUFFER_SIZE'], ['VerifyQueueBufferSize', 'VERIFY_QUEUE_BUFFER_SIZE'],
  ['MQTTParallelMode', 'PARALLEL_MQTT_MODE'], ['MQTTPinnedCertFingerprints', 'MQTT_PINNED_CERT_FINGERPRINTS'],
  ['MQTTCertificatePinningFingerprints', 'MQTT_CERTIFICATE_PINNING_FINGERPRINTS'],
  ['HTTPESSClientTimeout', 'HTTPESSClientTimeout'], ['HTTPESSObjClientTimeout', 'HTTPESSObjClientTimeout'],
  ['HTTPCSSObjDownloadConcurrencyMultiplier', 'HTTPCSSObjDownloadConcurrencyMultiplier'],
  ['HTTPServerReadHeaderTimeout', 'HTTPServerReadHeaderTimeout'], ['ESSCallSPIRetryInterval', 'ESS_CALL_SPI_RETRY_INTERVAL'],
  ['ESSSPIMaxRetry', 'ESSSPIMaxRetry'], ['AllowPrivateIPs', 'ALLOW_PRIVATE_IPS'], ['TraceLevel', 'TRACE_LEVEL'],
  ['TraceRootPath', 'TRACE_ROOT_PATH'], ['TraceFileName', 'TRACE_FILE_NAME'], ['LogTraceFileSizeKB', 'LOG_TRACE_FILE_SIZE_KB'],
  ['MaxCompressedlLogTraceFilesNumber', 'MAX_COMPRESSED_LOG_TRACE_FILES_NUMBER'],
  ['LogTraceMaintenanceInterval', 'LOG_TRACE_MAINTENANCE_INTERVAL'], ['EnableDataChunk', 'ENABLE_DATA_CHUNK'],
  ['MessagingGroupCacheExpiration', 'MESSAGING_GROUP_CACHE_EXPIRATION'],
  ['MongoAuthMechanism', 'MONGO_AUTH_MECHANISM'], ['MongoAllowInvalidCertificates', 'MONGO_ALLOW_INVALID_CERTIFICATES'],
  ['MongoPinnedCertFingerprints', 'MONGO_PINNED_CERT_FINGERPRINTS'],
  ['MongoCertificatePinningFingerprints', 'MONGO_CERTIFICATE_PINNING_FINGERPRINTS'],
  ['MongoSessionCacheSize', 'MONGO_SESSION_CACHE_SIZE'], ['MongoSleepTimeBetweenRetry', 'MONGO_SLEEP_TIME_BETWEEN_RETRY'],
  ['DatabaseConnectTimeout', 'DATABASE_CONNECT_TIMEOUT'], ['ObjectsDataPath', 'OBJECTS_DATA_PATH'],
  ['ESSConsumedObjectsKept', 'ESS_CONSUMED_OBJECTS_KEPT'], ['ESSPersistentStorage', 'ESS_PERSISTENT_STORAGE'],
  ['AllowedCertificateExtensions', 'ALLOWED_CERTIFICATE_EXTENSIONS'], ['AllowedKeyExtensions', 'ALLOWED_KEY_EXTENSIONS'],
  ['AllowedDataFileExtensions', 'ALLOWED_DATA_FILE_EXTENSIONS'],
];

const BY_KEY = new Map<string, KeyNames>(KEY_NAMES.map((n) => [n.key, n]));
const BY_PROP = new Map<string, KeyNames>(KEY_NAMES.flatMap((n) => n.props.map((p) => [p, n] as const)));
const BY_FLAG = new Map<string, KeyNames>(KEY_NAMES.map((n) => [n.flag, n]));
const IGNORED_PROPS = new Set(IGNORED_REFERENCE_KEYS.map(([p]) => p));
const IGNORED_ENV = [...new Set(IGNORED_REFERENCE_KEYS.map(([, e]) => e))];

/** The names of one field. */
export function keyNames(key: ConfigKey): KeyNames {
  const n = BY_KEY.get(key);
  if (n === undefined) throw new Error(`no names for config key ${key}`);
  return n;
}

/** Human description of an origin, for messages. */
export function describeOrigin(o: Origin): string {
  switch (o.source) {
    case 'file':
      return `config file ${o.file ?? ''}`;
    case 'env':
      return 'environment';
    case 'flag':
      return 'command line';
    case 'subcommand':
      return 'subcommand';
  }
}

const issueAt = (origin: Origin, message: string): ConfigIssue => ({ key: origin.key, message, where: describeOrigin(origin) });

// A typo should point at the right name: compare without case, dashes and underscores.
const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
const SUGGEST = new Map<string, KeyNames>(
  KEY_NAMES.flatMap((n) => [n.key, n.flag, ...n.props, ...n.env].map((s) => [squash(s), n] as const)),
);
function unknown(what: string, written: string, spell: (n: KeyNames) => string): string {
  const near = SUGGEST.get(squash(written.replace(/^-+(no-)?/, '')));
  return near !== undefined ? `unknown ${what}; did you mean ${spell(near)}?` : `unknown ${what}`;
}

/** Reads a YAML (.yaml/.yml), JSON (.json) or reference properties (.conf) file. */
export function fromFile(path: string): FileResult {
  const ext = extname(path).toLowerCase();
  const format: FileFormat | undefined = ext === '.yaml' || ext === '.yml' ? 'yaml' : ext === '.json' ? 'json' : ext === '.conf' ? 'conf' : undefined;
  const fileIssue = (message: string): FileResult => ({ values: {}, ignored: [], format, issues: [{ key: path, message, where: 'config file' }] });
  if (format === undefined) return fileIssue('config file must end in .yaml, .yml, .json or .conf');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return fileIssue(`cannot read the config file: ${(e as Error).message}`);
  }
  if (format === 'conf') return { ...fromProperties(text, path), format };
  let doc: unknown;
  if (format === 'json') {
    try {
      doc = JSON.parse(text) as unknown;
    } catch (e) {
      return fileIssue(`invalid JSON: ${(e as Error).message}`);
    }
  } else {
    const parsed = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (parsed.errors.length > 0) return fileIssue(`invalid YAML: ${parsed.errors.map((e) => e.message).join('; ')}`);
    doc = parsed.toJS() as unknown;
  }
  return { ...fromMapping(doc, path), format };
}

/** Our own format: a mapping of field names to values; `null` (a bare `key:`) means not set. */
function fromMapping(doc: unknown, file: string): SourceResult {
  if (doc === null || doc === undefined) return { values: {}, issues: [], ignored: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    return { values: {}, ignored: [], issues: [{ key: file, message: 'must be a mapping of keys to values', where: 'config file' }] };
  }
  const values: RawConfig = {};
  const issues: ConfigIssue[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const origin: Origin = { source: 'file', key, file };
    const names = BY_KEY.get(key);
    if (names === undefined) issues.push(issueAt(origin, unknown('key', key, (n) => n.key)));
    else if (value !== null) values[names.key] = { value, origin };
  }
  return { values, issues, ignored: [] };
}

/**
 * The reference's properties format: `Key value` per line, `#` starts a comment line, a key twice
 * is an error, and the value's whitespace-separated words are joined with nothing, as the
 * reference's parser does. An empty value means not set.
 */
function fromProperties(text: string, file: string): SourceResult {
  const values: RawConfig = {};
  const issues: ConfigIssue[] = [];
  const ignored: Origin[] = [];
  const seen = new Set<string>();
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const words = line.trim().split(/\s+/);
    const key = words[0] ?? '';
    if (key === '' || key.startsWith('#')) continue;
    const origin: Origin = { source: 'file', key, file: `${file}:${i + 1}` };
    const value = words.slice(1).join('');
    const names = BY_PROP.get(key);
    if (seen.has(key)) issues.push(issueAt(origin, 'appears twice in the file'));
    else if (names !== undefined) {
      if (value !== '') values[names.key] = { value, origin };
    } else if (IGNORED_PROPS.has(key)) {
      if (value !== '') ignored.push(origin);
    } else {
      issues.push(issueAt(origin, unknown('key', key, (n) => n.props[0] ?? n.key)));
    }
    seen.add(key);
  }
  return { values, issues, ignored };
}

/**
 * The reference's environment variables (and our EDGESYNC_* ones). An empty variable counts as not
 * set, so `FOO=${FOO}` in a compose file does not override a default with ''.
 */
export function fromEnv(env: Readonly<Record<string, string | undefined>>): SourceResult {
  const values: RawConfig = {};
  for (const names of KEY_NAMES) {
    const name = names.env.find((e) => (env[e] ?? '') !== '');
    if (name !== undefined) values[names.key] = { value: env[name], origin: { source: 'env', key: name } };
  }
  const ignored = IGNORED_ENV.filter((e) => (env[e] ?? '') !== '').map((key): Origin => ({ source: 'env', key }));
  return { values, issues: [], ignored };
}

/**
 * Command-line flags: `--flag value`, `--flag=value`, booleans as `--flag` / `--no-flag` /
 * `--flag=false` (a boolean never takes the next word), `--config path` or `-c path`.
 * Unknown flags and stray words are errors.
 */
export function fromFlags(argv: readonly string[]): FlagsResult {
  const values: RawConfig = {};
  const issues: ConfigIssue[] = [];
  let configFile: FlagsResult['configFile'];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token !== '-c' && (!token.startsWith('--') || token === '--')) {
      issues.push(issueAt({ source: 'flag', key: token }, token.startsWith('-') ? 'unknown flag' : 'unexpected argument'));
      continue;
    }
    const eq = token.indexOf('=');
    const name = token === '-c' ? 'config' : token.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : token.slice(eq + 1);
    const origin: Origin = { source: 'flag', key: eq < 0 ? token : token.slice(0, eq) };
    // Takes the next word as the value unless it is missing or is itself a flag.
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) return undefined;
      i++;
      return next;
    };
    const negated = name.startsWith('no-') ? BY_FLAG.get(name.slice(3)) : undefined;
    const names = BY_FLAG.get(name);
    if (name === 'config') {
      const path = takeValue();
      if (path === undefined || path === '') issues.push(issueAt(origin, 'needs a file path'));
      else configFile = { path, origin };
    } else if (names !== undefined && BOOLEAN_KEYS.has(names.key)) {
      values[names.key] = { value: inline ?? true, origin };
    } else if (names !== undefined) {
      const value = takeValue();
      if (value === undefined) issues.push(issueAt(origin, 'needs a value'));
      else values[names.key] = { value, origin };
    } else if (negated !== undefined && BOOLEAN_KEYS.has(negated.key)) {
      if (inline !== undefined) issues.push(issueAt(origin, 'takes no value'));
      else values[negated.key] = { value: false, origin };
    } else {
      issues.push(issueAt(origin, unknown('flag', token.slice(0, eq < 0 ? undefined : eq), (n) => `--${n.flag}`)));
    }
  }
  return configFile === undefined ? { values, issues, ignored: [] } : { values, issues, ignored: [], configFile };
}
