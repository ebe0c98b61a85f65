import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resolveConnection } from '../../../cmd/cli/connection.js';
import { describeError, EXIT, UsageError } from '../../../cmd/cli/exit-codes.js';
import { profilesPath, readProfiles, saveProfile } from '../../../cmd/cli/profiles.js';
import { NetworkError, errorForStatus } from '../../../sdk/index.js';

describe('where the CLI connects, and as whom', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-cli-unit-'));
    env = { XDG_CONFIG_HOME: dir };
    await saveProfile(profilesPath(env), 'cloud', { url: 'http://127.0.0.1:8080', user: 'org1/admin', password: 'p1', org: 'org1' });
    await saveProfile(profilesPath(env), 'edge', { url: 'https://127.0.0.1:8443', user: 'essadmin', password: 'p2', ca: '/certs/ess.pem' });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps profiles in $XDG_CONFIG_HOME/edgesync/profiles.json, mode 0600, the last saved current', async () => {
    const path = profilesPath(env);
    expect(path).toBe(join(dir, 'edgesync', 'profiles.json'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readProfiles(path)).current).toBe('edge');
  });

  it('takes the current profile when nothing else is given', async () => {
    expect(await resolveConnection({}, env)).toEqual({ url: 'https://127.0.0.1:8443', user: 'essadmin', password: 'p2', ca: '/certs/ess.pem' });
  });

  it('lets flags beat the environment, and the environment beat the profile, field by field', async () => {
    const withEnv = { ...env, EDGESYNC_PROFILE: 'cloud', EDGESYNC_USER: 'org1/other', EDGESYNC_PASSWORD: 'env' };
    expect(await resolveConnection({}, withEnv)).toEqual({ url: 'http://127.0.0.1:8080', user: 'org1/other', password: 'env', org: 'org1' });
    expect(await resolveConnection({ user: 'org1/flag', password: 'flag' }, withEnv)).toMatchObject({ user: 'org1/flag', password: 'flag', org: 'org1' });
  });

  it('leaves the current profile out when a URL is given, unless a profile is named', async () => {
    await expect(resolveConnection({ url: 'http://127.0.0.1:9' }, env)).rejects.toThrow(/no user given/);
    expect(await resolveConnection({ url: 'http://127.0.0.1:9', profile: 'cloud' }, env)).toMatchObject({ url: 'http://127.0.0.1:9', user: 'org1/admin', org: 'org1' });
  });

  it('reads a password file without its trailing newline', async () => {
    const file = join(dir, 'pw');
    await writeFile(file, 's3cret\n');
    expect((await resolveConnection({ url: 'http://h:1', user: 'u', passwordFile: file }, {})).password).toBe('s3cret');
  });

  it('refuses what cannot work as usage errors, naming the way out', async () => {
    await expect(resolveConnection({}, {})).rejects.toThrow(UsageError);
    await expect(resolveConnection({ profile: 'nope' }, env)).rejects.toThrow(/no profile "nope"/);
    await expect(resolveConnection({ url: 'ftp://h', user: 'u', password: 'p' }, {})).rejects.toThrow(/http:\/\/ or https:\/\//);
    await expect(resolveConnection({ url: 'http://h:1', user: 'u', password: 'p', timeout: '-1' }, {})).rejects.toThrow(/--timeout/);
  });
});

describe('exit codes', () => {
  it('tell scripts what went wrong', () => {
    const code = (err: unknown): number => describeError(err).code;
    expect(code(new UsageError('x'))).toBe(EXIT.usage);
    expect(code(errorForStatus(404, '', 'GET', '/p'))).toBe(EXIT.notFound);
    expect(code(errorForStatus(403, 'Unauthorized', 'GET', '/p'))).toBe(EXIT.auth);
    expect(code(errorForStatus(401, '', 'GET', '/p'))).toBe(EXIT.auth);
    expect(code(errorForStatus(400, 'bad', 'PUT', '/p'))).toBe(EXIT.refused);
    expect(code(errorForStatus(409, '', 'PUT', '/p'))).toBe(EXIT.refused);
    expect(code(errorForStatus(503, '', 'GET', '/p'))).toBe(EXIT.unavailable);
    expect(code(errorForStatus(429, '', 'GET', '/p'))).toBe(EXIT.unavailable);
    expect(code(new NetworkError('GET', '/p', new Error('connect ECONNREFUSED')))).toBe(EXIT.unavailable);
    expect(code(new Error('disk full'))).toBe(EXIT.failure);
    expect(describeError(errorForStatus(403, 'Unauthorized\n', 'GET', '/api/v1/health')).message).toBe('GET /api/v1/health refused (check the user, password and org): Unauthorized');
  });
});
