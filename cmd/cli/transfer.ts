/**
 * The data of `object publish` and `object download`: streamed both ways, never held whole,
 * resumable for files (a chunked upload the server stages; a `.part` file and `Range`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { stringifyJson, type MetaData, type ObjectInput, type SyncServiceClient } from '../../sdk/index.js';
import type { CommandContext } from './context.js';
import { CliError, NotFoundCliError } from './exit-codes.js';
import { createProgress } from './progress.js';
import { clearUploadState, readUploadState, uploadStatePath, uploadsDir, writeUploadState, type UploadState } from './upload-state.js';

/**
 * Publishes `meta`, then the data of `file` (a path, `-` for stdin, undefined for none). A file
 * larger than `chunkSize` goes up in chunks and resumes where the server stopped when the same
 * command runs again. Resolves with the object as the server then holds it.
 */
export async function publish(ctx: CommandContext, meta: ObjectInput, file: string | undefined, chunkSize: number): Promise<MetaData> {
  const client = await ctx.client();
  const { objectType: type, objectID: id } = meta;
  if (file === undefined) {
    await client.updateObject(meta);
  } else if (file === '-') {
    await client.updateObject(meta);
    // Of unknown size and gone once read: stdin goes in one request and cannot resume.
    const bar = createProgress({ show: ctx.progress, label: `${type}/${id}`, total: undefined });
    try {
      await client.updateObjectData(type, id, process.stdin, { onProgress: (n) => bar.update(n), signal: ctx.signal });
    } finally {
      bar.stop();
    }
  } else {
    await publishFile(ctx, client, meta, file, chunkSize);
  }
  const stored = await client.getObject(type, id);
  if (stored === null) throw new CliError(`${type}/${id} was published but is gone already (deleted meanwhile?)`);
  return stored;
}

async function publishFile(ctx: CommandContext, client: SyncServiceClient, meta: ObjectInput, file: string, chunkSize: number): Promise<void> {
  const { objectType: type, objectID: id } = meta;
  const path = resolve(file);
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!info.isFile()) throw new CliError(`${file} is not a regular file`);
  const size = info.size;
  const label = `${type}/${id}`;
  if (size <= chunkSize) {
    await client.updateObject(meta);
    const bar = createProgress({ show: ctx.progress, label, total: size });
    try {
      await client.updateObjectData(type, id, createReadStream(path), { size, onProgress: (n) => bar.update(n), signal: ctx.signal });
    } finally {
      bar.stop();
    }
    return;
  }
  const connection = await ctx.connection();
  const statePath = uploadStatePath(uploadsDir(ctx.env), connection, type, id);
  const metaDigest = createHash('sha256').update(stringifyJson(meta)).digest('hex');
  const previous = await readUploadState(statePath);
  let state: UploadState;
  const current = previous === null ? null : await client.getObject(type, id);
  const resumable =
    previous !== null &&
    current !== null &&
    previous.metaDigest === metaDigest &&
    previous.file === path &&
    previous.size === size &&
    previous.mtimeMs === info.mtimeMs &&
    previous.chunkSize === chunkSize &&
    String(current.instanceID) === previous.instanceID;
  if (resumable) {
    state = previous;
    ctx.out.note(`resuming the upload of ${label} at byte ${state.acknowledged} of ${size}`);
  } else {
    // Publishing the metadata makes a new instance: the server drops any older upload of the object.
    await client.updateObject(meta);
    const created = await client.getObject(type, id);
    if (created === null) throw new CliError(`${label} was published but is gone already (deleted meanwhile?)`);
    state = { metaDigest, instanceID: String(created.instanceID), file: path, size, mtimeMs: info.mtimeMs, chunkSize, acknowledged: 0 };
    await writeUploadState(statePath, state);
  }
  const bar = createProgress({ show: ctx.progress, label, total: size, startAt: state.acknowledged });
  // Each acknowledgement is saved before the next chunk goes, in order; a write in flight when
  // the process dies leaves the previous (smaller, so still safe) offset.
  let saving: Promise<void> = Promise.resolve();
  try {
    await client.updateObjectDataChunked(type, id, path, {
      chunkSize,
      startAt: state.acknowledged,
      signal: ctx.signal,
      onProgress: (n) => bar.update(n),
      onChunk: (at) => {
        state = { ...state, acknowledged: at };
        const snapshot = state;
        saving = saving.then(() => writeUploadState(statePath, snapshot));
      },
    });
  } finally {
    bar.stop();
    await saving.catch(() => undefined);
  }
  await clearUploadState(statePath);
}

/** The sidecar of a `.part` file: which data it holds the beginning of. */
interface PartState {
  dataID: string;
  size: number;
}

/**
 * Streams the object's data to `output` (`-`: stdout). A file is written as `output.part` and
 * renamed when complete; when run again, a `.part` of the same data resumes with `Range`.
 * The size is checked against the metadata at the end.
 */
export async function download(ctx: CommandContext, type: string, id: string, output: string): Promise<{ file: string; size: number; resumedAt: number }> {
  const client = await ctx.client();
  const meta = await client.getObject(type, id);
  if (meta === null) throw new NotFoundCliError(`no object ${type}/${id}`);
  if (meta.noData) throw new CliError(`${type}/${id} has no data (noData is set)`);
  const total = meta.objectSize;
  const label = `${type}/${id}`;
  if (output === '-') {
    const data = await client.fetchObjectData(type, id, { signal: ctx.signal });
    await pipeline(data, process.stdout);
    return { file: '-', size: total, resumedAt: 0 };
  }
  const part = `${output}.part`;
  const sidecar = `${output}.part.json`;
  const dataID = String(meta.dataID);
  let resumedAt = 0;
  const saved = await readFile(sidecar, 'utf8').then((t) => JSON.parse(t) as PartState, () => null);
  if (saved !== null && saved.dataID === dataID && saved.size === total) {
    resumedAt = await stat(part).then((s) => s.size, () => 0);
    if (resumedAt > total) resumedAt = 0;
  }
  if (resumedAt === 0) await writeFile(sidecar, JSON.stringify({ dataID, size: total } satisfies PartState));
  else ctx.out.note(`resuming the download of ${label} at byte ${resumedAt} of ${total}`);
  if (resumedAt < total || total === 0) {
    const bar = createProgress({ show: ctx.progress, label, total: total > 0 ? total : undefined, startAt: resumedAt });
    try {
      const data = await client.fetchObjectData(type, id, {
        ...(resumedAt > 0 ? { range: { start: resumedAt, end: total - 1 } } : {}),
        signal: ctx.signal,
        onProgress: (n) => bar.update(resumedAt + n),
      });
      await pipeline(data, createWriteStream(part, { flags: resumedAt > 0 ? 'a' : 'w' }));
    } finally {
      bar.stop();
    }
  }
  const size = (await stat(part)).size;
  if (total > 0 && size !== total) throw new CliError(`${part} has ${size} bytes where the object has ${total}; run the command again to resume`);
  await rename(part, output);
  await rm(sidecar, { force: true });
  return { file: output, size, resumedAt };
}
