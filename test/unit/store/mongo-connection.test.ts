/**
 * The reference's MONGO_* settings as a driver connection: both forms of MONGO_ADDRESS_CSV,
 * the database, credentials and TLS.
 */
import { describe, expect, test } from '@jest/globals';
import { BadRequestError } from '../../../lib/model/index.js';
import { mongoConnection, type MongoSettings } from '../../../lib/store/mongo/mongo-connection.js';

const base: MongoSettings = { addresses: 'mongodb://localhost:27017', database: 'd_edge', authDatabase: 'admin', username: '', password: '', tls: false, caPem: null, serverSelectionTimeoutMs: 5000 };

describe('MONGO_* settings to a connection', () => {
  test('a URI is used as written, the database from MONGO_DB_NAME', () => {
    expect(mongoConnection(base)).toEqual({ url: 'mongodb://localhost:27017', database: 'd_edge', options: { serverSelectionTimeoutMS: 5000 } });
  });

  test('a URI whose path names a database wins over MONGO_DB_NAME, its options kept', () => {
    const c = mongoConnection({ ...base, addresses: 'mongodb://a:1,b:2/edge%2Dx?replicaSet=rs0' });
    expect([c.url, c.database]).toEqual(['mongodb://a:1,b:2/edge%2Dx?replicaSet=rs0', 'edge-x']);
  });

  test('host:port entries separated by commas, as the reference’s mgo code read them', () => {
    expect(mongoConnection({ ...base, addresses: ' db1:27017, db2 ,[::1]:27018' }).url).toBe('mongodb://db1:27017,db2,[::1]:27018/');
  });

  test('credentials go with their auth database; TLS with the CA given', () => {
    const c = mongoConnection({ ...base, username: 'sync', password: 'p@ss', authDatabase: 'users', tls: true, caPem: '-----BEGIN CERTIFICATE-----' });
    expect(c.options).toEqual({ serverSelectionTimeoutMS: 5000, auth: { username: 'sync', password: 'p@ss' }, authSource: 'users', tls: true, ca: '-----BEGIN CERTIFICATE-----' });
  });

  test.each(['', 'http://db', 'db one:27017', 'db:port', ','])('refuses the address %j, naming the setting', (addresses) => {
    expect(() => mongoConnection({ ...base, addresses })).toThrow(BadRequestError);
    expect(() => mongoConnection({ ...base, addresses })).toThrow(/MONGO_ADDRESS_CSV must be/);
  });
});
