/**
 * TLS material for a connection to an MQTT broker, as the reference's MQTT_CA_CERTIFICATE,
 * MQTT_SSL_CERT and MQTT_SSL_KEY take it: each is PEM text or the path of a PEM file, a relative
 * path being under the persistence root. [ref mqttCommunication newTLSConfig]
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

/** TLS settings that cannot be used: an unreadable file, text that is not PEM, a key that does not fit. */
export class MqttTlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MqttTlsError';
  }
}

export interface MqttTlsSettings {
  /** CA certificate(s) the broker's certificate must chain to; absent: the system's CAs. */
  ca?: string;
  /** Client certificate (chain) for brokers that ask for one; needs `clientKey`. */
  clientCert?: string;
  clientKey?: string;
  /** Where relative paths are (the persistence root). */
  baseDir?: string;
}

/** What the mqtt.js client takes. */
export interface MqttTlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function pemOrFile(value: string, what: string, baseDir: string | undefined): Promise<string> {
  if (value.includes('-----BEGIN ')) return value;
  const path = isAbsolute(value) || baseDir === undefined ? value : join(baseDir, value);
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new MqttTlsError(`Cannot read the MQTT ${what} file ${path}: ${reason(e)}`);
  }
}

/**
 * Reads and checks the material, so that a mistake is reported at start and not as a TLS
 * failure on every reconnect.
 * @throws MqttTlsError
 */
export async function loadMqttTls(settings: MqttTlsSettings): Promise<MqttTlsMaterial> {
  const out: MqttTlsMaterial = {};
  if (settings.ca !== undefined && settings.ca !== '') {
    out.ca = await pemOrFile(settings.ca, 'CA certificate', settings.baseDir);
    try {
      new X509Certificate(out.ca);
    } catch (e) {
      throw new MqttTlsError(`The MQTT CA certificate is not a PEM X.509 certificate: ${reason(e)}`);
    }
  }
  const hasCert = settings.clientCert !== undefined && settings.clientCert !== '';
  const hasKey = settings.clientKey !== undefined && settings.clientKey !== '';
  if (hasCert !== hasKey) throw new MqttTlsError('The MQTT client certificate and key go together: give both or neither');
  if (hasCert && hasKey) {
    const cert = await pemOrFile(settings.clientCert!, 'client certificate', settings.baseDir);
    const key = await pemOrFile(settings.clientKey!, 'client key', settings.baseDir);
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch (e) {
      throw new MqttTlsError(`The MQTT client certificate is not a PEM X.509 certificate: ${reason(e)}`);
    }
    try {
      if (!x509.checkPrivateKey(createPrivateKey(key))) throw new MqttTlsError('The MQTT client key does not match the client certificate');
    } catch (e) {
      if (e instanceof MqttTlsError) throw e;
      throw new MqttTlsError(`The MQTT client key is not an unencrypted PEM private key: ${reason(e)}`);
    }
    out.cert = cert;
    out.key = key;
  }
  return out;
}
