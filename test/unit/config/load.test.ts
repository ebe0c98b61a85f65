import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, loadConfigReport, usesEmbeddedBroker, type ConfigIssue, type LoadConfigOptions } from '../../../lib/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'edgesync-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes a config file in the temp dir and returns its path. */
function file(ext: string, text: string): string {
  const path = join(dir, `c${n++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

const load = (o: Partial<LoadConfigOptions>) => loadConfig({ argv: [], env: {}, cwd: dir, ...o });

/** The issues a failing load reports. */
function issuesOf(o: Partial<LoadConfigOptions>): ConfigIssue[] {
  try {
    load(o);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  throw new Error('expected a ConfigError');
}
const keysOf = (o: Partial<LoadConfigOptions>) => issuesOf(o).map((i) => i.key);

const ESS_ENV = { NODE_TYPE: 'ESS', ORG_ID: 'myorg', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'node1', HTTP_CSS_HOST: 'localhost', HTTP_CSS_PORT: '8080' };

describe('defaults', () => {
  it('makes a loopback, unsecure, sqlite, preset-auth CSS', () => {
    const c = load({});
    expect(c).toMatchObject({
      nodeType: 'CSS',
      listeningType: 'unsecure',
      listeningAddress: '127.0.0.1',
      unsecureListeningPort: 8080,
      secureListeningPort: 8443,
      authenticationHandler: 'preset',
      communicationProtocol: 'http',
      storageProvider: 'sqlite',
      destinationType: 'Cloud',
      destinationID: 'Cloud',
      orgID: '',
      unixSocketFilePermissions: 0o660,
      maxDataChunkSize: 5 * 1024 * 1024,
      maxRequestBodySize: 64 * 1024 * 1024,
      maxDataSize: 0,
      logLevel: 'info',
      logTraceDestination: 'stdout',
      mqttUseSSL: true,
      brokerPort: 1883,
      shutdownQuiesceTime: 60,
    });
    expect(c.persistenceRootPath).toBe(join(dir, 'data'));
    expect(c.logRootPath).toBe(join(dir, 'data', 'log'));
  });

  it('listens securely on a CSS that has a certificate pair, and on any ESS', () => {
    expect(load({ env: { SERVER_CERTIFICATE: 'c.pem', SERVER_KEY: 'k.pem' } }).listeningType).toBe('secure');
    expect(load({ env: ESS_ENV }).listeningType).toBe('secure');
  });

  it('accepts port 0 (random)', () => {
    expect(load({ argv: ['--unsecure-listening-port', '0'] }).unsecureListeningPort).toBe(0);
  });
});

describe('precedence: default < file < env < flag', () => {
  const path = file('yaml', 'unsecureListeningPort: 1001\nlogLevel: debug\n');
  const cases: [string[], Record<string, string>, number][] = [
    [[], {}, 8080],
    [['--config', path], {}, 1001],
    [['--config', path], { UNSECURE_LISTENING_PORT: '1002' }, 1002],
    [['--config', path, '--unsecure-listening-port=1003'], { UNSECURE_LISTENING_PORT: '1002' }, 1003],
  ];
  it.each(cases)('argv %j env %j -> %d', (argv, env, port) => {
    const c = load({ argv: [...argv], env });
    expect(c.unsecureListeningPort).toBe(port);
    expect(c.logLevel).toBe(argv.length > 0 ? 'debug' : 'info');
  });

  it('reports where each value came from', () => {
    const r = loadConfigReport({ argv: ['-c', path, '--org-id', 'o'], env: { LOG_LEVEL: 'ERROR' }, cwd: dir });
    expect(r.configFile).toBe(path);
    expect(r.origins.unsecureListeningPort).toEqual({ source: 'file', key: 'unsecureListeningPort', file: path });
    expect(r.origins.logLevel).toEqual({ source: 'env', key: 'LOG_LEVEL' });
    expect(r.origins.orgID).toEqual({ source: 'flag', key: '--org-id' });
    expect(r.config.logLevel).toBe('error');
  });
});

describe('config files', () => {
  const expected = { nodeType: 'ESS', orgID: 'myorg', destinationID: 'node1', httpCSSPort: 8080, mongoUseSSL: false, storageProvider: 'sqlite' };

  it('reads YAML, JSON and the reference properties format alike', () => {
    const yaml = file('yml', 'nodeType: ESS\norgID: myorg\ndestinationType: edge\ndestinationID: node1\nhttpCSSHost: localhost\nhttpCSSPort: 8080\nmongoUseSSL: false\nlogRootPath:\n');
    const json = file('json', JSON.stringify({ nodeType: 'ESS', orgID: 'myorg', destinationType: 'edge', destinationID: 'node1', httpCSSHost: 'localhost', httpCSSPort: '8080', mongoUseSSL: 'false' }));
    const conf = file(
      'conf',
      [
        '# sync.conf written for the reference',
        'NodeType ESS',
        'OrgID myorg',
        'DestinationType edge',
        'DestinationId node1',
        'HTTPCSSHost localhost',
        'HTTPCSSPort 8080',
        '  # an indented comment',
        'MongoUseSSL F',
        'StorageProvider inmemory',
        'MQTTClientId',
        'LeadershipTimeout 30',
        '',
      ].join('\n'),
    );
    for (const path of [yaml, json, conf]) expect(load({ argv: ['--config', path] })).toMatchObject(expected);
    expect(loadConfigReport({ argv: ['-c', conf], env: {}, cwd: dir }).ignored).toEqual([{ source: 'file', key: 'LeadershipTimeout', file: `${conf}:12` }]);
  });

  it('joins a properties value the way the reference does', () => {
    const conf = file('conf', 'CommunicationProtocol http, mqtt\n');
    expect(load({ argv: ['-c', conf] }).communicationProtocol).toBe('http,mqtt');
  });

  it('reports unknown and repeated keys, naming them as written', () => {
    const conf = file('conf', 'NodeType CSS\nNodeType ESS\nOrgid x\nFrobnicate 1\n');
    expect(issuesOf({ argv: ['-c', conf] })).toEqual([
      { key: 'NodeType', message: 'appears twice in the file', where: `config file ${conf}:2` },
      { key: 'Orgid', message: 'unknown key; did you mean OrgID?', where: `config file ${conf}:3` },
      { key: 'Frobnicate', message: 'unknown key', where: `config file ${conf}:4` },
    ]);
    const yaml = file('yaml', 'OrgID: x\nlistenPort: 1\n');
    expect(issuesOf({ argv: ['-c', yaml] }).map((i) => i.message)).toEqual(['unknown key; did you mean orgID?', 'unknown key']);
  });

  it('reports unreadable, malformed and unsupported files', () => {
    expect(issuesOf({ argv: ['-c', 'missing.yaml'] })[0]?.message).toMatch(/cannot read the config file/);
    expect(issuesOf({ argv: ['-c', file('yaml', 'a: [\n')] })[0]?.message).toMatch(/invalid YAML/);
    expect(issuesOf({ argv: ['-c', file('yaml', 'a: 1\na: 2\n')] })[0]?.message).toMatch(/invalid YAML/);
    expect(issuesOf({ argv: ['-c', file('json', '{')] })[0]?.message).toMatch(/invalid JSON/);
    expect(issuesOf({ argv: ['-c', file('json', '[1]')] })[0]?.message).toBe('must be a mapping of keys to values');
    expect(issuesOf({ argv: ['-c', file('toml', 'a = 1')] })[0]?.message).toMatch(/must end in .yaml/);
  });

  it('loads the example files', () => {
    const example = (name: string) => fileURLToPath(new URL(`../../../config/${name}`, import.meta.url));
    const css = loadConfig({ argv: ['--config', example('css.yaml')], env: {}, mode: 'CSS' });
    expect(css).toMatchObject({ nodeType: 'CSS', listeningType: 'unsecure', unsecureListeningPort: 8080 });
    const ess = loadConfig({ argv: ['--config', example('ess.yaml')], env: {}, mode: 'ESS' });
    expect(ess).toMatchObject({ nodeType: 'ESS', orgID: 'myorg', destinationType: 'edge', destinationID: 'node1', listeningType: 'secure' });
  });
});

describe('errors', () => {
  it('reports every invalid key at once, named as the user wrote it', () => {
    const path = file('yaml', 'resendInterval: 0\nlistenngAddress: x\n');
    let error: unknown;
    try {
      load({ argv: ['-c', path, '--log-level=loud', '--max-data-chunk-size', '10'], env: { UNSECURE_LISTENING_PORT: 'abc', NODE_TYPE: 'foo', HTTP_CSS_USE_SSL: 'yes' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.issues.map((i) => i.key).sort()).toEqual(
      ['--log-level', '--max-data-chunk-size', 'HTTP_CSS_USE_SSL', 'NODE_TYPE', 'UNSECURE_LISTENING_PORT', 'listenngAddress', 'resendInterval'].sort(),
    );
    expect(e.message.split('\n')).toHaveLength(1 + e.issues.length);
    expect(e.message).toContain('UNSECURE_LISTENING_PORT (environment): must be an integer, got "abc"');
    expect(e.message).toContain('NODE_TYPE (environment): must be one of CSS, ESS; got "foo"');
    expect(e.message).toContain('--max-data-chunk-size (command line): must be between 1024');
    expect(e.message).toContain(`resendInterval (config file ${path}): must be between 1 and 3600, got 0`);
  });

  it('never falls back on garbage numbers', () => {
    for (const bad of ['abc', '8080.5', '', '0x50', '65536', '-1']) {
      expect(keysOf({ argv: [`--unsecure-listening-port=${bad}`] })).toEqual(['--unsecure-listening-port']);
    }
  });

  it('names a missing DESTINATION_ID on an ESS', () => {
    const { DESTINATION_ID: _omitted, ...env } = ESS_ENV;
    const issues = issuesOf({ env });
    expect(issues).toEqual([{ key: 'DESTINATION_ID', message: expect.stringMatching(/^is required on an ESS \(set DESTINATION_ID, --destination-id or destinationID/) }]);
  });

  it('names a missing key in the file format when a file is used', () => {
    const conf = file('conf', 'NodeType ESS\nOrgID o\nDestinationType t\nHTTPCSSHost h\nHTTPCSSPort 1\n');
    expect(keysOf({ argv: ['-c', conf] })).toEqual(['DestinationID']);
  });

  it('lets the subcommand override NODE_TYPE, yet reports a bad one', () => {
    expect(load({ env: { ...ESS_ENV, NODE_TYPE: 'CSS' }, mode: 'ESS' }).nodeType).toBe('ESS');
    expect(load({ env: { NODE_TYPE: 'ESS' }, mode: 'CSS' }).nodeType).toBe('CSS');
    expect(keysOf({ env: { NODE_TYPE: 'foo' }, mode: 'CSS' })).toEqual(['NODE_TYPE']);
  });

  it('enforces the cross-key rules', () => {
    expect(keysOf({ env: { LISTENING_TYPE: 'unix', LISTENING_ADDRESS: 's.sock' } })).toEqual(['LISTENING_TYPE']);
    expect(keysOf({ env: { LISTENING_TYPE: 'secure' } })).toEqual(['LISTENING_TYPE']);
    expect(keysOf({ env: { SERVER_CERTIFICATE: 'c.pem' } })).toEqual(['SERVER_KEY']);
    expect(keysOf({ env: { ...ESS_ENV, COMMUNICATION_PROTOCOL: 'http,mqtt' } })).toEqual(['COMMUNICATION_PROTOCOL']);
    expect(keysOf({ env: { ...ESS_ENV, STORAGE_PROVIDER: 'mongo' } })).toEqual(['STORAGE_PROVIDER']);
    expect(keysOf({ env: { ...ESS_ENV, LISTENING_TYPE: 'unix' } })).toEqual(['LISTENING_ADDRESS']);
    expect(keysOf({ env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '0.0.0.0' } })).toEqual(['AUTHENTICATION_HANDLER']);
    expect(keysOf({ env: { MONGO_USERNAME: 'u' } })).toEqual(['MONGO_PASSWORD']);
    expect(keysOf({ env: { COMMUNICATION_PROTOCOL: 'mqtt', MQTT_PASSWORD: 'p' } })).toEqual(['MQTT_USER_NAME']);
    expect(keysOf({ env: { COMMUNICATION_PROTOCOL: 'wiotp' } })).toEqual(['COMMUNICATION_PROTOCOL']);
    expect(load({ env: { AUTHENTICATION_HANDLER: 'dummy' } }).authenticationHandler).toBe('dummy');
  });

  it('runs cross-key rules even when another key failed', () => {
    expect(keysOf({ env: { ...ESS_ENV, DESTINATION_ID: '', HTTP_CSS_PORT: 'x', ORG_ID: 'a b' } }).sort()).toEqual(['DESTINATION_ID', 'HTTP_CSS_PORT', 'ORG_ID']);
  });
});

describe('paths and mapped values', () => {
  it('resolves certificate files and a unix socket under persistenceRootPath, leaving PEM text alone', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const c = load({ env: { ...ESS_ENV, PERSISTENCE_ROOT_PATH: 'p', SERVER_CERTIFICATE: 'certs/c.pem', SERVER_KEY: '/abs/k.pem', HTTP_CSS_CA_CERTIFICATE: pem, LISTENING_TYPE: 'unix', LISTENING_ADDRESS: 'ess.sock' } });
    expect(c.persistenceRootPath).toBe(join(dir, 'p'));
    expect(c.serverCertificate).toBe(join(dir, 'p', 'certs', 'c.pem'));
    expect(c.serverKey).toBe('/abs/k.pem');
    expect(c.httpCSSCACertificate).toBe(pem);
    expect(c.listeningAddress).toBe(join(dir, 'p', 'ess.sock'));
  });

  it('maps reference values to ours', () => {
    expect(load({ env: { STORAGE_PROVIDER: 'Bolt', LOG_LEVEL: 'warning', COMMUNICATION_PROTOCOL: 'MQTT, http' } })).toMatchObject({
      storageProvider: 'sqlite',
      logLevel: 'warn',
      communicationProtocol: 'http,mqtt',
    });
    expect(load({ env: { LOG_LEVEL: 'none' } }).logLevel).toBe('silent');
  });

  it('forces Cloud/Cloud on a CSS', () => {
    expect(load({ env: { DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n' } })).toMatchObject({ destinationType: 'Cloud', destinationID: 'Cloud' });
  });

  it('never echoes a rejected secret', () => {
    const issues = issuesOf({ argv: ['-c', file('yaml', 'mongoPassword: 123456\n')] });
    expect(issues).toEqual([{ key: 'mongoPassword', message: 'must be a string, got a number (quote it in YAML)', where: expect.any(String) }]);
  });

  it('wants a quoted octal socket mode in YAML', () => {
    expect(keysOf({ argv: ['-c', file('yaml', 'unixSocketFilePermissions: 0660\n')] })).toEqual(['unixSocketFilePermissions']);
    expect(load({ argv: ['-c', file('yaml', 'unixSocketFilePermissions: "0600"\n')] }).unixSocketFilePermissions).toBe(0o600);
  });
});

describe('MQTT settings', () => {
  const ESS_MQTT = { ...ESS_ENV, COMMUNICATION_PROTOCOL: 'mqtt' };

  it('defaults: a CSS runs the embedded broker on 1883 without TLS; an ESS dials localhost, as the reference', () => {
    const css = load({ env: { COMMUNICATION_PROTOCOL: 'mqtt' } });
    expect(css).toMatchObject({ brokerAddress: '', embeddedBrokerPort: 1883, embeddedBrokerTlsPort: 0, maxInflightChunks: 8, mqttBrokerConnectTimeout: 300, mqttClientID: '', mqttAllowInvalidCertificates: false, mqttSSLCert: '', mqttSSLKey: '' });
    expect(usesEmbeddedBroker(css)).toBe(true);
    const ess = load({ env: ESS_MQTT });
    expect(ess.brokerAddress).toBe('localhost');
    expect(usesEmbeddedBroker(ess)).toBe(false);
    // A CSS that talks http only runs no broker; one given a broker address uses that broker.
    expect(usesEmbeddedBroker(load({}))).toBe(false);
    expect(usesEmbeddedBroker(load({ env: { COMMUNICATION_PROTOCOL: 'http,mqtt', BROKER_ADDRESS: 'mosquitto.example.com' } }))).toBe(false);
    expect(usesEmbeddedBroker(load({ env: { COMMUNICATION_PROTOCOL: 'http,mqtt' } }))).toBe(true);
  });

  it('reads the reference\'s MQTT keys from a sync.conf', () => {
    const conf = file(
      'conf',
      ['NodeType ESS', 'OrgID myorg', 'DestinationType edge', 'DestinationID node1', 'CommunicationProtocol mqtt', 'BrokerAddress 10.0.0.5', 'MQTTClientId ess-7',
        'MQTTSSLCert certs/c.pem', 'MQTTSSLKey certs/k.pem', 'MQTTAllowInvalidCertificates true', 'MQTTBrokerConnectTimeout 60', 'MaxInflightChunks 4', ''].join('\n'),
    );
    const r = loadConfigReport({ argv: ['-c', conf], env: {}, cwd: dir });
    expect(r.ignored).toEqual([]);
    expect(r.config).toMatchObject({
      brokerAddress: '10.0.0.5',
      mqttClientID: 'ess-7',
      // Relative certificate paths are under the persistence root, as the reference reads them.
      mqttSSLCert: join(dir, 'data', 'certs', 'c.pem'),
      mqttSSLKey: join(dir, 'data', 'certs', 'k.pem'),
      mqttAllowInvalidCertificates: true,
      mqttBrokerConnectTimeout: 60,
      maxInflightChunks: 4,
    });
  });

  it('refuses values out of range, with the range', () => {
    const issues = issuesOf({ env: { MAX_INFLIGHT_CHUNKS: '0', MQTT_BROKER_CONNECT_TIMEOUT: '0', EMBEDDED_BROKER_PORT: '70000', EMBEDDED_BROKER_TLS_PORT: '-1' } });
    expect(issues.map((i) => [i.key, i.message]).sort()).toEqual([
      ['EMBEDDED_BROKER_PORT', 'must be between 0 and 65535, got 70000'],
      ['EMBEDDED_BROKER_TLS_PORT', 'must be between 0 and 65535, got -1'],
      ['MAX_INFLIGHT_CHUNKS', 'must be between 1 and 64, got 0'],
      ['MQTT_BROKER_CONNECT_TIMEOUT', 'must be between 1 and 86400, got 0'],
    ]);
    expect(keysOf({ env: { MAX_INFLIGHT_CHUNKS: '65' } })).toEqual(['MAX_INFLIGHT_CHUNKS']);
    expect(keysOf({ env: { BROKER_ADDRESS: 'mqtt://broker:1883' } })).toEqual(['BROKER_ADDRESS']);
  });

  it('enforces the MQTT cross-key rules', () => {
    expect(keysOf({ env: { ...ESS_MQTT, MQTT_SSL_CERT: 'c.pem' } })).toEqual(['MQTT_SSL_KEY']);
    // A reference CSS config that sets it still loads: the CSS ignores it, as the reference does.
    expect(load({ env: { MQTT_ALLOW_INVALID_CERTIFICATES: 'true' } }).nodeType).toBe('CSS');
    expect(load({ env: { ...ESS_MQTT, MQTT_ALLOW_INVALID_CERTIFICATES: 'true' } }).mqttAllowInvalidCertificates).toBe(true);
    expect(keysOf({ argv: ['-c', file('yaml', 'nodeType: ESS\norgID: o\ndestinationType: t\ndestinationID: i\ncommunicationProtocol: mqtt\nbrokerAddress: ""\n')] })).toEqual(['brokerAddress']);
    // The embedded broker's TLS listener needs the node's certificate, and its own ports.
    const embedded = { COMMUNICATION_PROTOCOL: 'mqtt' };
    expect(keysOf({ env: { ...embedded, EMBEDDED_BROKER_TLS_PORT: '8883' } })).toEqual(['EMBEDDED_BROKER_TLS_PORT']);
    expect(load({ env: { ...embedded, EMBEDDED_BROKER_TLS_PORT: '8883', SERVER_CERTIFICATE: 'c.pem', SERVER_KEY: 'k.pem' } }).embeddedBrokerTlsPort).toBe(8883);
    expect(keysOf({ env: { ...embedded, EMBEDDED_BROKER_TLS_PORT: '1883', SERVER_CERTIFICATE: 'c.pem', SERVER_KEY: 'k.pem' } })).toEqual(['EMBEDDED_BROKER_TLS_PORT']);
    expect(issuesOf({ env: { ...embedded, EMBEDDED_BROKER_PORT: '8080' } })).toEqual([
      { key: 'EMBEDDED_BROKER_PORT', message: 'must differ from unsecureListeningPort (8080), which the REST API listens on', where: 'environment' },
    ]);
    // Ports of a broker that does not run are not checked.
    expect(load({ env: { EMBEDDED_BROKER_PORT: '8080' } }).embeddedBrokerPort).toBe(8080);
    expect(load({ env: { ...embedded, EMBEDDED_BROKER_PORT: '0', EMBEDDED_BROKER_TLS_PORT: '0' } }).embeddedBrokerPort).toBe(0);
  });

  it('takes MQTT_SHARED_GROUP as one topic level (edgesync-css by default, empty for plain subscriptions) and names any other', () => {
    expect(load({}).mqttSharedGroup).toBe('edgesync-css');
    expect(load({ env: { MQTT_SHARED_GROUP: 'css-east' } }).mqttSharedGroup).toBe('css-east');
    // Empty from a file or a flag: an empty environment variable counts as not set.
    expect(load({ argv: ['-c', file('yaml', "mqttSharedGroup: ''\n")] }).mqttSharedGroup).toBe('');
    expect(load({ argv: ['--mqtt-shared-group='] }).mqttSharedGroup).toBe('');
    for (const bad of ['a/b', 'css+', '#']) {
      expect(issuesOf({ env: { MQTT_SHARED_GROUP: bad } }).map((i) => [i.key, i.message])).toEqual([
        ['MQTT_SHARED_GROUP', expect.stringMatching(/must be one MQTT topic level without '\/', '\+' or '#'/)],
      ]);
    }
  });
});

