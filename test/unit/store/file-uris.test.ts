/**
 * File data URIs: a REST client names the path, so it is confined to the configured directories
 * (symlinks resolved), and a destination file is written atomically or not at all.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { BadRequestError, fileUriPath } from '../../../lib/model/index.js';
import { destinationPath, openSourceFile, parseDataDirs, writeFileAtomically, type DataDirs } from '../../../lib/store/data-files.js';

const field = { field: 'destinationDataUri' };

describe('the form of a file data URI', () => {
  it('gives the absolute path of a file:/// URI, percent-decoded', () => {
    expect(fileUriPath('file:///srv/in/model.bin', field)).toBe('/srv/in/model.bin');
    expect(fileUriPath('file:///srv/in/a%20b.bin', field)).toBe('/srv/in/a b.bin');
  });

  it.each([
    ['http://x/y', 'it must be a file:/// URI'],
    ['/srv/in/x', 'it must be a file:/// URI'],
    ['file://evil.example/srv/in/x', 'must not name a host (evil.example)'],
    ['file:///srv/in/../etc/passwd', '`..`'],
    ['file:///srv/in/%2e%2e/etc/passwd', '`..`'],
    ['file:///srv/in/./x', '`..`'],
    ['file:///srv//x', 'empty segments'],
    ['file:///srv/in/', 'it must name a file'],
    ['file:///srv/in/x%00y', 'NUL'],
    ['file:///srv/in/x?y=1', 'query or fragment'],
  ])('refuses %s (%s)', (uri, reason) => {
    expect(() => fileUriPath(uri, field)).toThrow(BadRequestError);
    expect(() => fileUriPath(uri, field)).toThrow(reason);
  });

  it('reads a directory list as comma-separated, blanks dropped', () => {
    expect(parseDataDirs(' /a , /b,,')).toEqual(['/a', '/b']);
    expect(parseDataDirs('')).toEqual([]);
  });
});

describe('confinement to the configured directories', () => {
  let root: string;
  let allowed: string;
  let outside: string;
  let where: DataDirs;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgesync-file-uris-'));
    allowed = join(root, 'allowed');
    outside = join(root, 'outside');
    await mkdir(join(allowed, 'sub'), { recursive: true });
    await mkdir(outside);
    where = { field: 'destinationDataUri', key: 'DESTINATION_DATA_DIRS', dirs: [allowed] };
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('accepts a file in an allowed directory or below it', async () => {
    expect(await destinationPath(`file://${allowed}/x.bin`, where)).toBe(join(allowed, 'x.bin'));
    expect(await destinationPath(`file://${allowed}/sub/x.bin`, where)).toBe(join(allowed, 'sub', 'x.bin'));
  });

  it('refuses everything while no directory is configured, naming the key', async () => {
    await expect(destinationPath(`file://${allowed}/x.bin`, { ...where, dirs: [] })).rejects.toThrow('destinationDataUri is off on this node (DESTINATION_DATA_DIRS is empty)');
  });

  it('refuses a path outside, the allowed directory itself, and a missing directory', async () => {
    await expect(destinationPath(`file://${outside}/x.bin`, where)).rejects.toThrow('outside the directories DESTINATION_DATA_DIRS allows');
    await expect(destinationPath(`file://${root}/allowed`, where)).rejects.toThrow('outside');
    await expect(destinationPath(`file://${allowed}/nope/x.bin`, where)).rejects.toThrow('does not exist');
  });

  it('refuses a symlinked directory that leads outside', async () => {
    await symlink(outside, join(allowed, 'escape'));
    await expect(destinationPath(`file://${allowed}/escape/x.bin`, where)).rejects.toThrow('outside');
  });

  it('reads a source file within the directories, streamed, with its size', async () => {
    await writeFile(join(allowed, 'src.bin'), 'hello');
    const src = await openSourceFile(`file://${allowed}/src.bin`, { ...where, field: 'sourceDataUri', key: 'SOURCE_DATA_DIRS' });
    const chunks: Buffer[] = [];
    for await (const c of src.stream) chunks.push(c as Buffer);
    expect([src.size, Buffer.concat(chunks).toString()]).toEqual([5, 'hello']);
  });

  it('refuses a source file that is a symlink leading outside, a directory, or missing', async () => {
    const s = { ...where, field: 'sourceDataUri', key: 'SOURCE_DATA_DIRS' };
    await writeFile(join(outside, 'secret'), 'secret');
    await symlink(join(outside, 'secret'), join(allowed, 'link'));
    await expect(openSourceFile(`file://${allowed}/link`, s)).rejects.toThrow('outside the directories SOURCE_DATA_DIRS allows');
    await expect(openSourceFile(`file://${allowed}/sub`, s)).rejects.toThrow('not a regular file');
    await expect(openSourceFile(`file://${allowed}/none`, s)).rejects.toThrow('no such file');
    await expect(openSourceFile(`file://${allowed}/x`, { ...s, dirs: [] })).rejects.toThrow('SOURCE_DATA_DIRS is empty');
  });

  it('writes a file atomically, replacing the old one whole', async () => {
    const target = join(allowed, 'x.bin');
    await writeFile(target, 'old');
    await writeFileAtomically(target, Readable.from([Buffer.from('new '), Buffer.from('data')]));
    expect(await readFile(target, 'utf8')).toBe('new data');
    expect(await readdir(allowed)).toEqual(['sub', 'x.bin']);
  });

  it('leaves the old file and no temporary file when the data fails half-way', async () => {
    const target = join(allowed, 'x.bin');
    await writeFile(target, 'old');
    const failing = new Readable({
      read() {
        this.push(Buffer.from('half'));
        this.destroy(new Error('connection lost'));
      },
    });
    await expect(writeFileAtomically(target, failing)).rejects.toThrow('connection lost');
    expect(await readFile(target, 'utf8')).toBe('old');
    expect(await readdir(allowed)).toEqual(['sub', 'x.bin']);
  });
});
