/**
 * From the reference's MONGO_* settings to a driver connection. MONGO_ADDRESS_CSV is read the
 * two ways the reference reads it: a `mongodb://` (or `mongodb+srv://`) URI, as its current
 * driver takes it, or a comma-separated list of `host[:port]`, as its older mgo code split it.
 * [ref core/storage/mongoStorage.go Init]
 */
import type { MongoClientOptions } from 'mongodb';
import { BadRequestError } from '../../model/index.js';

export interface MongoSettings {
  /** MONGO_ADDRESS_CSV: a URI, or `host[:port]` entries separated by commas. */
  addresses: string;
  /** MONGO_DB_NAME: the database, unless the URI's path names one. */
  database: string;
  /** MONGO_AUTH_DB_NAME: where the user is defined. */
  authDatabase: string;
  /** MONGO_USERNAME and MONGO_PASSWORD: both or neither (the config checks). */
  username: string;
  password: string;
  /** MONGO_USE_SSL. */
  tls: boolean;
  /** MONGO_CA_CERTIFICATE read as PEM text, or null for the system's CAs. */
  caPem: string | null;
  /** How long a request waits for a reachable server before it fails with a 503. */
  serverSelectionTimeoutMs: number;
}

export interface MongoConnection {
  url: string;
  database: string;
  options: MongoClientOptions;
}

const URI = /^mongodb(\+srv)?:\/\//i;
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:\d{1,5})?$/i;

/**
 * The URL, database and client options for the settings.
 * @throws BadRequestError naming the setting when MONGO_ADDRESS_CSV is neither form.
 */
export function mongoConnection(s: MongoSettings): MongoConnection {
  const raw = s.addresses.trim();
  let url: string;
  if (URI.test(raw)) {
    url = raw;
  } else {
    const hosts = raw.split(',').map((h) => h.trim()).filter((h) => h !== '');
    const bad = hosts.find((h) => !HOST.test(h));
    if (hosts.length === 0 || bad !== undefined) {
      throw new BadRequestError(`MONGO_ADDRESS_CSV must be a mongodb:// URI or host[:port] entries separated by commas; got ${JSON.stringify(bad ?? raw)}`);
    }
    url = `mongodb://${hosts.join(',')}/`;
  }
  const options: MongoClientOptions = { serverSelectionTimeoutMS: s.serverSelectionTimeoutMs };
  if (s.username !== '') {
    options.auth = { username: s.username, password: s.password };
    options.authSource = s.authDatabase;
  }
  if (s.tls) {
    options.tls = true;
    if (s.caPem !== null) options.ca = s.caPem;
  }
  return { url, database: databaseOf(url) ?? s.database, options };
}

/** The database a URI's path names, e.g. `edge` in `mongodb://h/edge?replicaSet=rs0`. */
function databaseOf(url: string): string | null {
  const afterScheme = url.replace(URI, '');
  const slash = afterScheme.indexOf('/');
  if (slash < 0) return null;
  const path = afterScheme.slice(slash + 1).split('?')[0] ?? '';
  return path === '' ? null : decodeURIComponent(path);
}
