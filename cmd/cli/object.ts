/**
 * `edgesync object …`: publish, read, list and manage objects on a CSS (with an org) or an ESS
 * (without), after `hzn mms object …`. [ref rest-api §1.2]
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Argument, Option, type Command } from 'commander';
import { parseJson, type MetaData, type ObjectFilters, type ObjectInput } from '../../sdk/index.js';
import type { CommandContext } from './context.js';
import { CliError, NotFoundCliError, UsageError } from './exit-codes.js';
import { print, printList, renderRecord } from './output.js';
import type { Act } from './program.js';
import { formatBytes } from './progress.js';
import { download, publish } from './transfer.js';

/** Default bytes per request of a chunked upload: big enough to be fast, small enough to lose little on a resume. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** `4096`, `64k`, `8M`, `1G` (binary multiples) → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)([kmg]?)(i?b)?$/i.exec(text.trim());
  if (m === null) throw new UsageError(`not a size: "${text}" (e.g. 65536, 64k, 8M)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`size out of range: "${text}"`);
  return bytes;
}

/** The flags of `object publish`. */
export interface PublishFlags {
  meta?: string;
  file?: string;
  type?: string;
  id?: string;
  version?: string;
  destType?: string;
  destId?: string;
  destList?: string;
  description?: string;
  expiration?: string;
  inactive?: boolean;
  activationTime?: string;
  data: boolean;
  chunkSize: string;
}

/** The metadata file (the REST API's field names), then each flag given over it. */
export async function publishMeta(flags: PublishFlags): Promise<ObjectInput> {
  let base: Record<string, unknown> = {};
  if (flags.meta !== undefined) {
    const text = await readFile(flags.meta, 'utf8').catch((err: Error) => {
      throw new CliError(`cannot read the metadata file ${flags.meta!}: ${err.message}`);
    });
    let parsed: unknown;
    try {
      parsed = parseJson(text);
    } catch (err) {
      throw new UsageError(`${flags.meta} is not JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${flags.meta} must hold one JSON object of metadata fields`);
    // The `hzn mms object new` template wraps nothing, but a saved `object get --json` may be given as is.
    base = parsed as Record<string, unknown>;
  }
  const meta: Record<string, unknown> = { ...base };
  const set = (key: keyof MetaData, value: unknown): void => {
    if (value !== undefined) meta[key] = value;
  };
  set('objectType', flags.type);
  set('objectID', flags.id);
  set('version', flags.version);
  set('destinationType', flags.destType);
  set('destinationID', flags.destId);
  set('destinationsList', flags.destList?.split(',').map((d) => d.trim()).filter((d) => d !== ''));
  set('description', flags.description);
  set('expiration', flags.expiration);
  set('activationTime', flags.activationTime);
  if (flags.inactive === true) meta.inactive = true;
  if (!flags.data) meta.noData = true;
  for (const key of ['objectType', 'objectID'] as const) {
    if (typeof meta[key] !== 'string' || meta[key] === '') throw new UsageError(`the object needs an ${key}: give --${key === 'objectType' ? 'type' : 'id'} or put it in the metadata file`);
  }
  // Ids of the server's making: a metadata file saved from `object get` must not pin them.
  for (const key of ['instanceID', 'dataID', 'objectSize', 'chunkSize', 'uploadChunkSize', 'ownerID', 'originID', 'originType']) delete meta[key];
  return meta as ObjectInput;
}

function objectRow(m: MetaData): unknown[] {
  const dest = m.destinationsList !== null && m.destinationsList.length > 0 ? m.destinationsList.join(', ') : `${m.destinationType || '*'}/${m.destinationID || '*'}`;
  return [m.objectType, m.objectID, m.version, dest, m.noData ? 'no data' : formatBytes(m.objectSize), m.instanceID, m.deleted ? 'deleted' : m.inactive ? 'inactive' : ''];
}
const OBJECT_HEAD = ['type', 'id', 'version', 'destinations', 'size', 'instanceID', 'state'];

/** On a node reached without an org, checks that it is an ESS: a CSS would read the type as an org. */
async function objectClient(ctx: CommandContext) {
  const client = await ctx.client();
  if ((await ctx.connection()).org === undefined && (await client.health()).general.nodeType === 'CSS') {
    throw new UsageError('this node is a CSS: object commands need an org (--org or EDGESYNC_ORG)');
  }
  return client;
}

export function registerObject(program: Command, act: Act): void {
  const object = program.command('object').description('objects: publish, get, download, list, status, destinations, delete, activate, mark');

  object
    .command('publish')
    .description('create or replace an object: metadata from a file and/or flags, data from a file or stdin')
    .option('-m, --meta <file>', 'JSON metadata, with the field names of the REST API (objectType, objectID, destinationType…)')
    .option('-f, --file <file>', 'the data: a file (resumable), or - for stdin (not resumable)')
    .option('-t, --type <type>', 'objectType (overrides the file)')
    .option('-i, --id <id>', 'objectID (overrides the file)')
    .option('--version <version>', 'version (overrides the file)')
    .option('--dest-type <type>', 'destinationType (overrides the file)')
    .option('--dest-id <id>', 'destinationID (overrides the file)')
    .option('--dest-list <type:id,...>', 'destinationsList (overrides the file)')
    .option('--description <text>', 'description (overrides the file)')
    .option('--expiration <time>', 'expiration, RFC 3339 (overrides the file)')
    .option('--activation-time <time>', 'activationTime, RFC 3339 (overrides the file)')
    .option('--inactive', 'publish inactive (object activate makes it active)')
    .option('--no-data', 'the object has no data (noData)')
    .option('--chunk-size <bytes>', 'a file larger than this goes up in chunks of this size, resumable (k, M, G suffixes)', String(DEFAULT_CHUNK_SIZE))
    .addHelpText(
      'after',
      '\nRunning the same publish of a file again after an interruption resumes its upload where the server stopped,\nas long as the file, the metadata and --chunk-size are unchanged. Data from stdin cannot resume.',
    )
    .action(
      act(async (ctx, _operands, command) => {
        const flags = command.opts<PublishFlags>();
        const chunkSize = parseSize(flags.chunkSize);
        if (!flags.data && flags.file !== undefined) throw new UsageError('--no-data and --file exclude each other');
        const meta = await publishMeta(flags);
        await objectClient(ctx);
        const stored = await publish(ctx, meta, flags.file, chunkSize);
        print(ctx.out, stored, (m) => `published ${m.objectType}/${m.objectID} (instance ${m.instanceID}, ${m.noData ? 'no data' : formatBytes(m.objectSize)})`);
      }),
    );

  object
    .command('get')
    .description("an object's metadata")
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await objectClient(ctx);
        const meta = await client.getObject(type!, id!);
        if (meta === null) throw new NotFoundCliError(`no object ${type!}/${id!}`);
        print(ctx.out, meta, (m) => renderRecord(m as unknown as Record<string, unknown>));
      }),
    );

  object
    .command('download')
    .description("an object's data to a file (resumed when run again) or to stdout")
    .argument('<type>')
    .argument('<id>')
    .option('-o, --output <file>', 'where to write; - for stdout (default: a file named after the object ID)')
    .action(
      act(async (ctx, [type, id], command) => {
        const { output } = command.opts<{ output?: string }>();
        await objectClient(ctx);
        const result = await download(ctx, type!, id!, output ?? basename(id!));
        if (result.file !== '-') print(ctx.out, result, (r) => `wrote ${r.file} (${formatBytes(r.size)}${r.resumedAt > 0 ? `, resumed at byte ${r.resumedAt}` : ''})`);
      }),
    );

  object
    .command('list')
    .description('objects matching filters (CSS); on an ESS, the objects of --type received from the CSS')
    .option('-t, --type <type>', 'objectType')
    .option('-i, --id <id>', 'objectID')
    .option('--dest-type <type>', 'destinationType')
    .option('--dest-id <id>', 'destinationID')
    .option('--policy', 'only objects with a destination policy')
    .option('--dp-service <org/name>', 'only objects whose policy names that service')
    .option('--dp-property <name>', 'only objects whose policy has that property')
    .option('--since <time>', 'only objects whose policy changed since (RFC 3339)')
    .option('--expires-before <time>', 'only objects expiring before (RFC 3339)')
    .option('--deleted', 'only deleted objects')
    .addOption(new Option('--data <which>', 'only objects with or without data').choices(['with', 'without']))
    .option('--received', 'ESS: include objects already marked received')
    .action(
      act(async (ctx, _operands, command) => {
        const o = command.opts<{
          type?: string;
          id?: string;
          destType?: string;
          destId?: string;
          policy?: boolean;
          dpService?: string;
          dpProperty?: string;
          since?: string;
          expiresBefore?: string;
          deleted?: boolean;
          data?: 'with' | 'without';
          received?: boolean;
        }>();
        const client = await objectClient(ctx);
        let objects: MetaData[];
        if (client.orgID === undefined) {
          if (o.type === undefined) throw new UsageError('on an ESS, object list needs --type');
          objects = await client.listObjects(o.type, o.received === true ? { received: true } : {});
          if (o.id !== undefined) objects = objects.filter((m) => m.objectID === o.id);
        } else {
          const filters: ObjectFilters = {};
          if (o.type !== undefined) filters.objectType = o.type;
          if (o.id !== undefined) filters.objectID = o.id;
          if (o.destType !== undefined) filters.destinationType = o.destType;
          if (o.destId !== undefined) filters.destinationID = o.destId;
          if (o.policy === true) filters.destinationPolicy = true;
          if (o.dpService !== undefined) filters.dpService = o.dpService;
          if (o.dpProperty !== undefined) filters.dpPropertyName = o.dpProperty;
          if (o.since !== undefined) filters.since = o.since;
          if (o.expiresBefore !== undefined) filters.expirationTimeBefore = o.expiresBefore;
          if (o.deleted === true) filters.deleted = true;
          if (o.data !== undefined) filters.noData = o.data === 'without';
          objects = await client.listObjectsWithFilters(filters);
        }
        printList(ctx.out, objects, OBJECT_HEAD, objectRow, 'no objects match');
      }),
    );

  object
    .command('status')
    .description("an object's status (notReady, ready, completelyReceived, consumed…)")
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await objectClient(ctx);
        const status = await client.getObjectStatus(type!, id!);
        if (status === null) throw new NotFoundCliError(`no object ${type!}/${id!}`);
        print(ctx.out, { objectType: type!, objectID: id!, status }, (s) => s.status);
      }),
    );

  object
    .command('destinations')
    .description("an object's delivery status per destination")
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await objectClient(ctx);
        const dests = await client.getObjectDestinations(type!, id!);
        printList(ctx.out, dests, ['destType', 'destID', 'status', 'message'], (d) => [d.destinationType, d.destinationID, d.status, d.message], `no destinations for ${type!}/${id!}`);
      }),
    );

  object
    .command('delete')
    .description('delete an object (and have it deleted at its destinations)')
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await objectClient(ctx);
        if ((await client.getObject(type!, id!)) === null) throw new NotFoundCliError(`no object ${type!}/${id!}`);
        await client.deleteObject(type!, id!);
        ctx.out.note(`deleted ${type!}/${id!}`);
      }),
    );

  object
    .command('activate')
    .description('activate an object published inactive')
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await objectClient(ctx);
        await client.activateObject(type!, id!);
        ctx.out.note(`activated ${type!}/${id!}`);
      }),
    );

  // What an app on a node says of an object it has: the PUT …/consumed, …/received, …/deleted routes.
  const marks = { consumed: 'markObjectConsumed', received: 'markObjectReceived', deleted: 'markObjectDeleted' } as const;
  object
    .command('mark')
    .description('tell the node an app consumed, received or deleted an object (as PUT …/consumed, …/received, …/deleted)')
    .addArgument(new Argument('<mark>').choices(Object.keys(marks)))
    .argument('<type>')
    .argument('<id>')
    .action(
      act(async (ctx, [mark, type, id]) => {
        const client = await objectClient(ctx);
        await client[marks[mark as keyof typeof marks]](type!, id!);
        ctx.out.note(`marked ${type!}/${id!} ${mark!}`);
      }),
    );
}
