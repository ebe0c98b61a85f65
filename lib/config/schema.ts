/**
 * The configuration schema: one zod object whose fields accept the loose values that files,
 * environment variables and flags produce (strings everywhere except YAML/JSON), turn them into
 * typed values, and report every bad key in one pass. [ref sync-protocol §7]
 *
 * Imports nothing of ours (DESIGN.md: config is a leaf).
 */
import { isIP } from 'node:net';
import * as z from 'zod';

export type NodeType = 'CSS' | 'ESS';
export type ListeningType = 'secure' | 'unsecure' | 'both' | 'unix' | 'secure-unix';
/** The reference's list, canonicalised; `wiotp` is refused (the Watson IoT Platform is gone). */
export type CommunicationProtocol = 'http' | 'mqtt' | 'http,mqtt';
export type StorageProvider = 'sqlite' | 'mongo';
export type AuthenticationHandler = 'preset' | 'dummy' | 'external';
/** pino level names. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogTraceDestination = 'stdout' | 'file';

/**
 * The validated configuration of one node. Names are our file format; the comment gives the
 * reference's environment variable. Strings default to '' and ports to 0 where the reference uses
 * those as "not set". Paths are absolute once `loadConfig` returns.
 */
export interface Config {
  /** NODE_TYPE. The `edgesync css|ess` subcommand overrides it. */
  readonly nodeType: NodeType;
  /** LISTENING_TYPE. CSS: `secure` when a certificate pair is set, else `unsecure`; ESS: `secure`. */
  readonly listeningType: ListeningType;
  /** LISTENING_ADDRESS. Bind address ('' = all interfaces), or the socket path in unix modes. Default 127.0.0.1 (divergence: reference ''). */
  readonly listeningAddress: string;
  /** UNIX_SOCKET_FILE_PERMISSIONS, given as an octal string ('0660'), held as a mode number. */
  readonly unixSocketFilePermissions: number;
  /** SECURE_LISTENING_PORT (8443); 0 = a random port. */
  readonly secureListeningPort: number;
  /** UNSECURE_LISTENING_PORT (8080); 0 = a random port. */
  readonly unsecureListeningPort: number;
  /** SERVER_CERTIFICATE: PEM text, or an absolute file path. '' = none (an ESS makes its own). */
  readonly serverCertificate: string;
  /** SERVER_KEY: PEM text, or an absolute file path. '' = none. */
  readonly serverKey: string;
  /** AUTHENTICATION_HANDLER. Default `preset` (divergence: reference `dummy`). */
  readonly authenticationHandler: AuthenticationHandler;
  /** EXTERNAL_AUTH_URL (ours): where `external` POSTs credentials, http(s) URL; required with it. */
  readonly externalAuthUrl: string;
  /** EXTERNAL_AUTH_CA_CERTIFICATE (ours): PEM text or file path of the identity service's CA; '' = the system's. */
  readonly externalAuthCACertificate: string;
  /** EXTERNAL_AUTH_CACHE_TTL (ours), seconds (60): an accepted credential is not asked about again this long; 0 = always ask. */
  readonly externalAuthCacheTtl: number;
  /** EXTERNAL_AUTH_TIMEOUT (ours), seconds (5): the longest one request to the identity service may take. */
  readonly externalAuthTimeout: number;
  /** LOGIN_FAILURE_LIMIT (ours, 10): failed logins per app key or address within the window before 429; 0 = no throttling. */
  readonly loginFailureLimit: number;
  /** LOGIN_FAILURE_WINDOW (ours), seconds (60): the sliding window of LOGIN_FAILURE_LIMIT. */
  readonly loginFailureWindow: number;
  /** TRUSTED_PROXIES (ours): CIDR list of load balancers whose X-Forwarded-For names the client (throttle, logs); '' = none. */
  readonly trustedProxies: string;
  /** WEBHOOK_ALLOWED_NETWORKS (ours): CIDR list a CSS's webhooks must resolve into; '' = any but link-local and metadata. */
  readonly webhookAllowedNetworks: string;
  /** WEBHOOK_TIMEOUT (ours), seconds (10): the longest one webhook call may take. */
  readonly webhookTimeout: number;
  /** WEBHOOK_MAX_ATTEMPTS (ours), (6): calls of one webhook for one change, the first included. */
  readonly webhookMaxAttempts: number;
  /** WEBHOOK_RETRY_DELAY (ours), seconds (2): wait before the first retry, doubled before each next. */
  readonly webhookRetryDelay: number;
  /** METRICS_PORT (ours): a listener serving `/metrics` without authentication; 0 (default) = none (`/metrics` on the API listener needs credentials). */
  readonly metricsPort: number;
  /** METRICS_LISTENING_ADDRESS (ours): the bind address of that listener; default 127.0.0.1. */
  readonly metricsListeningAddress: string;
  /** PERSISTENCE_ROOT_PATH, absolute. Default ./data (reference /var/edge-sync-service/persist). */
  readonly persistenceRootPath: string;
  /** SOURCE_DATA_DIRS (ours): comma-separated absolute directories a `sourceDataUri` may read from; '' = sourceDataUri refused. */
  readonly sourceDataDirs: string;
  /** DESTINATION_DATA_DIRS (ours): ESS, comma-separated absolute directories a received `destinationDataUri` may be written to; '' = none. */
  readonly destinationDataDirs: string;
  /** ORG_ID. Required on an ESS; on a CSS, set = single-org mode, '' = multi-org. */
  readonly orgID: string;
  /** DESTINATION_TYPE. Required on an ESS; always `Cloud` on a CSS. */
  readonly destinationType: string;
  /** DESTINATION_ID. Required on an ESS; always `Cloud` on a CSS. */
  readonly destinationID: string;
  /** COMMUNICATION_PROTOCOL. Default `http` (divergence: reference `mqtt`). */
  readonly communicationProtocol: CommunicationProtocol;
  /** HTTP_CSS_HOST: host name or IP of the CSS (an http ESS). */
  readonly httpCSSHost: string;
  /** HTTP_CSS_PORT; 0 = not set. */
  readonly httpCSSPort: number;
  /** HTTP_CSS_USE_SSL (false). */
  readonly httpCSSUseSSL: boolean;
  /** HTTP_CSS_CA_CERTIFICATE: PEM text or an absolute file path; '' = system CAs. */
  readonly httpCSSCACertificate: string;
  /** HTTP_POLLING_INTERVAL, seconds (10). */
  readonly httpPollingInterval: number;
  /**
   * HTTP_CSS_USER (ours): the Basic-auth user an http ESS presents to its CSS when the users
   * file has no `cssCredentials`. '' = `org/destType/destID` (what the reference's dummy CSS takes).
   */
  readonly httpCSSUser: string;
  /** HTTP_CSS_PASSWORD (ours): the secret going with httpCSSUser. */
  readonly httpCSSPassword: string;
  /**
   * EDGESYNC_REFERENCE_PROTOCOL (ours, false): our ESS speaks only the reference protocol, none of
   * our extensions (no long-poll), for a CSS that might not ignore them.
   */
  readonly compatibilityMode: boolean;
  /** STORAGE_PROVIDER. The reference's `bolt` and `inmemory` become `sqlite`. */
  readonly storageProvider: StorageProvider;
  /** MONGO_ADDRESS_CSV: a mongodb:// URI, as the reference's code uses it. */
  readonly mongoAddressCsv: string;
  /** MONGO_DB_NAME (d_edge). */
  readonly mongoDbName: string;
  /** MONGO_AUTH_DB_NAME (admin). */
  readonly mongoAuthDbName: string;
  /** MONGO_USERNAME. */
  readonly mongoUsername: string;
  /** MONGO_PASSWORD. */
  readonly mongoPassword: string;
  /** MONGO_USE_SSL (false). */
  readonly mongoUseSSL: boolean;
  /** MONGO_CA_CERTIFICATE (alias MONGO_SSL_CA_FILE): PEM text or an absolute file path. */
  readonly mongoCACertificate: string;
  /** MAX_DATA_CHUNK_SIZE, bytes (5 MiB). */
  readonly maxDataChunkSize: number;
  /** RESEND_INTERVAL, seconds (10). */
  readonly resendInterval: number;
  /** ESS_PING_INTERVAL, hours (1). */
  readonly essPingInterval: number;
  /** REMOVE_ESS_REGISTRATION_TIME, days (30); 0 = never. A fraction (ours) is accepted: 0.5 = 12 hours. */
  readonly removeESSRegistrationTime: number;
  /** OBJECT_ACTIVATION_INTERVAL, seconds (30). */
  readonly objectActivationInterval: number;
  /** STORAGE_MAINTENANCE_INTERVAL, seconds (30). */
  readonly storageMaintenanceInterval: number;
  /** SHUTDOWN_QUIESCE_TIME, seconds (60): the longest a graceful stop may drain. */
  readonly shutdownQuiesceTime: number;
  /** LOG_LEVEL: reference names (TRACE..FATAL, NONE) mapped to pino levels. Default info. */
  readonly logLevel: LogLevel;
  /** LOG_TRACE_DESTINATION. Default stdout (divergence: reference file). */
  readonly logTraceDestination: LogTraceDestination;
  /** LOG_ROOT_PATH, absolute; used when logTraceDestination is `file`. Default <persistenceRootPath>/log. */
  readonly logRootPath: string;
  /** LOG_FILE_NAME (sync-service); the file is <logRootPath>/<logFileName>.log. */
  readonly logFileName: string;
  /**
   * BROKER_ADDRESS: host name or IP of the MQTT broker. ESS: `localhost` (as the reference).
   * CSS: '' (divergence: reference `localhost`) = the CSS runs the embedded broker and connects to
   * it itself; set = an external broker.
   */
  readonly brokerAddress: string;
  /** BROKER_PORT (1883): the external broker's port. */
  readonly brokerPort: number;
  /** MQTT_USE_SSL (true, as in the reference): TLS toward an external broker. */
  readonly mqttUseSSL: boolean;
  /** MQTT_USER_NAME. */
  readonly mqttUserName: string;
  /** MQTT_PASSWORD. */
  readonly mqttPassword: string;
  /** MQTT_CA_CERTIFICATE (broker/ca/ca.cert.pem under persistenceRootPath): PEM or absolute path. */
  readonly mqttCACertificate: string;
  /** MQTT_SSL_CERT: client certificate toward the broker, PEM or absolute path; '' = none. */
  readonly mqttSSLCert: string;
  /** MQTT_SSL_KEY: its key, PEM or absolute path; '' = none. */
  readonly mqttSSLKey: string;
  /** MQTT_ALLOW_INVALID_CERTIFICATES (false): an ESS accepts a broker certificate that does not verify. Refused on a CSS. */
  readonly mqttAllowInvalidCertificates: boolean;
  /** MQTT_CLIENT_ID; '' = `CSS-`/`ESS-` and 19 random digits, as the reference. */
  readonly mqttClientID: string;
  /** MQTT_BROKER_CONNECT_TIMEOUT, seconds (300): how long a start waits for the broker. */
  readonly mqttBrokerConnectTimeout: number;
  /**
   * MQTT_SHARED_GROUP (ours, `edgesync-css`): the MQTT 5 shared-subscription group of the CSS
   * processes on one external broker ('' = plain subscriptions, MQTT 3.1.1; from a file or a flag,
   * as an empty environment variable counts as not set).
   */
  readonly mqttSharedGroup: string;
  /** MAX_INFLIGHT_CHUNKS (8; reference 1): chunks a receiver asks for ahead over MQTT, 1–64. */
  readonly maxInflightChunks: number;
  /** EMBEDDED_BROKER_PORT (ours, 1883): the embedded broker's TCP port; 0 = a random one. */
  readonly embeddedBrokerPort: number;
  /** EMBEDDED_BROKER_TLS_PORT (ours, 0 = no TLS listener): the embedded broker's TLS port, with the node's server certificate. */
  readonly embeddedBrokerTlsPort: number;
  /** EDGESYNC_MAX_BODY_SIZE (ours), bytes (64 MiB): limit of JSON bodies and inline base64 data. */
  readonly maxRequestBodySize: number;
  /** EDGESYNC_MAX_DATA_SIZE (ours), bytes of data per object; 0 = unlimited. */
  readonly maxDataSize: number;
  /** OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry's): base URL of an OTLP/HTTP collector, traces go to <it>/v1/traces; '' = no tracing. */
  readonly otlpEndpoint: string;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OpenTelemetry's): the full traces URL, used as is; wins over otlpEndpoint. */
  readonly otlpTracesEndpoint: string;
  /** OTEL_EXPORTER_OTLP_HEADERS (OpenTelemetry's): `key=value,…` (values URL-encoded) sent with each export. */
  readonly otlpHeaders: string;
  /** OTEL_SERVICE_NAME (OpenTelemetry's); '' = `edgesync-css` / `edgesync-ess`. */
  readonly otelServiceName: string;
  /** OTEL_BSP_SCHEDULE_DELAY (OpenTelemetry's), ms (5000): how long finished spans wait to be exported together. */
  readonly traceExportDelay: number;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** A value for an error message; secrets are only ever rejected for their type, never echoed. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}

/** Wraps a parser so its failure becomes an issue at this key; other keys keep being checked. */
function scalar<T>(parse: (v: unknown) => Parsed<T>) {
  return z.unknown().transform((v, ctx): T => {
    const r = parse(v);
    if (r.ok) return r.value;
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  });
}

/** Only the kind of a rejected value: a string field may hold a secret (a password written unquoted in YAML). */
const kind = (v: unknown): string => (Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`);
const str = () => scalar((v) => (typeof v === 'string' ? ok(v) : fail<string>(`must be a string, got ${kind(v)} (quote it in YAML)`)));

/** Integers only: `8080` or "8080"; "8080.5", "abc", "" are errors, never a default. */
const int = (min: number, max: number) =>
  scalar((v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) return fail<number>(`must be an integer, got ${show(v)}`);
    if (n < min || n > max) return fail<number>(`must be between ${min} and ${max}, got ${n}`);
    return ok(n);
  });

/** A decimal number (`30`, `0.5`); "abc", "" are errors, never a default. */
const decimal = (min: number, max: number) =>
  scalar((v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n)) return fail<number>(`must be a number, got ${show(v)}`);
    if (n < min || n > max) return fail<number>(`must be between ${min} and ${max}, got ${n}`);
    return ok(n);
  });

// Go strconv.ParseBool spellings, which is what the reference's users write in env and sync.conf.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const bool = () =>
  scalar((v) => {
    if (typeof v === 'boolean') return ok(v);
    if (typeof v === 'string' && TRUE.has(v.trim())) return ok(true);
    if (typeof v === 'string' && FALSE.has(v.trim())) return ok(false);
    return fail<boolean>(`must be a boolean (true/false, 1/0, t/f), got ${show(v)}`);
  });

/** Case-insensitive choice; `aliases` maps other accepted spellings (lower-case) to a value. */
function oneOf<T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}) {
  const all = new Map<string, T>(values.map((x) => [x.toLowerCase(), x]));
  for (const [k, x] of Object.entries(aliases)) all.set(k, x);
  return scalar((v) => {
    const hit = typeof v === 'string' ? all.get(v.trim().toLowerCase()) : undefined;
    return hit !== undefined ? ok(hit) : fail<T>(`must be one of ${values.join(', ')}; got ${show(v)}`);
  });
}

/** Letters and digits of any script plus `| ! @ # $ ^ * - _ .  ~`, as the reference requires of org, type and id. */
const NAME = /^[a-zA-Z0-9|!@#$^*\-_.~\p{L}\p{N}]*$/u;
const name = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${show(v)} (quote it in YAML)`);
    if (!NAME.test(v) || v === '.' || v === '..') return fail<string>(`contains invalid characters: ${show(v)}`);
    return ok(v);
  });

/** The CSS host is put into `http(s)://host:port`; a URL or a path here would be garbage. */
const host = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${show(v)}`);
    if (/[/\s]|:\/\//.test(v)) return fail<string>(`must be a host name or IP address, not a URL, got ${show(v)}`);
    return ok(v);
  });

// YAML 1.2 reads an unquoted 0660 as the decimal 660, so only a string can say what the user meant.
const fileMode = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<number>(`must be a quoted octal string such as "0660", got ${show(v)}`);
    const m = /^\s*0?o?([0-7]{3,4})\s*$/.exec(v);
    return m?.[1] !== undefined ? ok(parseInt(m[1], 8)) : fail<number>(`must be an octal mode such as "0660", got ${show(v)}`);
  });

/** `http`, `mqtt` or the CSS's hybrid `http,mqtt` (any order, any case). [ref config.go ValidateConfig] */
const protocol = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<CommunicationProtocol>(`must be a string, got ${show(v)}`);
    const parts = new Set(v.split(',').map((p) => p.trim().toLowerCase()));
    if (parts.has('wiotp')) return fail<CommunicationProtocol>('wiotp (Watson IoT Platform) is not supported by edgesync; use http or mqtt');
    const unknown = [...parts].filter((p) => p !== 'http' && p !== 'mqtt');
    if (unknown.length > 0 || parts.size === 0) return fail<CommunicationProtocol>(`must be http, mqtt or http,mqtt; got ${show(v)}`);
    return ok<CommunicationProtocol>(parts.size === 2 ? 'http,mqtt' : parts.has('http') ? 'http' : 'mqtt');
  });

/** '' or one MQTT topic level without wildcards: the `{group}` of `$share/{group}/…`. [MQTT-4.8.2-1] */
const shareGroup = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${show(v)}`);
    if (/[/+#]/.test(v) || v.includes('\u0000')) return fail<string>(`must be one MQTT topic level without '/', '+' or '#' (the group of $share/{group}/…), got ${show(v)}`);
    return ok(v);
  });

/** '' (not set) or an absolute http(s) URL. */
const httpUrl = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${show(v)}`);
    if (v === '') return ok(v);
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return fail<string>(`must be an http:// or https:// URL, got ${show(v)}`);
    }
    return url.protocol === 'http:' || url.protocol === 'https:' ? ok(v) : fail<string>(`must be an http:// or https:// URL, got ${show(v)}`);
  });

/** `key=value` pairs separated by commas, as OpenTelemetry's OTEL_EXPORTER_OTLP_HEADERS; never echoed (it holds tokens). */
const headerList = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${kind(v)}`);
    const bad = v.split(',').some((pair) => pair.trim() !== '' && !/^\s*[^=\s]+\s*=/.test(pair));
    return bad ? fail<string>('must be key=value pairs separated by commas (values URL-encoded), e.g. authorization=Bearer%20TOKEN') : ok(v);
  });

/** Comma-separated CIDRs (`10.0.0.0/8, fd12::/16`); a bare address is one host. */
const cidrList = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a comma-separated list of networks, got ${show(v)}`);
    for (const raw of v.split(',')) {
      const entry = raw.trim();
      if (entry === '') continue;
      const [address = '', prefix] = entry.split('/');
      const version = isIP(address);
      const max = version === 4 ? 32 : 128;
      if (version === 0 || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))) {
        return fail<string>(`must be a comma-separated list of networks such as 10.0.0.0/8, got ${show(entry)}`);
      }
    }
    return ok(v);
  });

/** '' or comma-separated absolute directories: a REST client's file URIs are confined to them, so no relative guesswork. */
const dirList = () =>
  scalar((v) => {
    if (typeof v !== 'string') return fail<string>(`must be a string, got ${show(v)}`);
    const relative = v.split(',').map((d) => d.trim()).filter((d) => d !== '' && !d.startsWith('/'));
    return relative.length === 0 ? ok(v) : fail<string>(`must list absolute directories, got ${show(relative[0])}`);
  });

const logLevel = () =>
  oneOf<LogLevel>(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
    warning: 'warn',
    none: 'silent',
    // The reference's STATUS prints only status lines, just above NONE: the closest pino level is fatal.
    status: 'fatal',
  });

const MIB = 1024 * 1024;
const DAY_S = 86_400;

/** Every key a user can set, with its parser and default. Keys without a default are derived in `finish`. */
const fields = z.object({
  nodeType: oneOf<NodeType>(['CSS', 'ESS']).default('CSS'),
  listeningType: oneOf<ListeningType>(['secure', 'unsecure', 'both', 'unix', 'secure-unix']).optional(),
  listeningAddress: str().optional(),
  unixSocketFilePermissions: fileMode().default(0o660),
  secureListeningPort: int(0, 65535).default(8443),
  unsecureListeningPort: int(0, 65535).default(8080),
  serverCertificate: str().default(''),
  serverKey: str().default(''),
  authenticationHandler: oneOf<AuthenticationHandler>(['preset', 'dummy', 'external']).default('preset'),
  externalAuthUrl: httpUrl().default(''),
  externalAuthCACertificate: str().default(''),
  externalAuthCacheTtl: int(0, DAY_S).default(60),
  externalAuthTimeout: int(1, 300).default(5),
  loginFailureLimit: int(0, 1_000_000).default(10),
  loginFailureWindow: int(1, DAY_S).default(60),
  trustedProxies: cidrList().default(''),
  webhookAllowedNetworks: cidrList().default(''),
  webhookTimeout: int(1, 300).default(10),
  webhookMaxAttempts: int(1, 20).default(6),
  webhookRetryDelay: int(1, 3600).default(2),
  metricsPort: int(0, 65535).default(0),
  metricsListeningAddress: str().default('127.0.0.1'),
  persistenceRootPath: str().default('./data'),
  sourceDataDirs: dirList().default(''),
  destinationDataDirs: dirList().default(''),
  orgID: name().default(''),
  destinationType: name().default(''),
  destinationID: name().default(''),
  communicationProtocol: protocol().default('http'),
  httpCSSHost: host().default(''),
  httpCSSPort: int(0, 65535).default(0),
  httpCSSUseSSL: bool().default(false),
  httpCSSCACertificate: str().default(''),
  httpPollingInterval: int(1, 3600).default(10),
  httpCSSUser: str().default(''),
  httpCSSPassword: str().default(''),
  compatibilityMode: bool().default(false),
  storageProvider: oneOf<StorageProvider>(['sqlite', 'mongo'], { bolt: 'sqlite', inmemory: 'sqlite' }).default('sqlite'),
  mongoAddressCsv: str().default('mongodb://localhost:27017'),
  mongoDbName: str().default('d_edge'),
  mongoAuthDbName: str().default('admin'),
  mongoUsername: str().default(''),
  mongoPassword: str().default(''),
  mongoUseSSL: bool().default(false),
  mongoCACertificate: str().default(''),
  // MQTT packets are at most 256 MiB; 1 KiB keeps the per-chunk overhead sane.
  maxDataChunkSize: int(1024, 256 * MIB).default(5 * MIB),
  resendInterval: int(1, 3600).default(10),
  essPingInterval: int(1, 24 * 365).default(1),
  // Fractions are ours (the reference's is an integer): a test waits seconds, not a day.
  removeESSRegistrationTime: decimal(0, 3650).default(30),
  objectActivationInterval: int(1, DAY_S).default(30),
  storageMaintenanceInterval: int(1, DAY_S).default(30),
  shutdownQuiesceTime: int(0, 3600).default(60),
  logLevel: logLevel().default('info'),
  logTraceDestination: oneOf<LogTraceDestination>(['stdout', 'file']).default('stdout'),
  logRootPath: str().default(''),
  logFileName: str().default('sync-service'),
  // The default depends on the node type (`finish`).
  brokerAddress: host().optional(),
  brokerPort: int(1, 65535).default(1883),
  mqttUseSSL: bool().default(true),
  mqttUserName: str().default(''),
  mqttPassword: str().default(''),
  mqttCACertificate: str().default('broker/ca/ca.cert.pem'),
  mqttSSLCert: str().default(''),
  mqttSSLKey: str().default(''),
  mqttAllowInvalidCertificates: bool().default(false),
  mqttClientID: str().default(''),
  mqttBrokerConnectTimeout: int(1, DAY_S).default(300),
  mqttSharedGroup: shareGroup().default('edgesync-css'),
  // [ref config.go] the reference clamps to 1–64 on a CSS (unbounded on an ESS) and defaults to 1;
  // a window of 8 keeps a link busy without holding much memory.
  maxInflightChunks: int(1, 64).default(8),
  embeddedBrokerPort: int(0, 65535).default(1883),
  embeddedBrokerTlsPort: int(0, 65535).default(0),
  maxRequestBodySize: int(1024, Number.MAX_SAFE_INTEGER).default(64 * MIB),
  maxDataSize: int(0, Number.MAX_SAFE_INTEGER).default(0),
  otlpEndpoint: httpUrl().default(''),
  otlpTracesEndpoint: httpUrl().default(''),
  otlpHeaders: headerList().default(''),
  otelServiceName: str().default(''),
  traceExportDelay: int(0, 600_000).default(5000),
});

/** Field names, the keys of our config file. */
export type ConfigKey = keyof typeof fields.shape;
/** Every field name, in schema order. */
export const CONFIG_KEYS = Object.keys(fields.shape) as readonly ConfigKey[];
/** Fields that are booleans: they take `--x` / `--no-x` on the command line. */
export const BOOLEAN_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>(['httpCSSUseSSL', 'compatibilityMode', 'mongoUseSSL', 'mqttUseSSL', 'mqttAllowInvalidCertificates']);

type Fields = z.output<typeof fields>;

/** Loopback by default so a plain `npm start` exposes nothing (divergence: reference '' = all interfaces). */
export const DEFAULT_LISTENING_ADDRESS = '127.0.0.1';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/i;
const isUnix = (t: ListeningType | undefined): boolean => t === 'unix' || t === 'secure-unix';

/**
 * Rules across keys. They run even when some keys failed (so one run reports everything), but a
 * rule only looks at keys that parsed: `failed` holds the others.
 */
function crossChecks(v: Fields, ctx: z.RefinementCtx<Fields>): void {
  const failed = new Set(ctx.issues.map((i) => i.path?.[0]));
  const valid = (...keys: ConfigKey[]): boolean => keys.every((k) => !failed.has(k));
  const issue = (key: ConfigKey, message: string): void => ctx.addIssue({ code: 'custom', path: [key], message });
  const ess = valid('nodeType') && v.nodeType === 'ESS';
  const css = valid('nodeType') && v.nodeType === 'CSS';

  if (ess) {
    // [ref config.go ValidateConfig] an ESS is addressed as org/type/id.
    for (const k of ['orgID', 'destinationType', 'destinationID'] as const) if (valid(k) && v[k] === '') issue(k, 'is required on an ESS');
    if (valid('communicationProtocol') && v.communicationProtocol === 'http,mqtt')
      issue('communicationProtocol', 'an ESS uses exactly one protocol: http or mqtt');
    if (valid('communicationProtocol') && v.communicationProtocol === 'http') {
      if (valid('httpCSSHost') && v.httpCSSHost === '') issue('httpCSSHost', 'is required on an ESS that talks http');
      if (valid('httpCSSPort') && v.httpCSSPort === 0) issue('httpCSSPort', 'is required on an ESS that talks http');
    }
    if (valid('storageProvider') && v.storageProvider === 'mongo') issue('storageProvider', 'mongo is for a CSS; an ESS stores on sqlite');
  }

  // Only an ESS receives objects whose data it could write to a file.
  if (css && valid('destinationDataDirs') && v.destinationDataDirs.trim() !== '') issue('destinationDataDirs', 'is for an ESS (a CSS writes no destination files)');

  if (valid('serverCertificate', 'serverKey')) {
    const cert = v.serverCertificate !== '';
    const key = v.serverKey !== '';
    if (cert && !key) issue('serverKey', 'is required when serverCertificate is set');
    if (key && !cert) issue('serverCertificate', 'is required when serverKey is set');
    const secure = v.listeningType === 'secure' || v.listeningType === 'both';
    if (css && valid('listeningType') && secure && !cert && !key)
      issue('listeningType', `${v.listeningType ?? ''} on a CSS needs serverCertificate and serverKey`);
  }

  if (valid('listeningType') && isUnix(v.listeningType)) {
    if (css) issue('listeningType', `${v.listeningType ?? ''} is for an ESS only`);
    if (valid('listeningAddress') && (v.listeningAddress ?? '') === '') issue('listeningAddress', 'must name the socket file when listening on a unix socket');
  }

  // The dummy authenticator accepts anyone: it may only be reachable from this machine (DESIGN.md).
  if (valid('authenticationHandler', 'listeningType', 'listeningAddress') && v.authenticationHandler === 'dummy' && !isUnix(v.listeningType)) {
    const address = v.listeningAddress ?? DEFAULT_LISTENING_ADDRESS;
    if (!LOOPBACK.test(address)) issue('authenticationHandler', `dummy accepts anyone, so it listens on loopback only, not on ${JSON.stringify(address)}`);
  }

  if (valid('authenticationHandler', 'externalAuthUrl') && v.authenticationHandler === 'external' && v.externalAuthUrl === '')
    issue('externalAuthUrl', 'is required when authenticationHandler is external: the identity service to ask');

  // [ref config.go] a password without a user name cannot authenticate; the reference refuses it too.
  if (valid('communicationProtocol', 'mqttUserName', 'mqttPassword') && v.communicationProtocol.includes('mqtt') && v.mqttPassword !== '' && v.mqttUserName === '')
    issue('mqttUserName', 'is required when mqttPassword is set');
  mqttChecks(v, valid, issue, css, ess);

  // The reference silently skips Mongo auth unless both are set; we say so instead.
  if (valid('mongoUsername', 'mongoPassword') && (v.mongoUsername === '') !== (v.mongoPassword === ''))
    issue(v.mongoUsername === '' ? 'mongoUsername' : 'mongoPassword', 'mongoUsername and mongoPassword go together');
}

/** The listening type `finish` derives when none is set. */
function listeningTypeOf(v: Fields): ListeningType {
  return v.listeningType ?? (v.nodeType === 'CSS' ? (v.serverCertificate !== '' && v.serverKey !== '' ? 'secure' : 'unsecure') : 'secure');
}

/** A CSS that talks MQTT without a broker address runs the embedded broker. */
export function usesEmbeddedBroker(c: Pick<Config, 'nodeType' | 'communicationProtocol' | 'brokerAddress'>): boolean {
  return c.nodeType === 'CSS' && c.communicationProtocol.includes('mqtt') && c.brokerAddress === '';
}

/** The MQTT rules (see crossChecks). */
function mqttChecks(v: Fields, valid: (...keys: ConfigKey[]) => boolean, issue: (key: ConfigKey, message: string) => void, css: boolean, ess: boolean): void {
  if (valid('mqttSSLCert', 'mqttSSLKey') && (v.mqttSSLCert === '') !== (v.mqttSSLKey === ''))
    issue(v.mqttSSLCert === '' ? 'mqttSSLCert' : 'mqttSSLKey', 'mqttSSLCert and mqttSSLKey go together');
  // [ref mqttCommunication newTLSConfig] the reference ignores it on a CSS with an error line; we refuse to start instead.
  const mqtt = valid('communicationProtocol') && v.communicationProtocol.includes('mqtt');
  if (ess && mqtt && valid('brokerAddress') && v.brokerAddress === '') issue('brokerAddress', 'is required on an ESS that talks mqtt');
  const embedded = css && mqtt && valid('brokerAddress') && (v.brokerAddress ?? '') === '';
  if (!embedded || !valid('embeddedBrokerPort', 'embeddedBrokerTlsPort')) return;
  if (v.embeddedBrokerTlsPort !== 0 && valid('serverCertificate', 'serverKey') && (v.serverCertificate === '' || v.serverKey === ''))
    issue('embeddedBrokerTlsPort', 'the embedded broker\'s TLS listener uses the node\'s server certificate: set serverCertificate and serverKey');
  if (v.embeddedBrokerPort !== 0 && v.embeddedBrokerPort === v.embeddedBrokerTlsPort)
    issue('embeddedBrokerTlsPort', `must differ from embeddedBrokerPort (${v.embeddedBrokerPort})`);
  if (!valid('listeningType', 'secureListeningPort', 'unsecureListeningPort')) return;
  const type = listeningTypeOf(v);
  const http = [
    ...(type === 'unsecure' || type === 'both' ? [['unsecureListeningPort', v.unsecureListeningPort] as const] : []),
    ...(type === 'secure' || type === 'both' ? [['secureListeningPort', v.secureListeningPort] as const] : []),
  ];
  for (const key of ['embeddedBrokerPort', 'embeddedBrokerTlsPort'] as const) {
    const clash = http.find(([, port]) => port !== 0 && port === v[key]);
    if (clash !== undefined) issue(key, `must differ from ${clash[0]} (${clash[1]}), which the REST API listens on`);
  }
}

/** Values that depend on other keys. Runs only when every key and rule passed. */
function finish(v: Fields): Config {
  const css = v.nodeType === 'CSS';
  return {
    ...v,
    listeningType: listeningTypeOf(v),
    brokerAddress: v.brokerAddress ?? (css ? '' : 'localhost'),
    listeningAddress: v.listeningAddress ?? DEFAULT_LISTENING_ADDRESS,
    // [ref sync-protocol §7] the CSS is always Cloud/Cloud, whatever was configured.
    destinationType: css ? 'Cloud' : v.destinationType,
    destinationID: css ? 'Cloud' : v.destinationID,
  };
}

/**
 * The one schema. Input: a record of raw values keyed by field name (strings, numbers, booleans;
 * `undefined` = not set). Output: a `Config` whose paths are still as written (`loadConfig`
 * resolves them). Issue paths are `[fieldName]`.
 */
export const configSchema = fields.superRefine(crossChecks, { when: () => true }).transform(finish);

/** Per-field parsers, to check a value outside a whole-config parse (e.g. a NODE_TYPE the subcommand overrides). */
export const fieldSchemas = fields.shape;
