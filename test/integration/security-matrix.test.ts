/**
 * The authorization matrix: every /api/v1 route of a CSS and of an ESS, and the SPI, called by
 * every identity kind of org A (the fixtures' org) and of org B, by a sync admin, anonymously
 * and with a wrong password; each case asserts the status the contract gives and, for
 * listings, exactly what the caller sees. [ref rest-api §4, §1.2–1.6, §6]
 *
 * One CSS (multi-org, http + MQTT on its embedded broker) and one ESS (org A, syncing with the
 * CSS over HTTP) serve the whole file. Reads run first, then writes on per-caller objects, then
 * the SPI, then what destroys the fixtures (deleting org A, shutting down).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { connectAsync, ErrorWithSubackPacket, type MqttClient } from 'mqtt';
import { ROUTES, pathOn } from '../../lib/api/route-table.js';
import { commandTopic, CSS_EVENT_FILTER } from '../../lib/transport/mqtt/topics.js';
import { SPI_OBJECT_ACTIONS, SPI_REGISTRATION_ACTIONS, type SpiObjectAction } from '../../lib/transport/http/spi-paths.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventually } from '../helpers/sync-pair.js';
import {
  all,
  caller,
  CALLERS,
  ESS_DEST,
  GROUPS,
  mismatch,
  ORG_A,
  ORG_B,
  send,
  slug,
  statuses,
  writeUsersFile,
  type Caller,
  type NodeKind,
  type Outcome,
  type Row,
  type Statuses,
  type Who,
} from '../helpers/security-matrix.js';

jest.setTimeout(60_000);

const t = new Teardown();
let css: RunningProcess;
let ess: RunningProcess;
let brokerUrl: string;
const started = Date.now();

/** Every case sent, for the count the issue asks for. */
const sent: Outcome[] = [];
/** Cases of the table (rows × callers), apart from the rules' single requests. */
let matrixCases = 0;
/** MQTT cases (connect, subscribe, publish per caller). */
let mqttCases = 0;

const SA = caller('SA');
const A = ORG_A;

function json(v: unknown): string {
  return JSON.stringify(v);
}

/** A request as the sync admin, which must succeed (fixture set-up). */
async function asAdmin(node: RunningProcess, method: string, path: string, body?: unknown): Promise<string> {
  const res = await fetch(node.url + path, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${SA.auth!.user}:${SA.auth!.pass}`).toString('base64')}` },
    ...(body !== undefined ? { body: json(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} as SA: ${res.status} ${text}`);
  return text;
}

/** A fixture object: metadata and, unless noData, its data inline. */
function objectBody(meta: Record<string, unknown>, data?: string): unknown {
  return data === undefined ? { meta: { noData: true, ...meta } } : { meta, data: Buffer.from(data).toString('base64') };
}

/** Services of a policy, `name@range`: SVC.A is svcorg/1.0.0/svca. */
const SVC_MINE = 'svca@[1.0.0,2.0.0)';
const SVC_MINE_V2 = 'svca@[2.0.0,3.0.0)';
const SVC_OTHER = 'svcz@[1.0.0,2.0.0)';
function servicePolicy(svc: string): unknown {
  const [serviceName, version] = svc.split('@');
  return { properties: [], services: [{ orgID: 'svcorg', arch: 'amd64', serviceName, version }] };
}

const TO_ESS = { destinationType: ESS_DEST.type, destinationID: ESS_DEST.id };
const NOWHERE = { destinationType: 'nowhere', destinationID: 'x' };
const POLICY = { properties: [{ name: 'color', value: 'blue' }], services: [] };

/** The objects every read row looks at. */
async function cssFixtures(): Promise<void> {
  for (const org of [ORG_A, ORG_B]) await asAdmin(css, 'PUT', `/api/v1/organizations/${org}`, { orgID: org });
  const fixtures: [string, string, Record<string, unknown>, (string | undefined)?][] = [];
  for (const type of ['plain', 'acl']) {
    fixtures.push([type, 'priv', TO_ESS, 'private']);
    fixtures.push([type, 'pub', { ...TO_ESS, public: true }, 'public']);
  }
  fixtures.push(['plain', 'pol', { destinationPolicy: POLICY }, 'policy']);
  fixtures.push(['plain', 'polpub', { destinationPolicy: POLICY, public: true }, 'policy, public']);
  fixtures.push(['agent_upgrade_manifests', 'm1', TO_ESS, 'manifest']);
  for (const c of CALLERS) {
    // Marked on the ESS once received there, one per caller so that no caller's mark changes another's case.
    fixtures.push(['mark', `c-${slug(c.who)}`, TO_ESS]);
    fixtures.push(['mark', `r-${slug(c.who)}`, TO_ESS]);
    // Deleted, re-addressed and written on the CSS by that caller only.
    for (const prefix of ['del', 'dst', 'd']) fixtures.push(['scratch', `${prefix}-${slug(c.who)}`, NOWHERE, prefix === 'd' ? 'old' : undefined]);
  }
  await Promise.all(
    fixtures.map(([type, id, meta, data]) => asAdmin(css, 'PUT', `/api/v1/objects/${A}/${type}/${id}`, objectBody({ objectID: id, objectType: type, ...meta }, data))),
  );
}

/** Objects the ESS publishes (the CSS then lists them as received) and the ESS's per-caller objects. */
async function essFixtures(): Promise<void> {
  await asAdmin(ess, 'PUT', '/api/v1/objects/up/upriv', objectBody({ objectID: 'upriv', objectType: 'up' }, 'up private'));
  await asAdmin(ess, 'PUT', '/api/v1/objects/up/upub', objectBody({ objectID: 'upub', objectType: 'up', public: true }, 'up public'));
  // Objects of service policies: what a service on the ESS reads is decided by them. [§4.3]
  const policyFixtures: [string, string, boolean?][] = [
    ['mine', SVC_MINE],
    ['other', SVC_OTHER],
    ['old', SVC_MINE_V2],
    ['pubother', SVC_OTHER, true],
    ...CALLERS.map((c): [string, string] => [`del-${slug(c.who)}`, SVC_OTHER]),
  ];
  await Promise.all(
    policyFixtures.map(([id, svc, pub]) =>
      asAdmin(ess, 'PUT', `/api/v1/objects/epol/${id}`, objectBody({ objectID: id, objectType: 'epol', destinationPolicy: servicePolicy(svc), ...(pub === true ? { public: true } : {}) })),
    ),
  );
  await Promise.all(
    CALLERS.flatMap((c) => [
      asAdmin(ess, 'PUT', `/api/v1/objects/escratch/del-${slug(c.who)}`, objectBody({ objectID: `del-${slug(c.who)}`, objectType: 'escratch' })),
      asAdmin(ess, 'PUT', `/api/v1/objects/escratch/d-${slug(c.who)}`, objectBody({ objectID: `d-${slug(c.who)}`, objectType: 'escratch' }, 'old')),
    ]),
  );
}

async function listed(node: RunningProcess, path: string): Promise<string[]> {
  const res = await fetch(node.url + path, { headers: { authorization: `Basic ${Buffer.from(`${SA.auth!.user}:${SA.auth!.pass}`).toString('base64')}` } });
  if (res.status !== 200) return [];
  return (JSON.parse(await res.text()) as { objectID: string }[]).map((o) => o.objectID);
}

/**
 * The wrong-password caller fails ~100 logins from 127.0.0.1, which the failed-login throttle
 * would answer 429 for every caller from there; the throttle has its own tests.
 */
const NO_THROTTLE = { LOGIN_FAILURE_LIMIT: '0' };

beforeAll(async () => {
  const cssRoot = await mkdtemp(join(tmpdir(), 'edgesync-matrix-css-'));
  const essRoot = await mkdtemp(join(tmpdir(), 'edgesync-matrix-ess-'));
  await Promise.all([writeUsersFile(cssRoot, { withEss: true }), writeUsersFile(essRoot, { withEss: false })]);
  css = await startManaged(t, {
    mode: 'css',
    root: cssRoot,
    env: { COMMUNICATION_PROTOCOL: 'http,mqtt', EMBEDDED_BROKER_PORT: '0', RESEND_INTERVAL: '1', ...NO_THROTTLE },
  });
  const m = /MQTT:\s+(mqtt:\/\/\S+)/.exec(css.output());
  if (m?.[1] === undefined) throw new Error(`no broker URL printed:\n${css.output()}`);
  brokerUrl = m[1];
  await cssFixtures();
  ess = await startManaged(t, {
    mode: 'ess',
    root: essRoot,
    env: {
      ORG_ID: ORG_A,
      DESTINATION_TYPE: ESS_DEST.type,
      DESTINATION_ID: ESS_DEST.id,
      LISTENING_TYPE: 'unsecure',
      HTTP_CSS_HOST: '127.0.0.1',
      HTTP_CSS_PORT: new URL(css.url).port,
      HTTP_CSS_USER: ESS_DEST.appKey,
      HTTP_CSS_PASSWORD: ESS_DEST.secret,
      HTTP_POLLING_INTERVAL: '1',
      RESEND_INTERVAL: '1',
      ...NO_THROTTLE,
    },
  });
  await essFixtures();
  // Everything the CSS addressed to the ESS is there, and what the ESS published reached the CSS.
  await eventually('ESS received the fixtures', () => listed(ess, '/api/v1/objects/mark'), (ids) => ids.length === 2 * CALLERS.length, 20_000, () => ess.output());
  await eventually('ESS received plain', () => listed(ess, '/api/v1/objects/plain'), (ids) => ids.length === 2, 20_000, () => ess.output());
  await eventually('CSS received up', () => listed(css, `/api/v1/objects/${A}/up`), (ids) => ids.length === 2, 20_000, () => css.output());
  await eventually(
    'CSS has every type the ESS published',
    () => asAdmin(css, 'GET', `/api/v1/objects/${A}?list_object_type=true`).then((t) => JSON.parse(t) as string[]),
    (types) => ['up', 'escratch', 'epol'].every((x) => types.includes(x)),
    20_000,
  );
});

afterAll(async () => {
  await t.run();
  // The numbers the issue asks for, once per run.
  const table = sent.filter((o) => o.row.variant !== 'rule');
  const part = (p: (o: Outcome) => boolean): string => {
    const os = table.filter(p);
    return `${os.length} (${new Set(os.map((o) => o.row.route)).size} routes)`;
  };
  const spi = (o: Outcome): boolean => o.row.route.includes('/spi/v1/');
  process.stdout.write(
    `security matrix: ${matrixCases} (row × caller) cases: CSS API ${part((o) => o.row.node === 'CSS' && !spi(o))}, ESS API ${part((o) => o.row.node === 'ESS')}, ` +
      `SPI ${part(spi)}; ${sent.length - matrixCases} single requests of the rules; ${mqttCases} MQTT cases; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
});

/** Sends one row as every caller: at once, or one after the other with the sync admin last. */
async function sendRow(node: RunningProcess, row: Row, sequential: boolean): Promise<Outcome[]> {
  if (!sequential) return Promise.all(CALLERS.map((c) => send(node.url, row, c)));
  const outcomes: Outcome[] = [];
  // The sync admin last: its request is the one that succeeds and changes everything after.
  for (const c of [...CALLERS.filter((x) => x.who !== 'SA'), SA]) outcomes.push(await send(node.url, row, c));
  return outcomes;
}

/**
 * Sends every row as every caller and lists what differs from the table. Rows go in order
 * (a later row may depend on an earlier one's change), or all at once for independent reads.
 */
async function run(node: RunningProcess, rows: readonly Row[], opts: { sequential?: boolean; independent?: boolean } = {}): Promise<string[]> {
  const outcomes: Outcome[] = [];
  if (opts.independent === true) {
    outcomes.push(...(await Promise.all(rows.map((r) => sendRow(node, r, false)))).flat());
  } else {
    for (const row of rows) outcomes.push(...(await sendRow(node, row, opts.sequential === true)));
  }
  sent.push(...outcomes);
  matrixCases += outcomes.length;
  return outcomes.map(mismatch).filter((p): p is string => p !== null);
}

// ---------------------------------------------------------------------------------------------
// Expected statuses, in the words of rest-api.md §4.

/** Full readers of org A's objects on the CSS: SA, ADM and OADM of A (no ACL grants USR/NODE). [§4.3] */
const CSS_FULL: readonly Who[] = ['SA', 'ADM.A', 'OADM.A'];
/** Authenticated callers that may use the client API. [§4.6] */
const CLIENTS: readonly Who[] = ['SA', ...GROUPS.clientsA, ...GROUPS.clientsB];
/** Every identity of the ESS's org reads everything there, and the sync admin. [§4.3 ESS] */
const ESS_ORG: readonly Who[] = ['SA', ...GROUPS.clientsA];

/** A private object: full readers only. A missing one is 404 to them, 403 to the rest. [§1.2 O1] */
const cssPrivate = (ok: number): Statuses => statuses(403, all(CSS_FULL, ok));
/** A public object: any authenticated non-EN identity, cross-org, but not a service on a CSS. [§4.5, §4.3] */
const cssPublic = (ok: number): Statuses => statuses(403, { ...all(CLIENTS, ok), 'SVC.A': 403, 'SVC.B': 403 });
/** Who may write some object of org A on the CSS (USR and NODE given the ACLs): told 404 for a missing one. */
const MAY_WRITE_A: readonly Who[] = ['ADM.A', 'OADM.A', 'USR.A', 'NODE.A'];
/** The listing roles of O18–O20, then per-object filtering. [§4.2] */
const LISTERS: readonly Who[] = ['SA', 'ADM.A', 'OADM.A', 'USR.A', 'NODE.A', 'ADM.B', 'OADM.B', 'USR.B', 'NODE.B'];

/** What a listing shows: everything to full readers, the public part to the others. */
function seen(full: readonly string[], pub: readonly string[], fullReaders: readonly Who[] = CSS_FULL): (c: Caller) => readonly string[] {
  return (c) => (fullReaders.includes(c.who) ? full : pub);
}

const O = (type: string, id: string, op = ''): string => `/api/v1/objects/${A}/${type}/${id}${op === '' ? '' : `/${op}`}`;
const OE = (type: string, id: string, op = ''): string => `/api/v1/objects/${type}/${id}${op === '' ? '' : `/${op}`}`;
const R = '/api/v1/objects/{orgID}/{objectType}/{objectID}';
const RE = '/api/v1/objects/{objectType}/{objectID}';

function row(node: NodeKind, route: string, variant: string, path: string | ((c: Caller) => string), expect: Statuses, more: Partial<Row> = {}): Row {
  const [method = ''] = route.split(' ');
  return { node, route, variant, method, path: typeof path === 'string' ? () => path : path, expect, ...more };
}

// ---------------------------------------------------------------------------------------------
// CSS rows.

const cssReads: Row[] = [
  row('CSS', `GET ${R}`, 'private object', O('plain', 'priv'), cssPrivate(200)),
  row('CSS', `GET ${R}`, 'public object', O('plain', 'pub'), cssPublic(200)),
  row('CSS', `GET ${R}`, 'manifest: a node of the org reads it', O('agent_upgrade_manifests', 'm1'), statuses(403, all([...CSS_FULL, 'NODE.A'], 200))),
  row('CSS', `GET ${R}`, 'missing object: 404 to full readers only', O('plain', 'nosuch'), cssPrivate(404)),
  row('CSS', 'GET /api/v1/objects/{orgID}/{objectType}', 'received objects', `/api/v1/objects/${A}/up`, cssPublic(200), { visible: seen(['upriv', 'upub'], ['upub']) }),
  row('CSS', 'GET /api/v1/objects/{orgID}/{objectType}', 'all objects', `/api/v1/objects/${A}/plain?all_objects=true`, cssPublic(200), {
    visible: seen(['priv', 'pub', 'pol', 'polpub'], ['pub', 'polpub']),
  }),
  row('CSS', `GET ${R}/status`, 'private object', O('plain', 'priv', 'status'), cssPrivate(200)),
  row('CSS', `GET ${R}/status`, 'public object', O('plain', 'pub', 'status'), cssPublic(200)),
  row('CSS', `GET ${R}/destinations`, 'private object', O('plain', 'priv', 'destinations'), cssPrivate(200)),
  row('CSS', `GET ${R}/destinations`, 'public object', O('plain', 'pub', 'destinations'), cssPublic(200)),
  row('CSS', `GET ${R}/data`, 'private object', O('plain', 'priv', 'data'), cssPrivate(200)),
  row('CSS', `GET ${R}/data`, 'public object', O('plain', 'pub', 'data'), cssPublic(200)),
  row('CSS', `GET ${R}/data`, 'manifest', O('agent_upgrade_manifests', 'm1', 'data'), statuses(403, all([...CSS_FULL, 'NODE.A'], 200))),
  row('CSS', 'GET /api/v1/objects/{orgID}', 'by destination policy', `/api/v1/objects/${A}?destination_policy=true`, statuses(403, all(LISTERS, 200)), {
    // With the ESS's policy objects, received.
    visible: seen(['pol', 'polpub', 'mine', 'other', 'old', 'pubother', ...CALLERS.map((c) => `del-${slug(c.who)}`)], ['polpub', 'pubother']),
  }),
  row('CSS', 'GET /api/v1/objects/{orgID}', 'by filters', `/api/v1/objects/${A}?filters=true&objectType=plain`, statuses(403, all(LISTERS, 200)), {
    visible: seen(['priv', 'pub', 'pol', 'polpub'], ['pub', 'polpub']),
  }),
  // The manifest type is always visible to a node of the org; a listing with nothing visible is 404.
  row('CSS', 'GET /api/v1/objects/{orgID}', 'by filters, manifests', `/api/v1/objects/${A}?filters=true&objectType=agent_upgrade_manifests`, statuses(403, {
    ...all(LISTERS, 404),
    ...all([...CSS_FULL, 'NODE.A'], 200),
  }), { visible: () => ['m1'] }),
  row('CSS', 'GET /api/v1/objects/{orgID}', 'object types', `/api/v1/objects/${A}?list_object_type=true`, statuses(403, all(LISTERS, 200)), {
    visible: (c) =>
      CSS_FULL.includes(c.who)
        ? ['acl', 'agent_upgrade_manifests', 'epol', 'escratch', 'mark', 'plain', 'scratch', 'up']
        : c.who === 'NODE.A'
          ? ['acl', 'agent_upgrade_manifests', 'epol', 'plain', 'up']
          : ['acl', 'epol', 'plain', 'up'],
    ids: (body) => body as string[],
  }),
  row('CSS', 'GET /api/v1/destinations/{orgID}', 'own org: any identity of it', `/api/v1/destinations/${A}`, statuses(403, all(ESS_ORG, 200)), {
    visible: () => [`${ESS_DEST.type}/${ESS_DEST.id}`],
    ids: (body) => (body as { destinationType: string; destinationID: string }[]).map((d) => `${d.destinationType}/${d.destinationID}`),
  }),
  row('CSS', 'GET /api/v1/destinations/{orgID}/{destType}/{destID}/objects', 'objects toward the ESS', `/api/v1/destinations/${A}/${ESS_DEST.type}/${ESS_DEST.id}/objects`, statuses(403, all(ESS_ORG, 200))),
  // The fleet read model (edgesync): the destinations listing's gate, then the object listings' narrowing.
  row('CSS', 'GET /api/v1/fleet/{orgID}', 'own org: any identity of it', `/api/v1/fleet/${A}`, statuses(403, all(ESS_ORG, 200))),
  // A stream never ends: a bad limit shows who gets past the gate (400) without opening one.
  row('CSS', 'GET /api/v1/fleet/{orgID}/events', 'past the gate to a bad limit', `/api/v1/fleet/${A}/events?limit=0`, statuses(403, all(ESS_ORG, 400))),
  row('CSS', 'GET /api/v1/fleet/{orgID}/objects/{objectType}/{objectID}', 'private object', `/api/v1/fleet/${A}/objects/plain/priv`, statuses(403, all(CSS_FULL, 200))),
  row('CSS', 'GET /api/v1/fleet/{orgID}/objects/{objectType}/{objectID}', 'public object', `/api/v1/fleet/${A}/objects/plain/pub`, statuses(403, all(ESS_ORG.filter((w) => w !== 'SVC.A'), 200))),
  row('CSS', 'GET /api/v1/fleet/{orgID}/nodes/{destType}/{destID}', 'the ESS', `/api/v1/fleet/${A}/nodes/${ESS_DEST.type}/${ESS_DEST.id}`, statuses(403, all(ESS_ORG, 200))),
  row('CSS', 'GET /api/v1/organizations', 'ADM sees its own org', '/api/v1/organizations', statuses(403, { SA: 200, 'ADM.A': 200, 'ADM.B': 200 }), {
    visible: (c) => (c.who === 'SA' ? [ORG_A, ORG_B] : [c.org ?? '']),
    ids: (body) => (body as { 'org-id': string }[]).map((o) => o['org-id']),
  }),
  row('CSS', 'GET /api/v1/health', 'any identity but an edge node', '/api/v1/health', statuses(200, { anon: 403, badPassword: 403, 'EN.A': 403, 'EN.B': 403 })),
];

const writeObject = (type: string, prefix: string, extra: Record<string, unknown> = {}) => (c: Caller) =>
  json(objectBody({ objectID: `${prefix}-${slug(c.who)}`, objectType: type, ...NOWHERE, ...extra }));

const cssWrites: Row[] = [
  row('CSS', `PUT ${R}`, 'new object', (c) => O('scratch', `w-${slug(c.who)}`), statuses(403, all(CSS_FULL, 204)), { body: writeObject('scratch', 'w') }),
  row('CSS', `PUT ${R}`, 'manifest: not an object admin', (c) => O('agent_upgrade_manifests', `w-${slug(c.who)}`), statuses(403, { SA: 204, 'ADM.A': 204 }), {
    body: writeObject('agent_upgrade_manifests', 'w'),
  }),
  row('CSS', `DELETE ${R}`, 'own object', (c) => O('scratch', `del-${slug(c.who)}`), statuses(403, all(CSS_FULL, 204))),
  // A sync admin's delete of nothing is 400, a possible writer's 404; nobody else learns whether
  // it exists (the reference answers 404 to anyone; README "Compatibility notes"). [§1.2 O3]
  row('CSS', `DELETE ${R}`, 'missing object', O('scratch', 'nosuch'), statuses(403, { SA: 400, ...all(MAY_WRITE_A, 404) })),
  row('CSS', `PUT ${R}/destinations`, 'replace the list', (c) => O('scratch', `dst-${slug(c.who)}`, 'destinations'), statuses(403, all(CSS_FULL, 204)), {
    body: () => json([`${ESS_DEST.type}:nosuch`]),
  }),
  row('CSS', `POST ${R}/destinations`, 'add one', (c) => O('scratch', `dst-${slug(c.who)}`, 'destinations'), statuses(403, all(CSS_FULL, 204)), {
    body: () => json({ action: 'add', destinations: [`${ESS_DEST.type}:other`] }),
  }),
  row('CSS', `PUT ${R}/data`, 'own object', (c) => O('scratch', `d-${slug(c.who)}`, 'data'), statuses(403, all(CSS_FULL, 204)), { body: () => 'new data' }),
  row('CSS', `PUT ${R}/data`, 'missing object', O('scratch', 'nosuch', 'data'), statuses(403, all(['SA', ...MAY_WRITE_A], 404)), { body: () => 'x' }),
  row('CSS', `PUT ${R}/destinations`, 'missing object', O('scratch', 'nosuch', 'destinations'), statuses(403, all(['SA', ...MAY_WRITE_A], 404)), {
    body: () => json([`${ESS_DEST.type}:nosuch`]),
  }),
  row('CSS', 'PUT /api/v1/objects/{orgID}/{objectType}', 'register a webhook', `/api/v1/objects/${A}/plain`, statuses(403, all(CSS_FULL, 204)), {
    body: () => json({ action: 'register', url: 'http://127.0.0.1:9/hook' }),
  }),
  // The marks need full read access; a sender's object is in no status they apply to. [§4.2, §1.2 O7–O11]
  row('CSS', `PUT ${R}/consumed`, 'sender side: 400 past the gate', O('plain', 'priv', 'consumed'), cssPrivate(400)),
  row('CSS', `PUT ${R}/received`, 'sender side: 400 past the gate', O('plain', 'priv', 'received'), cssPrivate(400)),
  row('CSS', `PUT ${R}/deleted`, 'not deleted: 400 past the gate', O('plain', 'priv', 'deleted'), cssPrivate(400)),
  row('CSS', `PUT ${R}/activate`, 'active already', O('plain', 'priv', 'activate'), cssPrivate(204)),
  row('CSS', `PUT ${R}/policyreceived`, 'policy object', O('plain', 'pol', 'policyreceived'), cssPrivate(204)),
  row('CSS', 'PUT /api/v1/organizations/{orgID}', 'own org', `/api/v1/organizations/${A}`, statuses(403, { SA: 204, 'ADM.A': 204 }), { body: () => json({ orgID: A }) }),
  // The CSS has no one to ask for a resend: 400 to those allowed to ask. [§1.6]
  row('CSS', 'POST /api/v1/resend', 'the CSS cannot resend', '/api/v1/resend', statuses(403, { SA: 400, 'ADM.A': 400, 'ADM.B': 400, 'USR.A': 400, 'USR.B': 400 })),
];

/** Run last: each destroys what the others look at. */
const cssLast: Row[] = [
  row('CSS', 'DELETE /api/v1/organizations/{orgID}', 'own org', `/api/v1/organizations/${A}`, statuses(403, { SA: 204, 'ADM.A': 204 })),
];
const cssShutdown = row('CSS', 'POST /api/v1/shutdown', 'sync admin only', '/api/v1/shutdown', statuses(403, { SA: 204 }));

// ---------------------------------------------------------------------------------------------
// ESS rows: no org in object paths; the ESS's org is A. [§1.1, §4.3 ESS, §5.12]

const essReads: Row[] = [
  row('ESS', `GET ${RE}`, 'private object', OE('plain', 'priv'), statuses(403, all(ESS_ORG, 200))),
  row('ESS', `GET ${RE}`, 'public object: still the org only', OE('plain', 'pub'), statuses(403, all(ESS_ORG, 200))),
  // A missing object is 403 to a service: it is not among the objects it may read. [§4.3 ESS + SVC]
  row('ESS', `GET ${RE}`, 'missing object', OE('plain', 'nosuch'), statuses(403, { ...all(ESS_ORG, 404), 'SVC.A': 403 })),
  row('ESS', 'GET /api/v1/objects/{objectType}', 'received objects', '/api/v1/objects/plain', statuses(403, all(ESS_ORG, 200)), { visible: () => ['priv', 'pub'] }),
  row('ESS', 'GET /api/v1/objects/{objectType}', 'all objects', '/api/v1/objects/plain?all_objects=true', statuses(403, all(ESS_ORG, 200)), { visible: () => ['priv', 'pub'] }),
  row('ESS', `GET ${RE}/status`, 'private object', OE('plain', 'priv', 'status'), statuses(403, all(ESS_ORG, 200))),
  // Always 404 on an ESS, past the read gate. [§1.2 O13]
  row('ESS', `GET ${RE}/destinations`, 'none on an ESS', OE('plain', 'priv', 'destinations'), statuses(403, all(ESS_ORG, 404))),
  row('ESS', `GET ${RE}/data`, 'private object', OE('plain', 'priv', 'data'), statuses(403, all(ESS_ORG, 200))),
  // A service reads an object whose policy names it (in the version range), or a public one. [§4.3 ESS + SVC]
  row('ESS', `GET ${RE}`, 'policy names the service', OE('epol', 'mine'), statuses(403, all(ESS_ORG, 200))),
  row('ESS', `GET ${RE}`, 'policy names another service', OE('epol', 'other'), statuses(403, { ...all(ESS_ORG, 200), 'SVC.A': 403 })),
  row('ESS', `GET ${RE}`, 'policy names another version', OE('epol', 'old'), statuses(403, { ...all(ESS_ORG, 200), 'SVC.A': 403 })),
  row('ESS', `GET ${RE}`, 'policy names another service, public', OE('epol', 'pubother'), statuses(403, all(ESS_ORG, 200))),
  row('ESS', `GET ${RE}/status`, 'policy names another service', OE('epol', 'other', 'status'), statuses(403, { ...all(ESS_ORG, 200), 'SVC.A': 403 })),
  row('ESS', `GET ${RE}/data`, 'policy names another service', OE('epol', 'other', 'data'), statuses(403, { ...all(ESS_ORG, 404), 'SVC.A': 403 })),
  row('ESS', 'GET /api/v1/objects/{objectType}', 'all objects, by service policy', '/api/v1/objects/epol?all_objects=true', statuses(403, all(ESS_ORG, 200)), {
    visible: (c) => (c.who === 'SVC.A' ? ['mine', 'pubother'] : ['mine', 'other', 'old', 'pubother', ...CALLERS.map((x) => `del-${slug(x.who)}`)]),
  }),
  row('ESS', 'GET /api/v1/health', 'any identity but an edge node', '/api/v1/health', statuses(200, { anon: 403, badPassword: 403, 'EN.A': 403, 'EN.B': 403 })),
  row('ESS', 'GET /api/v1/fleet/{orgID}', 'its own org', `/api/v1/fleet/${A}`, statuses(403, all(ESS_ORG, 200))),
  row('ESS', 'GET /api/v1/fleet/{orgID}/events', 'past the gate to a bad limit', `/api/v1/fleet/${A}/events?limit=0`, statuses(403, all(ESS_ORG, 400))),
  row('ESS', 'GET /api/v1/fleet/{orgID}/objects/{objectType}/{objectID}', 'private object', `/api/v1/fleet/${A}/objects/plain/priv`, statuses(403, all(ESS_ORG, 200))),
  // No orgs on an ESS: 400 to those the CSS would let through. [§1.4, §5.12]
  row('ESS', 'GET /api/v1/organizations', 'an ESS has none', '/api/v1/organizations', statuses(403, { SA: 400, 'ADM.A': 400, 'ADM.B': 400 })),
];

const essWrites: Row[] = [
  // Every role of the ESS's org writes, services included. [§4.4 ESS]
  row('ESS', `PUT ${RE}`, 'new object', (c) => OE('escratch', `w-${slug(c.who)}`), statuses(403, all(ESS_ORG, 204)), { body: writeObject('escratch', 'w', { destinationType: '', destinationID: '' }) }),
  row('ESS', `DELETE ${RE}`, 'own object', (c) => OE('escratch', `del-${slug(c.who)}`), statuses(403, all(ESS_ORG, 204))),
  row('ESS', `DELETE ${RE}`, 'missing object', OE('escratch', 'nosuch'), statuses(403, { ...all(ESS_ORG, 400), 'SVC.A': 403 })),
  row('ESS', `DELETE ${RE}`, 'policy names another service', (c) => OE('epol', `del-${slug(c.who)}`), statuses(403, { ...all(ESS_ORG, 204), 'SVC.A': 403 })),
  // The marks need the object's policy to name a service; past that, a sender's object takes no mark.
  row('ESS', `PUT ${RE}/consumed`, 'policy names another service', OE('epol', 'other', 'consumed'), statuses(403, { ...all(ESS_ORG, 400), 'SVC.A': 403 })),
  row('ESS', `PUT ${RE}/consumed`, 'public, policy names another service', OE('epol', 'pubother', 'consumed'), statuses(403, { ...all(ESS_ORG, 400), 'SVC.A': 403 })),
  row('ESS', `PUT ${RE}/data`, 'own object', (c) => OE('escratch', `d-${slug(c.who)}`, 'data'), statuses(403, all(ESS_ORG, 204)), { body: () => 'new data' }),
  // Not a service; no ACLs on an ESS. [§1.2 O6]
  row('ESS', 'PUT /api/v1/objects/{objectType}', 'register a webhook', '/api/v1/objects/plain', statuses(403, { ...all(ESS_ORG, 204), 'SVC.A': 403 }), {
    body: () => json({ action: 'register', url: 'http://127.0.0.1:9/hook' }),
  }),
  row('ESS', `PUT ${RE}/consumed`, 'own received object', (c) => OE('mark', `c-${slug(c.who)}`, 'consumed'), statuses(403, all(ESS_ORG, 204))),
  row('ESS', `PUT ${RE}/received`, 'own received object', (c) => OE('mark', `r-${slug(c.who)}`, 'received'), statuses(403, all(ESS_ORG, 204))),
  row('ESS', `PUT ${RE}/deleted`, 'not deleted: 400 past the gate', OE('plain', 'priv', 'deleted'), statuses(403, all(ESS_ORG, 400))),
  row('ESS', `PUT ${RE}/activate`, 'receiving side: 400 past the gate', OE('plain', 'priv', 'activate'), statuses(403, all(ESS_ORG, 400))),
  // Destination updates and policyreceived are CSS-only: 400 to any client, as the reference
  // (what is refused is the route, not the caller; it tells nothing of the objects). [§5.12]
  row('ESS', `PUT ${RE}/policyreceived`, 'CSS only', OE('plain', 'priv', 'policyreceived'), statuses(403, all(CLIENTS, 400))),
  row('ESS', `PUT ${RE}/destinations`, 'CSS only', OE('plain', 'priv', 'destinations'), statuses(403, all(CLIENTS, 400)), { body: () => json(['a:b']) }),
  row('ESS', `POST ${RE}/destinations`, 'CSS only', OE('plain', 'priv', 'destinations'), statuses(403, all(CLIENTS, 400)), {
    body: () => json({ action: 'add', destinations: ['a:b'] }),
  }),
  row('ESS', 'PUT /api/v1/organizations/{orgID}', 'an ESS has none', `/api/v1/organizations/${A}`, statuses(403, { SA: 400, 'ADM.A': 400 }), { body: () => json({ orgID: A }) }),
  row('ESS', 'DELETE /api/v1/organizations/{orgID}', 'an ESS has none', `/api/v1/organizations/${A}`, statuses(403, { SA: 400, 'ADM.A': 400 })),
  // ADM, USR or SA [§1.6]; of the ESS's org (the reference takes any org's: README "Compatibility notes").
  row('ESS', 'POST /api/v1/resend', 'the ESS asks its CSS', '/api/v1/resend', statuses(403, { SA: 204, 'ADM.A': 204, 'USR.A': 204 })),
];
const essShutdown = row('ESS', 'POST /api/v1/shutdown', 'sync admin only', '/api/v1/shutdown', statuses(403, { SA: 204 }));

// ---------------------------------------------------------------------------------------------
// SPI rows: the claim of X-Sync-Service-Dest against the caller. [§4.6, §6]

type Claim = 'self' | 'other node' | 'other org';
/** `self` is EN.A's own destination; `other node` another node of A; `other org` EN.B's own. */
const CLAIMS: Record<Claim, { org: string; type: string; id: string }> = {
  self: { org: ORG_A, type: 'edge', id: 'na' },
  'other node': { org: ORG_A, type: 'edge', id: 'zz' },
  'other org': { org: ORG_B, type: 'edge', id: 'nb' },
};
/** Who may claim it: the node itself, or an admin of its org (a user only with the destinations ACL). */
const CLAIMANTS: Record<Claim, readonly Who[]> = { self: ['EN.A', 'ADM.A'], 'other node': ['ADM.A'], 'other org': ['EN.B', 'ADM.B'] };

function spiRow(route: string, claim: Claim, path: string | ((c: Caller) => string), ok: number, more: Partial<Row> = {}, claimantsOk: readonly Who[] = CLAIMANTS[claim]): Row {
  const c = CLAIMS[claim];
  return row('CSS', route, `claim: ${claim}`, path, statuses(403, all(claimantsOk, ok)), {
    headers: () => ({ 'X-Sync-Service-Dest': `${c.org}/${c.type}/${c.id}` }),
    ...more,
  });
}

/**
 * What a claimant gets for each object action, sent in this order about an object its node
 * publishes (`update`, then deletes): past the claim check, the protocol's own answer, 204, or
 * 409 for an ack of nothing pending. [sync-protocol §1]
 */
const SPI_ACTION_OK: Record<Exclude<SpiObjectAction, 'data'>, number> = {
  update: 204,
  updated: 409,
  consumed: 409,
  ackconsumed: 409,
  received: 409,
  ackreceived: 204,
  delete: 204,
  ackDelete: 204,
  deleted: 204,
  ackDeleted: 409,
  feedback: 409,
};
const SPI_ACTION_BODY: Partial<Record<SpiObjectAction, Record<string, unknown>>> = {
  update: { objectType: 'spi', destinationOrgID: A, noData: true, instanceID: 1 },
  delete: { objectType: 'spi', destinationOrgID: A, instanceID: 1 },
  feedback: { Code: 1, RetryInterval: 0, Reason: 'matrix' },
};
/** One object per claim and caller, so that each sequence of actions stands on its own. */
const spiObject = (claim: Claim, c: Caller): string => `o-${claim.replace(' ', '-')}-${slug(c.who)}`;

/** Without a claim, or a malformed one, nobody gets in: not even the node the path names. [§4.6] */
const spiBadClaims: Row[] = [
  row('CSS', 'PUT /spi/v1/ping/{org}/{destType}/{destID}', 'no claim', `/spi/v1/ping/${A}/edge/na`, statuses(403)),
  row('CSS', 'PUT /spi/v1/ping/{org}/{destType}/{destID}', 'claim without an id', `/spi/v1/ping/${A}/edge/na`, statuses(403), { headers: () => ({ 'X-Sync-Service-Dest': `${A}/edge` }) }),
  row('CSS', 'GET /spi/v1/objects/', 'claim with an empty type', '/spi/v1/objects/', statuses(403), { headers: () => ({ 'X-Sync-Service-Dest': `${A}//na` }) }),
];

/** Object actions act in the path's org, which must be the claim's: an ESS of B cannot touch A's objects. */
const inA = (claim: Claim): readonly Who[] => (CLAIMS[claim].org === ORG_A ? CLAIMANTS[claim] : []);

/** Everything a node does on the SPI, in the order a node does it, under one claim. */
function spiSequence(claim: Claim): Row[] {
  const reg = (action: string): string => `/spi/v1/${action}/${CLAIMS[claim].org}/${CLAIMS[claim].type}/${CLAIMS[claim].id}`;
  const rows: Row[] = [
    // A node the CSS does not know must register as new: 404 past the claim check. [§6]
    spiRow('PUT /spi/v1/register/{org}/{destType}/{destID}', claim, reg('register'), 404),
    spiRow('PUT /spi/v1/register-new/{org}/{destType}/{destID}', claim, reg('register-new'), 204),
    spiRow('PUT /spi/v1/ping/{org}/{destType}/{destID}', claim, reg('ping'), 204),
    spiRow('PUT /spi/v1/register/{org}/{destType}/{destID}', claim, reg('register'), 204, { variant: `claim: ${claim}, known node` }),
    spiRow('GET /spi/v1/objects/', claim, '/spi/v1/objects/', 204),
    spiRow('PUT /spi/v1/objects/{org}/{type}/{id}/{instanceID}/{action}', claim, `/spi/v1/objects/${A}/plain/priv/1/consumed`, 409, { variant: `claim: ${claim}, not its object` }, inA(claim)),
    spiRow('GET /spi/v1/objects/{org}/{type}/{id}/{instanceID}/{dataID}/data', claim, `/spi/v1/objects/${A}/plain/priv/1/1/data`, 404, {}, inA(claim)),
    spiRow('PUT /spi/v1/objects/{org}/{type}/{id}/{instanceID}/{dataID}/data', claim, `/spi/v1/objects/${A}/plain/priv/1/1/data`, 409, { body: () => 'x' }, inA(claim)),
    spiRow('PUT /spi/v1/objects/{org}/resend', claim, `/spi/v1/objects/${A}/resend`, 204, {}, inA(claim)),
  ];
  // Every action of the protocol, from the list the SPI parses, so that a new one gets a row.
  for (const action of SPI_OBJECT_ACTIONS.filter((a) => a !== 'data')) {
    const body = SPI_ACTION_BODY[action];
    rows.push(
      spiRow('PUT /spi/v1/objects/{org}/{type}/{id}/{instanceID}/{action}', claim, (c) => `/spi/v1/objects/${A}/spi/${spiObject(claim, c)}/1/${action}`, SPI_ACTION_OK[action], {
        variant: `claim: ${claim}, ${action}`,
        ...(body !== undefined ? { body: (c: Caller) => json({ objectID: spiObject(claim, c), ...body }) } : {}),
      }, inA(claim)),
    );
  }
  rows.push(
    spiRow('PUT /spi/v1/objects/{org}/acks', claim, `/spi/v1/objects/${A}/acks`, 200, { body: () => '[{"action":"received","objectType":"plain","objectID":"priv","instanceID":1,"dataID":1}]' }, inA(claim)),
    spiRow('GET /spi/v1/early/{org}/{type}/{id}', claim, `/spi/v1/early/${A}/plain/priv`, 404, {}, inA(claim)),
    spiRow('PUT /spi/v1/unregister/{org}/{destType}/{destID}', claim, reg('unregister'), 204),
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------

describe('every route has rows', () => {
  test('each route of route-table.ts, on each node that serves it, has at least one row', () => {
    const rows = [...cssReads, ...cssWrites, ...cssLast, cssShutdown, ...essReads, ...essWrites, essShutdown, ...aclRouteRows];
    const covered = new Set(rows.map((r) => `${r.node} ${r.route}`));
    const missing = ROUTES.flatMap((r) => r.nodes.map((n) => `${n} ${r.method} ${pathOn(n, r.path)}`)).filter((k) => !covered.has(k));
    expect(missing).toEqual([]);
  });

  test('each SPI route has rows, for every action the SPI parses', () => {
    const routes = new Set((Object.keys(CLAIMS) as Claim[]).flatMap((claim) => spiSequence(claim)).map((r) => `${r.route} ${r.variant.split(', ')[1] ?? ''}`));
    for (const action of SPI_REGISTRATION_ACTIONS) expect([...routes].some((r) => r.startsWith(`PUT /spi/v1/${action}/`))).toBe(true);
    for (const action of SPI_OBJECT_ACTIONS.filter((a) => a !== 'data')) expect([...routes].some((r) => r.endsWith(` ${action}`))).toBe(true);
    for (const route of ['GET /spi/v1/objects/ ', 'PUT /spi/v1/objects/{org}/resend ', 'PUT /spi/v1/objects/{org}/acks ', 'GET /spi/v1/early/{org}/{type}/{id} ']) expect(routes).toContain(route);
    expect([...routes].filter((r) => r.includes('/data'))).toHaveLength(2);
  });

  test('every caller kind is in the matrix: 6 kinds in two orgs, a sync admin, anonymous, a wrong password', () => {
    expect(CALLERS.map((c) => c.who).sort()).toEqual(
      ['SA', 'anon', 'badPassword', ...['ADM', 'OADM', 'USR', 'NODE', 'SVC', 'EN'].flatMap((k) => [`${k}.A`, `${k}.B`])].sort(),
    );
  });
});

describe('the client API of a CSS', () => {
  test('reads: full, public-only or refused, as §4.3 and §4.5 say', async () => {
    expect(await run(css, cssReads, { independent: true })).toEqual([]);
  });

  test('writes: the write check of §4.4, on each caller\'s own object', async () => {
    expect(await run(css, cssWrites)).toEqual([]);
  });
});

describe('the client API of an ESS', () => {
  test('reads: every identity of the ESS\'s org, nobody of another', async () => {
    expect(await run(ess, essReads, { independent: true })).toEqual([]);
  });

  test('writes: every identity of the ESS\'s org, services included', async () => {
    expect(await run(ess, essWrites)).toEqual([]);
  });
});

describe('the SPI of a CSS', () => {
  test('an ESS acts only as itself, an admin for any node of its org, nobody for another org', async () => {
    // The claims name three different nodes: their sequences run side by side.
    const problems = await Promise.all((Object.keys(CLAIMS) as Claim[]).map((claim) => run(css, spiSequence(claim))));
    expect([...problems.flat(), ...(await run(css, spiBadClaims, { independent: true }))]).toEqual([]);
  });
});


// ---------------------------------------------------------------------------------------------
// MQTT on the CSS's embedded broker: topics carry no org, so a multi-org CSS lets in only edge
// nodes (each held to its own `type/id` topics) and sync admins. [sync-protocol §2; embedded-broker.ts]

async function mqttLogin(c: Caller): Promise<MqttClient | null> {
  try {
    const client = await connectAsync(brokerUrl, {
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      ...(c.auth !== null ? { username: c.auth.user, password: c.auth.pass } : {}),
    });
    t.add(() => client.endAsync(true));
    return client;
  } catch {
    return null;
  }
}

/** The QoS granted per filter; 128 is the SUBACK refusal. */
async function granted(client: MqttClient, filter: string): Promise<number> {
  try {
    return (await client.subscribeAsync(filter, { qos: 1 }))[0]?.qos ?? -1;
  } catch (e) {
    if (e instanceof ErrorWithSubackPacket) {
      const g = e.packet.granted[0];
      return typeof g === 'number' ? g : ((g as { qos?: number } | undefined)?.qos ?? -1);
    }
    throw e;
  }
}

/** Topics of nodes: EN.A's own (`edge/na`), another node of A (`edge/zz`), EN.B's own (`edge/nb`). */
const NODES = { own: ['edge', 'na'], other: ['edge', 'zz'], otherOrg: ['edge', 'nb'] } as const;
const evt = ([type, id]: readonly [string, string]): string => `iot-2/type/${type}/id/${id}/evt/matrix/fmt/bin`;
/** Who may log in, and then what: an edge node its own topics only, a sync admin anything. */
const MQTT_LOGIN: readonly Who[] = ['SA', 'EN.A', 'EN.B'];
const OWN_NODE: Partial<Record<Who, readonly [string, string]>> = { 'EN.A': NODES.own, 'EN.B': NODES.otherOrg };

describe('the topics of the CSS\'s embedded MQTT broker', () => {
  test('a login is refused (CONNACK) to every caller but edge nodes and the sync admin', async () => {
    const got = await Promise.all(CALLERS.map(async (c) => [c.who, (await mqttLogin(c)) !== null] as const));
    mqttCases += got.length;
    expect(got).toEqual(CALLERS.map((c) => [c.who, MQTT_LOGIN.includes(c.who)]));
  });

  test('subscriptions: an edge node only its own cmd topic; the sync admin any (SUBACK 0x80 otherwise)', async () => {
    const filters = [commandTopic(...NODES.own), commandTopic(...NODES.other), commandTopic(...NODES.otherOrg), CSS_EVENT_FILTER, '#'];
    for (const who of MQTT_LOGIN) {
      const client = await mqttLogin(caller(who));
      if (client === null) throw new Error(`${who} was refused`);
      const own = OWN_NODE[who];
      const want = filters.map((f) => (who === 'SA' || (own !== undefined && f === commandTopic(...own)) ? 1 : 128));
      const got: number[] = [];
      for (const f of filters) got.push(await granted(client, f));
      mqttCases += filters.length;
      expect([who, got]).toEqual([who, want]);
    }
  });

  test('publishes: an edge node only on its own evt topics; anything else is dropped and cuts it off', async () => {
    const watcher = await mqttLogin(SA);
    if (watcher === null) throw new Error('the sync admin was refused');
    const seenTopics: string[] = [];
    watcher.on('message', (topic, payload) => {
      if (payload.toString() === 'matrix') seenTopics.push(topic);
    });
    await watcher.subscribeAsync('iot-2/type/+/id/+/evt/matrix/fmt/bin', { qos: 1 });
    const topics = [evt(NODES.own), evt(NODES.other), evt(NODES.otherOrg), commandTopic(...NODES.own)];
    const want: string[] = [];
    for (const who of ['EN.A', 'EN.B'] as const) {
      for (const topic of topics) {
        // A fresh connection each time: a refused publish closes it.
        const client = await mqttLogin(caller(who));
        if (client === null) throw new Error(`${who} was refused`);
        const closed = new Promise<boolean>((resolve) => {
          client.once('close', () => resolve(true));
          setTimeout(() => resolve(false), 500);
        });
        client.publish(topic, 'matrix', { qos: 0 });
        const own = OWN_NODE[who]!;
        const allowed = topic === evt(own);
        if (allowed) want.push(topic);
        mqttCases += 1;
        expect([who, topic, await closed]).toEqual([who, topic, !allowed]);
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(seenTopics.sort()).toEqual(want.sort());
  });
});

// ---------------------------------------------------------------------------------------------
// ACLs (CSS only): the routes of §1.5, and the rows whose answer an ACL changes (§4.3, §4.4).

const SEC = '/api/v1/security/{aclType}/{orgID}';
/** ADM of the org or SA; everyone else 403, OADM, USR and NODE included. [§1.5] */
const aclAdmins = (ok: number): Statuses => statuses(403, { SA: ok, 'ADM.A': ok });
const aclEntry = (username: string, aclUserType: 'user' | 'node', aclRole: string): Record<string, string> => ({ Username: username, ACLUserType: aclUserType, ACLRole: aclRole });
const entryNames = (body: unknown): string[] => (body as { Username: string }[]).map((e) => e.Username);

const aclRouteRows: Row[] = [
  row('CSS', `GET ${SEC}`, 'one ACL by ?key=', `/api/v1/security/objects/${A}?key=acl`, aclAdmins(200), { visible: () => ['usra', 'nodea'], ids: entryNames }),
  row('CSS', `GET ${SEC}`, 'one user type', `/api/v1/security/objects/${A}?key=acl&acl_usertype=node`, aclAdmins(200), { visible: () => ['nodea'], ids: entryNames }),
  row('CSS', `GET ${SEC}`, 'the keys', `/api/v1/security/destinations/${A}?all_keys=true`, aclAdmins(200), { visible: () => ['edge', 'ess', 'nowhere'], ids: (b) => b as string[] }),
  // The path key is ignored: this reads the all-types ACL, which org A does not have. [§1.5 ⚠]
  row('CSS', `GET ${SEC}/{key}`, 'path key ignored', `/api/v1/security/objects/${A}/acl`, aclAdmins(404)),
  row('CSS', `PUT ${SEC}/{key}`, 'add to a type\'s ACL', `/api/v1/security/objects/${A}/acl`, aclAdmins(204), {
    body: (c) => json({ action: 'add', users: [aclEntry(`x-${slug(c.who)}`, 'user', 'aclReader')] }),
  }),
  row('CSS', `PUT ${SEC}`, 'add to the all-types ACL', `/api/v1/security/destinations/${A}`, aclAdmins(204), {
    body: (c) => json({ action: 'add', users: [aclEntry(`y-${slug(c.who)}`, 'user', '')] }),
  }),
  row('CSS', `DELETE ${SEC}/{key}/{aclUserType}/{username}`, 'one entry', (c) => `/api/v1/security/objects/${A}/acl/user/x-${slug(c.who)}`, aclAdmins(204)),
];

/** With the ACLs of org A: usra writes `acl` to `ess`, `nowhere` and `edge` nodes; nodea reads `acl`. */
const WITH_ACL: readonly Who[] = [...CSS_FULL, 'USR.A', 'NODE.A'];
const aclTypeRows: Row[] = [
  row('CSS', `GET ${R}`, 'private, objects ACL: user and node', O('acl', 'priv'), statuses(403, all(WITH_ACL, 200))),
  row('CSS', `GET ${R}/data`, 'private, objects ACL: user and node', O('acl', 'priv', 'data'), statuses(403, all(WITH_ACL, 200))),
  row('CSS', 'GET /api/v1/objects/{orgID}/{objectType}', 'all objects, objects ACL', `/api/v1/objects/${A}/acl?all_objects=true`, cssPublic(200), {
    visible: seen(['priv', 'pub', ...CALLERS.flatMap((c) => [`del-${slug(c.who)}`, `d-${slug(c.who)}`])], ['pub'], WITH_ACL),
  }),
  row('CSS', `PUT ${R}/consumed`, 'full read through the ACL', O('acl', 'priv', 'consumed'), statuses(403, all(WITH_ACL, 400))),
  // aclWriter and a destinations ACL for every addressed type; a reader cannot write. [§4.4]
  row('CSS', `PUT ${R}`, 'writer, to a type in its destinations ACL', (c) => O('acl', `w-${slug(c.who)}`), statuses(403, all([...CSS_FULL, 'USR.A'], 204)), {
    body: writeObject('acl', 'w', TO_ESS),
  }),
  row('CSS', `PUT ${R}`, 'writer, to a type not in its destinations ACL', (c) => O('acl', `boat-${slug(c.who)}`), statuses(403, all(CSS_FULL, 204)), {
    body: writeObject('acl', 'boat', { destinationType: 'boat', destinationID: 'b1' }),
  }),
  row('CSS', `PUT ${R}`, 'writer, broadcast without the all-types destinations ACL', (c) => O('acl', `all-${slug(c.who)}`), statuses(403, all(CSS_FULL, 204)), {
    body: writeObject('acl', 'all', { destinationType: '', destinationID: '' }),
  }),
  row('CSS', `PUT ${R}/data`, 'writer', (c) => O('acl', `d-${slug(c.who)}`, 'data'), statuses(403, all([...CSS_FULL, 'USR.A'], 204)), { body: () => 'new data' }),
  row('CSS', `DELETE ${R}`, 'writer', (c) => O('acl', `del-${slug(c.who)}`), statuses(403, all([...CSS_FULL, 'USR.A'], 204))),
  row('CSS', 'PUT /api/v1/objects/{orgID}/{objectType}', 'webhook: writers', `/api/v1/objects/${A}/acl`, statuses(403, all([...CSS_FULL, 'USR.A'], 204)), {
    body: () => json({ action: 'register', url: 'http://127.0.0.1:9/hook' }),
  }),
  // A user may claim a node whose type is in its destinations ACL. [§4.6]
  spiRow('PUT /spi/v1/register-new/{org}/{destType}/{destID}', 'self', `/spi/v1/register-new/${A}/edge/na`, 204, { variant: 'claim: self, user with the destinations ACL' }, [
    ...CLAIMANTS.self,
    'USR.A',
  ]),
];

async function putAcl(aclType: 'objects' | 'destinations', org: string, key: string, users: Record<string, string>[], action = 'add'): Promise<void> {
  await asAdmin(css, 'PUT', `/api/v1/security/${aclType}/${org}${key === '*' ? '' : `/${key}`}`, { action, users });
}

describe('ACLs on a CSS', () => {
  beforeAll(async () => {
    await putAcl('objects', A, 'acl', [aclEntry('usra', 'user', 'aclWriter'), aclEntry('nodea', 'node', 'aclReader')]);
    for (const type of [ESS_DEST.type, 'nowhere', 'edge']) await putAcl('destinations', A, type, [aclEntry('usra', 'user', '')]);
    await Promise.all(
      CALLERS.flatMap((c) => [
        asAdmin(css, 'PUT', O('acl', `del-${slug(c.who)}`), objectBody({ objectID: `del-${slug(c.who)}`, objectType: 'acl', ...NOWHERE })),
        asAdmin(css, 'PUT', O('acl', `d-${slug(c.who)}`), objectBody({ objectID: `d-${slug(c.who)}`, objectType: 'acl', ...NOWHERE }, 'old')),
      ]),
    );
  });

  test('the ACL routes: an admin of the org or a sync admin, nobody else', async () => {
    expect(await run(css, aclRouteRows)).toEqual([]);
  });

  test('an object type with an ACL: its users read it whole, its writers write it where their destinations ACL lets them', async () => {
    expect(await run(css, aclTypeRows)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The rules of the issue, one by one, in words.

/** One request as one caller, its status. */
async function statusOf(node: RunningProcess, who: Who, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<number> {
  const c = caller(who);
  const r: Row = { node: 'CSS', route: `${method} ${path}`, variant: 'rule', method, path: () => path, expect: statuses(0), headers: () => headers, ...(body !== undefined ? { body: () => json(body) } : {}) };
  const o = await send(node.url, r, c);
  sent.push(o);
  return o.status;
}

describe('the rules, one by one', () => {
  test('an edge node cannot use the client API, only the SPI, and there only as itself', async () => {
    const paths = ['/api/v1/health', O('plain', 'pub'), `/api/v1/objects/${A}/plain?all_objects=true`, `/api/v1/destinations/${A}`, '/api/v1/organizations'];
    for (const path of paths) expect([path, await statusOf(css, 'EN.A', 'GET', path)]).toEqual([path, 403]);
    expect(await statusOf(css, 'EN.A', 'PUT', O('plain', 'en'), objectBody({ objectID: 'en', objectType: 'plain', ...NOWHERE }))).toBe(403);
    expect(await statusOf(ess, 'EN.A', 'GET', OE('plain', 'pub'))).toBe(403);
    expect(await statusOf(css, 'EN.A', 'PUT', `/spi/v1/register-new/${A}/edge/na`, undefined, { 'X-Sync-Service-Dest': `${A}/edge/na` })).toBe(204);
    expect(await statusOf(css, 'EN.A', 'PUT', `/spi/v1/register-new/${A}/edge/nb`, undefined, { 'X-Sync-Service-Dest': `${A}/edge/nb` })).toBe(403);
  });

  describe('with ACLs', () => {
    const put = (who: Who, id: string, meta: Record<string, unknown>): Promise<number> =>
      statusOf(css, who, 'PUT', O('rules', id), objectBody({ objectID: id, objectType: 'rules', ...meta }));

    test('a user without the destinations ACL of a type cannot address that type (nor broadcast without the all-types one)', async () => {
      await putAcl('objects', A, 'rules', [aclEntry('usra', 'user', 'aclWriter')]);
      expect(await put('USR.A', 'r1', { destinationType: 'camera', destinationID: 'c1' })).toBe(403);
      expect(await put('USR.A', 'r1', { destinationsList: [`${ESS_DEST.type}:e1`, 'camera:c1'] })).toBe(403);
      expect(await put('USR.A', 'r1', {})).toBe(403);
      await putAcl('destinations', A, 'camera', [aclEntry('usra', 'user', '')]);
      expect(await put('USR.A', 'r1', { destinationType: 'camera', destinationID: 'c1' })).toBe(204);
      expect(await put('USR.A', 'r1', { destinationsList: [`${ESS_DEST.type}:e1`, 'camera:c1'] })).toBe(204);
      expect(await put('USR.A', 'r1', {})).toBe(403);
      await putAcl('destinations', A, '*', [aclEntry('usra', 'user', '')]);
      expect(await put('USR.A', 'r1', {})).toBe(204);
    });

    test('a reader cannot write: it reads the type whole, and every write is 403', async () => {
      await putAcl('objects', A, 'rules', [aclEntry('nodea', 'node', 'aclReader')]);
      await putAcl('destinations', A, '*', [aclEntry('nodea', 'node', '')]);
      await asAdmin(css, 'PUT', O('rules', 'r2'), objectBody({ objectID: 'r2', objectType: 'rules', ...NOWHERE }, 'r2'));
      expect(await statusOf(css, 'NODE.A', 'GET', O('rules', 'r2'))).toBe(200);
      expect(await statusOf(css, 'NODE.A', 'GET', O('rules', 'r2', 'data'))).toBe(200);
      expect(await put('NODE.A', 'r2', NOWHERE)).toBe(403);
      expect(await put('NODE.A', 'r3', NOWHERE)).toBe(403);
      expect(await statusOf(css, 'NODE.A', 'PUT', O('rules', 'r2', 'data'), 'x')).toBe(403);
      expect(await statusOf(css, 'NODE.A', 'DELETE', O('rules', 'r2'))).toBe(403);
      expect(await statusOf(css, 'NODE.A', 'PUT', O('rules', 'r2', 'destinations'), ['a:b'])).toBe(403);
      expect(await statusOf(css, 'NODE.A', 'PUT', `/api/v1/objects/${A}/rules`, { action: 'register', url: 'http://127.0.0.1:9/x' })).toBe(403);
    });

    test('`*` grants the whole org: every type (key `*`) and every user of the type (username `*`), in that org only', async () => {
      await asAdmin(css, 'PUT', `/api/v1/objects/${ORG_B}/secret/s1`, objectBody({ objectID: 's1', objectType: 'secret', ...NOWHERE }, 's1'));
      await asAdmin(css, 'PUT', `/api/v1/objects/${ORG_B}/other/s2`, objectBody({ objectID: 's2', objectType: 'other', ...NOWHERE }, 's2'));
      const reads = async (who: Who): Promise<number[]> => [
        await statusOf(css, who, 'GET', `/api/v1/objects/${ORG_B}/secret/s1`),
        await statusOf(css, who, 'GET', `/api/v1/objects/${ORG_B}/other/s2`),
      ];
      expect(await reads('USR.B')).toEqual([403, 403]);
      await putAcl('objects', ORG_B, '*', [aclEntry('*', 'user', 'aclReader')]);
      expect(await reads('USR.B')).toEqual([200, 200]);
      // Users only (the entry's user type), and org B only.
      expect(await reads('NODE.B')).toEqual([403, 403]);
      expect(await reads('USR.A')).toEqual([403, 403]);
      expect(await statusOf(css, 'USR.B', 'GET', O('plain', 'priv'))).toBe(403);
      // A reader everywhere writes nowhere.
      expect(await statusOf(css, 'USR.B', 'PUT', `/api/v1/objects/${ORG_B}/secret/s3`, objectBody({ objectID: 's3', objectType: 'secret', ...NOWHERE }))).toBe(403);
    });

    test('removing the last user of an ACL deletes the ACL', async () => {
      const keys = async (): Promise<string[]> => {
        const res = await fetch(`${css.url}/api/v1/security/objects/${A}?all_keys=true`, { headers: { authorization: `Basic ${Buffer.from(`${SA.auth!.user}:${SA.auth!.pass}`).toString('base64')}` } });
        return res.status === 200 ? ((await res.json()) as string[]) : [];
      };
      await putAcl('objects', A, 'short', [aclEntry('usra', 'user', 'aclWriter'), aclEntry('nodea', 'node', 'aclReader')]);
      expect(await keys()).toContain('short');
      expect(await statusOf(css, 'ADM.A', 'DELETE', `/api/v1/security/objects/${A}/short/user/usra`)).toBe(204);
      expect(await keys()).toContain('short');
      expect(await statusOf(css, 'ADM.A', 'DELETE', `/api/v1/security/objects/${A}/short/node/nodea`)).toBe(204);
      expect(await keys()).not.toContain('short');
      expect(await statusOf(css, 'ADM.A', 'GET', `/api/v1/security/objects/${A}?key=short`)).toBe(404);
      // And with it what it granted.
      await asAdmin(css, 'PUT', O('short', 'k1'), objectBody({ objectID: 'k1', objectType: 'short', ...NOWHERE }));
      expect(await statusOf(css, 'USR.A', 'GET', O('short', 'k1'))).toBe(403);
    });
  });
});

describe('what destroys the fixtures, last', () => {
  test('deleting org A: its admin or a sync admin', async () => {
    expect(await run(css, cssLast, { sequential: true })).toEqual([]);
  });

  test('shutdown: the sync admin only, on both nodes', async () => {
    expect([...(await run(ess, [essShutdown], { sequential: true })), ...(await run(css, [cssShutdown], { sequential: true }))]).toEqual([]);
  });
});

