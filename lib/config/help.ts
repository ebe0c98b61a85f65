/**
 * What each setting means, for people: `edgesync --help` lists every flag from it, and the
 * README's configuration table is generated from it (`npm run docs:config`; a unit test checks
 * that the README holds what it generates). Names come from `KEY_NAMES` (sources.ts), defaults
 * from the schema itself (schema.ts), so neither is written twice.
 */
import { BOOLEAN_KEYS, CONFIG_KEYS, fieldSchemas, type ConfigKey } from './schema.js';
import { keyNames } from './sources.js';

type Unit = 'ms' | 's' | 'h' | 'days' | 'bytes';

interface SettingDoc {
  /** One sentence or two; Markdown code spans allowed. */
  readonly meaning: string;
  /** How a numeric value is read. */
  readonly unit?: Unit;
  /** The default in words, where it depends on other settings. Otherwise the schema's default is shown. */
  readonly default?: string;
}

/** Every setting, keyed by field name: the type makes a new setting without a line here a compile error. */
const DOCS: Readonly<Record<ConfigKey, SettingDoc>> = {
  nodeType: { meaning: 'which node to run; the `edgesync css|ess` subcommand overrides it' },
  listeningType: {
    meaning: '`secure`, `unsecure`, `both`, `unix`, `secure-unix` (the unix ones: ESS only)',
    default: 'CSS `unsecure` (`secure` with a certificate), ESS `secure`',
  },
  listeningAddress: { meaning: 'bind address (`0.0.0.0` for all), or the socket path in the unix modes', default: '`127.0.0.1`' },
  unixSocketFilePermissions: { meaning: 'mode of the unix socket file, as a quoted octal string' },
  secureListeningPort: { meaning: 'HTTPS port; 0 = a random one' },
  unsecureListeningPort: { meaning: 'HTTP port; 0 = a random one' },
  serverCertificate: { meaning: 'PEM text or file path; an ESS makes its own when unset' },
  serverKey: { meaning: 'PEM text or file path of the certificate\'s key' },
  authenticationHandler: {
    meaning:
      '`preset` (users file, hashed secrets; config/users-file.md), `dummy` (any password; loopback only) or `external` (an identity service; config/external-identity.md)',
  },
  externalAuthUrl: { meaning: 'with `external`: the identity service\'s `http(s)://` URL that credentials are POSTed to', default: '–' },
  externalAuthCACertificate: { meaning: 'PEM text or file path of the CA the identity service\'s certificate is checked against; unset = the system\'s' },
  externalAuthCacheTtl: { meaning: 'how long an accepted credential is trusted before the service is asked again (a changed secret is asked about at once); 0 = always ask', unit: 's' },
  externalAuthTimeout: { meaning: 'the longest one request to the identity service may take; no answer = 503 to the client', unit: 's' },
  loginFailureLimit: { meaning: 'failed logins per app key and per source address within `LOGIN_FAILURE_WINDOW` before logins are refused unchecked (429 with `Retry-After`; MQTT: not authorized); 0 = no throttling' },
  loginFailureWindow: { meaning: 'the sliding window of `LOGIN_FAILURE_LIMIT`', unit: 's' },
  trustedProxies: {
    meaning:
      'comma-separated networks (CIDR) of the load balancers in front of this node: from a connection out of one of them, `X-Forwarded-For` is read right to left up to the first address that is not a trusted proxy, and that address is the client for the failed-login throttle and the logs of refused logins; empty = the header is ignored (set it when scaled out, or every client is throttled as the balancer)',
    default: '–',
  },
  webhookAllowedNetworks: {
    meaning:
      'CSS: comma-separated networks (CIDR) that webhook URLs must resolve into, checked at registration and before each call; empty = any address but link-local and cloud metadata ones (always refused on a CSS). An ESS calls any URL',
    default: '–',
  },
  webhookTimeout: { meaning: 'the longest one webhook call may take, connection and answer included', unit: 's' },
  webhookMaxAttempts: { meaning: 'calls of one webhook for one object change, the first included, before the delivery is logged as failed' },
  webhookRetryDelay: { meaning: 'wait before a failed webhook call is retried; doubled before each next retry (at most 5 min)', unit: 's' },
  metricsPort: {
    meaning:
      'a second listener serving only `/metrics` (Prometheus), without authentication, for a scraper that sends no credentials; 0 = none (the API listener\'s `/metrics` asks for the sync admin\'s)',
  },
  metricsListeningAddress: { meaning: 'bind address of the `METRICS_PORT` listener; anyone who reaches it reads the metrics, org names included' },
  persistenceRootPath: { meaning: 'database, data files, certificates, users' },
  sourceDataDirs: { meaning: 'comma-separated absolute directories an object\'s `sourceDataUri` may name (symlinks resolved); empty = `sourceDataUri` is refused' },
  destinationDataDirs: { meaning: 'ESS: comma-separated absolute directories a received object\'s `destinationDataUri` may name; its data is also written there, atomically; empty = none' },
  orgID: { meaning: 'ESS: required. CSS: set = single-org mode' },
  destinationType: { meaning: 'ESS identity (required on an ESS)' },
  destinationID: { meaning: 'ESS identity (required on an ESS)' },
  communicationProtocol: {
    meaning:
      '`http`, `mqtt`, or on a CSS `http,mqtt` (both: ESS nodes of either kind). A CSS with `mqtt` and no `BROKER_ADDRESS` runs the embedded broker',
  },
  httpCSSHost: { meaning: 'where an ESS finds its CSS: host name or IP address' },
  httpCSSPort: { meaning: 'the CSS\'s port, for an ESS', default: '–' },
  httpCSSUseSSL: { meaning: 'an ESS talks HTTPS to its CSS' },
  httpCSSCACertificate: { meaning: 'PEM text or file path of the CA an ESS trusts for its CSS; unset = the system\'s' },
  httpPollingInterval: { meaning: 'the ESS\'s longest idle poll wait', unit: 's' },
  httpCSSUser: {
    meaning:
      'an ESS\'s user toward its CSS (else `cssCredentials` of its users file; else `org/type/id` with no password, what a reference CSS with `dummy` auth accepts)',
  },
  httpCSSPassword: { meaning: 'the password going with `HTTP_CSS_USER`' },
  compatibilityMode: {
    meaning:
      'our ESS speaks only the reference protocol: no long-poll (else it asks the CSS to hold an empty poll up to min(30 s, 3 × `HTTP_POLLING_INTERVAL`)), no batched acknowledgements, no inline data in polls and no early data; set it toward a reference CSS',
  },
  storageProvider: {
    meaning:
      '`sqlite` (one process), or `mongo` (CSS only: several CSS processes may share the database, see "Scale out"); the reference\'s `bolt`/`inmemory` are read as `sqlite`',
  },
  mongoAddressCsv: { meaning: 'the MongoDB to use: a `mongodb://` URI (options such as `replicaSet` included), or `host[:port]` entries separated by commas' },
  mongoDbName: { meaning: 'the database, unless the URI\'s path names one' },
  mongoAuthDbName: { meaning: 'the database that holds `MONGO_USERNAME` (the driver\'s `authSource`)' },
  mongoUsername: { meaning: 'MongoDB user; with `MONGO_PASSWORD`, both or neither' },
  mongoPassword: { meaning: 'the password going with `MONGO_USERNAME`' },
  mongoUseSSL: { meaning: 'connect to MongoDB over TLS' },
  mongoCACertificate: { meaning: 'with `MONGO_USE_SSL`: the CA of the MongoDB server\'s certificate, PEM text or a file (relative to the root path); default the system\'s CAs' },
  maxDataChunkSize: { meaning: 'copied into each object\'s `chunkSize`; the size of an ESS\'s upload chunks', unit: 'bytes' },
  resendInterval: { meaning: 'the ESS\'s retry period; the CSS\'s first retry of a failed delivery', unit: 's' },
  essPingInterval: { meaning: 'how often a registered ESS pings its CSS', unit: 'h' },
  removeESSRegistrationTime: {
    meaning: 'CSS: an ESS not heard from (registration, ping, poll, message) for this long is removed with what was queued for it; 0 = never; fractions accepted (ours)',
    unit: 'days',
  },
  objectActivationInterval: { meaning: 'how often inactive objects whose `activationTime` has come are activated', unit: 's' },
  storageMaintenanceInterval: { meaning: 'how often expired objects are removed (everywhere), inactive ESS registrations dropped and finished deletions trimmed', unit: 's' },
  shutdownQuiesceTime: { meaning: 'the longest SIGTERM waits for in-flight requests', unit: 's' },
  logLevel: { meaning: '`TRACE` … `FATAL`, `NONE`; JSON lines' },
  logTraceDestination: { meaning: '`stdout` or `file` (`LOG_ROOT_PATH`/`LOG_FILE_NAME`.log)' },
  logRootPath: { meaning: 'directory of the log file', default: '`<PERSISTENCE_ROOT_PATH>/log`' },
  logFileName: { meaning: 'log file name, without `.log`' },
  brokerAddress: {
    meaning:
      'host name or IP of the MQTT broker. On a CSS, empty = the CSS runs the embedded broker (on `EMBEDDED_BROKER_PORT`) and connects to it itself; set = an external broker (mosquitto, …) that CSS and ESS nodes share',
    default: 'CSS empty (embedded broker), ESS `localhost`',
  },
  brokerPort: { meaning: 'the external broker\'s port' },
  mqttUseSSL: { meaning: 'TLS toward an external broker' },
  mqttUserName: { meaning: 'user name toward the broker (an ESS on the embedded broker: its `org/type/id` user)' },
  mqttPassword: { meaning: 'the password going with `MQTT_USER_NAME`' },
  mqttCACertificate: { meaning: 'PEM text or file path (relative: under `PERSISTENCE_ROOT_PATH`) of the CA the broker\'s certificate must chain to' },
  mqttSSLCert: { meaning: 'PEM text or file path of a client certificate for a broker that asks for one' },
  mqttSSLKey: { meaning: 'PEM text or file path of that certificate\'s key' },
  mqttAllowInvalidCertificates: { meaning: 'an ESS accepts a broker certificate that does not verify; ignored on a CSS, as in the reference (a CSS always checks the certificate of its broker, and says so at start)' },
  mqttClientID: { meaning: 'the MQTT client id', default: '`CSS-`/`ESS-` and 19 random digits' },
  mqttBrokerConnectTimeout: { meaning: 'how long a CSS start waits for the broker before it fails; an ESS keeps trying (its health report says why), each attempt at most this long', unit: 's' },
  mqttSharedGroup: {
    meaning:
      'CSS on an external broker: the MQTT 5 shared-subscription group (`$share/{group}/…`) of the CSS processes that share the ESS nodes\' messages, each message reaching one of them; a broker without MQTT 5 or shared subscriptions gets plain ones (with a WARN: several CSS would each take every message). Empty (in the config file, or `--mqtt-shared-group=`: an empty environment variable counts as not set) = plain subscriptions at MQTT 3.1.1. Unused with the embedded broker, which serves one CSS process',
  },
  maxInflightChunks: { meaning: 'chunks a receiver asks for ahead over MQTT (1–64; the reference defaults to 1)' },
  embeddedBrokerPort: { meaning: 'CSS with the embedded broker: its TCP port, on `LISTENING_ADDRESS`; 0 = a random one' },
  embeddedBrokerTlsPort: { meaning: 'CSS with the embedded broker: a TLS port too, with the node\'s `SERVER_CERTIFICATE`; 0 = none' },
  maxRequestBodySize: { meaning: 'largest JSON body (incl. inline base64 data); 413 beyond', unit: 'bytes' },
  maxDataSize: { meaning: 'largest object data accepted from an app (API) and, on a CSS, from an ESS; 0 = no limit', unit: 'bytes' },
  otlpEndpoint: { meaning: 'traces: base URL of an OTLP/HTTP collector (spans go to `…/v1/traces`); empty = no tracing, at no cost (README "Traces")' },
  otlpTracesEndpoint: { meaning: 'traces: the full OTLP/HTTP traces URL, used as is; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`' },
  otlpHeaders: { meaning: 'traces: headers sent with each export, `key=value` pairs separated by commas, values URL-encoded (e.g. `authorization=Bearer%20TOKEN`)' },
  otelServiceName: { meaning: 'traces: the `service.name` of this node\'s spans', default: '`edgesync-css` / `edgesync-ess`' },
  traceExportDelay: { meaning: 'traces: how long finished spans wait to be exported together', unit: 'ms' },
};

const KIB = 1024;
const MIB = 1024 * KIB;

function formatValue(value: unknown, unit: Unit | undefined): string {
  if (value === undefined || value === '') return '–';
  if (typeof value === 'number' && unit === 'bytes') {
    if (value !== 0 && value % MIB === 0) return `${value / MIB} MiB`;
    if (value !== 0 && value % KIB === 0) return `${value / KIB} KiB`;
    return `${value}`;
  }
  if (typeof value === 'number' && unit !== undefined) return `${value} ${unit}`;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? `\`${value}\`` : '–';
}

/** One setting as shown to people. */
export interface SettingHelp {
  readonly key: ConfigKey;
  /** The reference's environment variable, then aliases. */
  readonly env: readonly string[];
  /** `--flag`, and `--no-flag` for a boolean. */
  readonly flags: readonly string[];
  /** The key in our config file (YAML/JSON). */
  readonly fileKey: string;
  /** The default in Markdown (code spans). */
  readonly default: string;
  readonly meaning: string;
}

/** Every setting, in schema order. */
export function settingsHelp(): SettingHelp[] {
  return CONFIG_KEYS.map((key) => {
    const names = keyNames(key);
    const doc = DOCS[key];
    const parsed = fieldSchemas[key].safeParse(undefined);
    const raw = parsed.success ? (parsed.data as unknown) : undefined;
    // The file mode is held as a number; it is written in octal.
    const value = key === 'unixSocketFilePermissions' && typeof raw === 'number' ? `0${raw.toString(8)}` : raw;
    return {
      key,
      env: names.env,
      flags: BOOLEAN_KEYS.has(key) ? [`--${names.flag}`, `--no-${names.flag}`] : [`--${names.flag}`],
      fileKey: key,
      default: doc.default ?? formatValue(value, doc.unit),
      meaning: doc.meaning,
    };
  });
}

const plain = (markdown: string): string => markdown.replace(/`/g, '');

/** The settings part of `edgesync --help`: every flag, its variable, default and meaning. */
export function flagsHelp(): string {
  const lines = [
    'Settings (flag, environment variable, config-file key; default), then what each means. A config file',
    '(--config FILE) is YAML or JSON with those keys, or the reference\'s sync.conf. Later wins:',
    'defaults < config file < environment < flags.',
  ];
  for (const s of settingsHelp()) {
    const value = BOOLEAN_KEYS.has(s.key) ? '' : ' VALUE';
    lines.push(`  ${s.flags.join(' | ')}${value}   ${s.env.join(', ')}, ${s.fileKey}; default ${plain(s.default)}`);
    lines.push(`      ${plain(s.meaning)}`);
  }
  return lines.join('\n');
}

/** The README's configuration table (Markdown). */
export function configTableMarkdown(): string {
  const escape = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = settingsHelp().map((s) => {
    const names = [...s.env, ...s.flags, s.fileKey].map((n) => `\`${n}\``).join(' / ');
    return `| ${escape(names)} | ${escape(s.default)} | ${escape(s.meaning)} |`;
  });
  return ['| Setting (env / flag / file key) | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}
