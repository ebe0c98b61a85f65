import { describe, expect, it } from '@jest/globals';
import {
  BOOLEAN_KEYS,
  CONFIG_KEYS,
  KEY_NAMES,
  fieldSchemas,
  fromEnv,
  fromFlags,
  IGNORED_REFERENCE_KEYS,
  keyNames,
  type ConfigKey,
} from '../../../lib/config/index.js';

/** One valid environment value per field and what it parses to. A new field without a sample fails to compile. */
const SAMPLES: Record<ConfigKey, readonly [string, unknown]> = {
  nodeType: ['ess', 'ESS'],
  listeningType: ['BOTH', 'both'],
  listeningAddress: ['10.0.0.1', '10.0.0.1'],
  unixSocketFilePermissions: ['0600', 0o600],
  secureListeningPort: ['9443', 9443],
  unsecureListeningPort: ['9080', 9080],
  serverCertificate: ['certs/c.pem', 'certs/c.pem'],
  serverKey: ['certs/k.pem', 'certs/k.pem'],
  authenticationHandler: ['dummy', 'dummy'],
  externalAuthUrl: ['https://idp.example.com/check', 'https://idp.example.com/check'],
  externalAuthCACertificate: ['idp-ca.pem', 'idp-ca.pem'],
  externalAuthCacheTtl: ['120', 120],
  externalAuthTimeout: ['3', 3],
  loginFailureLimit: ['5', 5],
  loginFailureWindow: ['30', 30],
  trustedProxies: ['10.1.0.0/16, fd00::/8', '10.1.0.0/16, fd00::/8'],
  webhookAllowedNetworks: ['10.0.0.0/8', '10.0.0.0/8'],
  webhookTimeout: ['3', 3],
  webhookMaxAttempts: ['2', 2],
  webhookRetryDelay: ['4', 4],
  metricsPort: ['9464', 9464],
  metricsListeningAddress: ['0.0.0.0', '0.0.0.0'],
  persistenceRootPath: ['/var/persist', '/var/persist'],
  sourceDataDirs: ['/srv/out,/srv/more', '/srv/out,/srv/more'],
  destinationDataDirs: ['/srv/in', '/srv/in'],
  orgID: ['myorg', 'myorg'],
  destinationType: ['edge', 'edge'],
  destinationID: ['node1', 'node1'],
  communicationProtocol: ['mqtt,http', 'http,mqtt'],
  httpCSSHost: ['css.example.com', 'css.example.com'],
  httpCSSPort: ['8080', 8080],
  httpCSSUseSSL: ['true', true],
  httpCSSCACertificate: ['ca.pem', 'ca.pem'],
  httpPollingInterval: ['5', 5],
  httpCSSUser: ['org1/edge/n1', 'org1/edge/n1'],
  httpCSSPassword: ['s', 's'],
  compatibilityMode: ['true', true],
  storageProvider: ['bolt', 'sqlite'],
  mongoAddressCsv: ['mongodb://db:27017', 'mongodb://db:27017'],
  mongoDbName: ['sync', 'sync'],
  mongoAuthDbName: ['auth', 'auth'],
  mongoUsername: ['u', 'u'],
  mongoPassword: ['p', 'p'],
  mongoUseSSL: ['1', true],
  mongoCACertificate: ['mca.pem', 'mca.pem'],
  maxDataChunkSize: ['122880', 122880],
  resendInterval: ['5', 5],
  essPingInterval: ['2', 2],
  removeESSRegistrationTime: ['0', 0],
  objectActivationInterval: ['60', 60],
  storageMaintenanceInterval: ['45', 45],
  shutdownQuiesceTime: ['5', 5],
  logLevel: ['WARNING', 'warn'],
  logTraceDestination: ['file', 'file'],
  logRootPath: ['/var/log/sync', '/var/log/sync'],
  logFileName: ['sync', 'sync'],
  brokerAddress: ['broker', 'broker'],
  brokerPort: ['8883', 8883],
  mqttUseSSL: ['false', false],
  mqttUserName: ['mu', 'mu'],
  mqttPassword: ['mp', 'mp'],
  mqttCACertificate: ['bca.pem', 'bca.pem'],
  mqttSSLCert: ['client.crt', 'client.crt'],
  mqttSSLKey: ['client.key', 'client.key'],
  mqttAllowInvalidCertificates: ['t', true],
  mqttClientID: ['ESS-1', 'ESS-1'],
  mqttBrokerConnectTimeout: ['30', 30],
  mqttSharedGroup: ['css-east', 'css-east'],
  maxInflightChunks: ['16', 16],
  embeddedBrokerPort: ['0', 0],
  embeddedBrokerTlsPort: ['8883', 8883],
  maxRequestBodySize: ['1048576', 1048576],
  maxDataSize: ['1000', 1000],
  otlpEndpoint: ['http://127.0.0.1:4318', 'http://127.0.0.1:4318'],
  otlpTracesEndpoint: ['http://127.0.0.1:4318/v1/traces', 'http://127.0.0.1:4318/v1/traces'],
  otlpHeaders: ['authorization=Bearer%20t,x-tenant=a', 'authorization=Bearer%20t,x-tenant=a'],
  otelServiceName: ['sync-eu', 'sync-eu'],
  traceExportDelay: ['200', 200],
};

const parseField = (key: ConfigKey, value: unknown) => fieldSchemas[key].safeParse(value);

describe('names table', () => {
  it('gives every field an env name, a flag and a properties key, none shared', () => {
    for (const key of CONFIG_KEYS) expect(keyNames(key).env.length).toBeGreaterThan(0);
    const all = (pick: (n: (typeof KEY_NAMES)[number]) => readonly string[]) => KEY_NAMES.flatMap(pick);
    for (const list of [all((n) => n.env), all((n) => [n.flag]), all((n) => n.props)]) expect(new Set(list).size).toBe(list.length);
    expect(KEY_NAMES.map((n) => n.key).sort()).toEqual([...CONFIG_KEYS].sort());
  });
});

describe('fromEnv', () => {
  it.each(KEY_NAMES.flatMap((n) => n.env.map((env) => [env, n.key] as const)))('maps %s to %s', (env, key) => {
    const [raw, expected] = SAMPLES[key];
    const got = fromEnv({ [env]: raw }).values[key];
    expect(got).toEqual({ value: raw, origin: { source: 'env', key: env } });
    expect(parseField(key, raw)).toEqual({ success: true, data: expected });
  });

  it('treats an empty variable as not set', () => {
    expect(fromEnv({ ORG_ID: '', UNSECURE_LISTENING_PORT: '' }).values).toEqual({});
  });

  it('prefers the reference name over an alias', () => {
    expect(fromEnv({ MONGO_SSL_CA_FILE: 'a', MONGO_CA_CERTIFICATE: 'b' }).values.mongoCACertificate?.value).toBe('b');
    expect(fromEnv({ MONGO_SSL_CA_FILE: 'a' }).values.mongoCACertificate?.origin.key).toBe('MONGO_SSL_CA_FILE');
  });

  it('reports reference settings it does not use', () => {
    const r = fromEnv({ OBJECTS_DATA_PATH: '/x', TRACE_LEVEL: 'DEBUG', LEADERSHIP_TIMEOUT: '' });
    expect(r.ignored.map((o) => o.key).sort()).toEqual(['OBJECTS_DATA_PATH', 'TRACE_LEVEL']);
    expect(r.issues).toEqual([]);
  });

  it('reads the reference\'s MQTT settings that used to be ignored as real settings', () => {
    const env = { MQTT_CLIENT_ID: 'c', MQTT_SSL_CERT: 'a', MQTT_SSL_KEY: 'b', MQTT_ALLOW_INVALID_CERTIFICATES: 'true', MQTT_BROKER_CONNECT_TIMEOUT: '9', MAX_INFLIGHT_CHUNKS: '4' };
    const r = fromEnv(env);
    expect(r.ignored).toEqual([]);
    expect(Object.keys(r.values).sort()).toEqual(['maxInflightChunks', 'mqttAllowInvalidCertificates', 'mqttBrokerConnectTimeout', 'mqttClientID', 'mqttSSLCert', 'mqttSSLKey']);
    const ignoredEnv = new Set(IGNORED_REFERENCE_KEYS.map(([, e]) => e));
    for (const name of Object.keys(env)) expect(ignoredEnv.has(name)).toBe(false);
  });
});

describe('Go ParseBool spellings', () => {
  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('reads %s as true', (s) => {
    expect(parseField('mqttUseSSL', s)).toEqual({ success: true, data: true });
  });
  it.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('reads %s as false', (s) => {
    expect(parseField('httpCSSUseSSL', s)).toEqual({ success: true, data: false });
  });
  it.each(['yes', 'no', 'on', 'TRue', '2', ''])('rejects %j', (s) => {
    const r = parseField('mongoUseSSL', s);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/must be a boolean/);
  });
});

describe('fromFlags', () => {
  it('takes --flag value and --flag=value', () => {
    const r = fromFlags(['--org-id', 'myorg', '--unsecure-listening-port=9090', '--listening-address', '']);
    expect(r.issues).toEqual([]);
    expect(r.values.orgID).toEqual({ value: 'myorg', origin: { source: 'flag', key: '--org-id' } });
    expect(r.values.unsecureListeningPort?.value).toBe('9090');
    expect(r.values.listeningAddress?.value).toBe('');
  });

  it('takes booleans as --x, --no-x and --x=value, never eating the next word', () => {
    const r = fromFlags(['--mongo-use-ssl', '--no-mqtt-use-ssl', '--http-css-use-ssl=F', '--org-id', 'o']);
    expect(r.issues).toEqual([]);
    expect(r.values.mongoUseSSL?.value).toBe(true);
    expect(r.values.mqttUseSSL).toEqual({ value: false, origin: { source: 'flag', key: '--no-mqtt-use-ssl' } });
    expect(r.values.httpCSSUseSSL?.value).toBe('F');
    expect(r.values.orgID?.value).toBe('o');
    expect([...BOOLEAN_KEYS].every((k) => fromFlags([`--${keyNames(k).flag}`]).values[k]?.value === true)).toBe(true);
  });

  it('reads --config and -c', () => {
    expect(fromFlags(['--config', 'a.yaml']).configFile?.path).toBe('a.yaml');
    expect(fromFlags(['--config=b.json']).configFile?.path).toBe('b.json');
    expect(fromFlags(['-c', 'c.conf']).configFile).toEqual({ path: 'c.conf', origin: { source: 'flag', key: '-c' } });
  });

  it('reports unknown flags, with a suggestion when one is close', () => {
    const r = fromFlags(['--bogus', '--orgid=x', '--no-org-id', '-x']);
    expect(r.issues).toEqual([
      { key: '--bogus', message: 'unknown flag', where: 'command line' },
      { key: '--orgid', message: 'unknown flag; did you mean --org-id?', where: 'command line' },
      { key: '--no-org-id', message: 'unknown flag; did you mean --org-id?', where: 'command line' },
      { key: '-x', message: 'unknown flag', where: 'command line' },
    ]);
  });

  it('reports missing values, stray words and a value on --no-x', () => {
    const r = fromFlags(['stray', '--no-mongo-use-ssl=1', '--org-id', '--log-level', '--config']);
    expect(r.issues.map((i) => `${i.key}: ${i.message}`)).toEqual([
      'stray: unexpected argument',
      '--no-mongo-use-ssl: takes no value',
      '--org-id: needs a value',
      '--log-level: needs a value',
      '--config: needs a file path',
    ]);
  });
});
