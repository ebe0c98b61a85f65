// The dashboard: log in, then the fleet (nodes, objects, deliveries) kept live by the server's
// event stream, with a page per object and per node behind hash routes. Everything is built with
// DOM calls and textContent: no data from the API is ever parsed as HTML.
import { HttpError, basicAuth, eventsPath, fleetPath, getJson, nodePath, objectPath, readEvents } from './api.js';

const PAGE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  auth: null,
  user: '',
  org: '',
  nodeType: '',
  snapshot: null,
  nodesAfter: null,
  objectsAfter: null,
  stream: null,
  detail: { key: '', after: null, loading: false, again: false },
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function ago(iso) {
  if (iso === null) return el('span', { text: 'never' });
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const text = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : s < 86400 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
  return el('time', { datetime: iso, title: iso, text });
}

const hashPart = (s) => encodeURIComponent(s);
const objectHref = (type, id) => `#/object/${hashPart(type)}/${hashPart(id)}`;
const nodeHref = (type, id) => `#/node/${hashPart(type)}/${hashPart(id)}`;

function chip(kind, value, label) {
  return el('span', { class: `chip ${kind}-${value}`, 'data-status': value, text: label });
}

function progressOf(d) {
  if (d.progress === undefined) return null;
  const { bytes: done, total } = d.progress;
  const label = `Transfer to ${d.destinationType}/${d.destinationID}`;
  if (total === null || total === 0) return el('span', { class: 'progress', text: `${bytes(done)} sent` });
  const pct = Math.min(100, Math.floor((done / total) * 100));
  return el(
    'span',
    { class: 'progress' },
    el('progress', { max: total, value: Math.min(done, total), 'aria-label': label }),
    el('span', { text: `${pct}% (${bytes(done)} of ${bytes(total)})` }),
  );
}

// ---- the fleet ------------------------------------------------------------------------------

function renderNodes(page) {
  const body = $('nodes').tBodies[0];
  body.replaceChildren();
  if (page.items.length === 0) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No node has registered yet.' })));
  for (const n of page.items) {
    const canOpen = state.nodeType === 'CSS' && n.kind === 'ESS';
    const id = canOpen ? el('a', { href: nodeHref(n.destinationType, n.destinationID), text: n.destinationID }) : el('span', { text: n.destinationID });
    body.append(
      el(
        'tr',
        { 'data-node': `${n.destinationType}/${n.destinationID}` },
        el('td', { text: n.destinationType }),
        el('th', { scope: 'row' }, id),
        el('td', { class: 'wide-only', text: n.kind }),
        el('td', { text: n.communication }),
        el('td', {}, ago(n.lastContact)),
        el('td', {}, chip('h', n.health, n.health)),
      ),
    );
  }
  pager('nodes', page, state.nodesAfter);
}

function deliveriesCell(o) {
  const td = el('td');
  if (o.deliveriesTotal === 0) {
    td.append(el('span', { class: 'empty', text: 'no destination' }));
    return td;
  }
  const list = el('ul', { class: 'chips', 'aria-label': `Deliveries of ${o.objectType}/${o.objectID}` });
  for (const d of o.deliveries) {
    list.append(
      el(
        'li',
        { 'data-dest': `${d.destinationType}/${d.destinationID}` },
        chip('s', d.status, `${d.destinationID}: ${d.status}`),
        progressOf(d),
      ),
    );
  }
  td.append(list);
  const more = o.deliveriesTotal - o.deliveries.length;
  if (more > 0) {
    const counts = Object.entries(o.deliveryCounts)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    td.append(el('p', { class: 'meta' }, el('a', { href: objectHref(o.objectType, o.objectID), text: `and ${more} more` }), ` (all: ${counts})`));
  }
  return td;
}

function renderObjects(page) {
  const body = $('objects').tBodies[0];
  body.replaceChildren();
  if (page.items.length === 0) body.append(el('tr', {}, el('td', { colspan: 5, class: 'empty', text: 'No object to show.' })));
  for (const o of page.items) {
    body.append(
      el(
        'tr',
        { 'data-object': `${o.objectType}/${o.objectID}` },
        el('td', { text: o.objectType }),
        el('th', { scope: 'row' }, el('a', { href: objectHref(o.objectType, o.objectID), text: o.objectID })),
        el('td', { text: o.status }),
        el('td', { class: 'num', text: bytes(o.size) }),
        deliveriesCell(o),
      ),
    );
  }
  pager('objects', page, state.objectsAfter);
}

function pager(which, page, current) {
  const p = $(`${which}-pager`);
  p.replaceChildren(`${page.items.length} shown of ${page.total}.`);
  if (current !== null) {
    p.append(' ', el('button', { type: 'button', class: 'link', 'data-page': `${which}-first`, text: 'First page' }));
  }
  if (page.next !== null) {
    p.append(' ', el('button', { type: 'button', class: 'link', 'data-page': `${which}-next`, 'data-cursor': page.next, text: 'Next page' }));
  }
}

function onPager(ev) {
  const b = ev.target.closest('button[data-page]');
  if (b === null) return;
  const [which, dir] = b.dataset.page.split('-');
  const cursor = dir === 'next' ? b.dataset.cursor : null;
  if (which === 'nodes') state.nodesAfter = cursor;
  else state.objectsAfter = cursor;
  startStream();
}

function renderFleet() {
  const s = state.snapshot;
  if (s === null) return;
  $('fleet-meta').textContent = `${s.nodeType === 'CSS' ? 'Cloud sync service' : 'Edge sync service'}, organization ${s.orgID}. Updated ${new Date(s.generatedAt).toLocaleTimeString()}.`;
  renderNodes(s.nodes);
  renderObjects(s.objects);
}

/** Tells screen readers what changed: deliveries that moved, nodes that came or went. */
function announceChanges(prev, next) {
  if (prev === null) return;
  const before = new Map();
  for (const o of prev.objects.items) for (const d of o.deliveries) before.set(`${o.objectType}/${o.objectID} to ${d.destinationType}/${d.destinationID}`, d.status);
  const lines = [];
  for (const o of next.objects.items) {
    for (const d of o.deliveries) {
      const key = `${o.objectType}/${o.objectID} to ${d.destinationType}/${d.destinationID}`;
      if (before.get(key) !== d.status) lines.push(`${key}: ${d.status}`);
    }
  }
  const known = new Set(prev.nodes.items.map((n) => `${n.destinationType}/${n.destinationID}`));
  for (const n of next.nodes.items) if (!known.has(`${n.destinationType}/${n.destinationID}`)) lines.push(`Node ${n.destinationType}/${n.destinationID} appeared`);
  if (lines.length > 0) $('announce').textContent = lines.slice(0, 5).join('. ');
}

function onSnapshot(snap) {
  announceChanges(state.snapshot, snap);
  state.snapshot = snap;
  state.nodeType = snap.nodeType;
  renderFleet();
  if (!$('detail-view').hidden && state.detail.key !== '') void loadDetail(false);
}

function setConn(text) {
  const c = $('conn');
  c.hidden = false;
  c.textContent = text;
}

function startStream() {
  state.stream?.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  void (async () => {
    let backoff = 1000;
    while (!ctl.signal.aborted) {
      try {
        setConn('Connecting…');
        const path = eventsPath(state.org, { limit: PAGE, nodesAfter: state.nodesAfter, objectsAfter: state.objectsAfter });
        await readEvents(path, state.auth, ctl.signal, (name, data) => {
          if (name !== 'snapshot') return;
          backoff = 1000;
          setConn('Live');
          onSnapshot(JSON.parse(data));
        });
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err instanceof HttpError && err.status === 403) {
          logout('Your credentials are no longer accepted: log in again.');
          return;
        }
      }
      if (ctl.signal.aborted) return;
      setConn('Reconnecting…');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  })();
}

// ---- drill-down -----------------------------------------------------------------------------

function facts(pairs) {
  const dl = $('detail-facts');
  dl.replaceChildren();
  for (const [k, v] of pairs) dl.append(el('dt', { text: k }), el('dd', {}, typeof v === 'string' ? v : v));
}

function detailTable(caption, headers, rows) {
  $('detail-caption').textContent = caption;
  const table = $('detail-table');
  table.tHead.rows[0].replaceChildren(...headers.map((h) => el('th', { scope: 'col', text: h })));
  table.tBodies[0].replaceChildren(...rows);
  if (rows.length === 0) table.tBodies[0].append(el('tr', {}, el('td', { colspan: headers.length, class: 'empty', text: 'None.' })));
}

function deliveryCells(d) {
  return [el('td', {}, chip('s', d.status, d.status)), el('td', { text: d.message }), el('td', {}, progressOf(d) ?? ''), el('td', {}, ago(d.lastUpdate))];
}

async function showObject(type, id) {
  const r = await getJson(objectPath(state.org, type, id, { limit: PAGE, after: state.detail.after }), state.auth);
  const o = r.object;
  const m = r.metadata;
  $('detail-title').textContent = `Object ${o.objectType}/${o.objectID}`;
  facts([
    ['Status', o.status],
    ['Instance', o.instanceID],
    ['Size', bytes(o.size)],
    ['Last update', ago(o.lastUpdate)],
    ['Destination', m.destinationType === '' ? 'every node' : `${m.destinationType}/${m.destinationID === '' ? '*' : m.destinationID}`],
    ['Version', m.version === '' ? '—' : m.version],
    ['Description', m.description === '' ? '—' : m.description],
    ['Public', o.public ? 'yes' : 'no'],
  ]);
  detailTable(
    `Deliveries (${r.deliveries.total})`,
    ['Destination', 'Status', 'Message', 'Progress', 'Last update'],
    r.deliveries.items.map((d) => el('tr', { 'data-dest': `${d.destinationType}/${d.destinationID}` }, el('th', { scope: 'row', text: `${d.destinationType}/${d.destinationID}` }), ...deliveryCells(d))),
  );
  detailPager(r.deliveries);
}

async function showNode(type, id) {
  const r = await getJson(nodePath(state.org, type, id, { limit: PAGE, after: state.detail.after }), state.auth);
  const n = r.node;
  $('detail-title').textContent = `Node ${n.destinationType}/${n.destinationID}`;
  facts([
    ['Health', chip('h', n.health, n.health)],
    ['Last contact', ago(n.lastContact)],
    ['Communication', n.communication],
    ['Code version', n.codeVersion === '' ? '—' : n.codeVersion],
  ]);
  detailTable(
    `Objects addressed to it (${r.objects.total})`,
    ['Object', 'Status', 'Message', 'Progress', 'Last update'],
    r.objects.items.map((d) =>
      el('tr', { 'data-object': `${d.objectType}/${d.objectID}` }, el('th', { scope: 'row' }, el('a', { href: objectHref(d.objectType, d.objectID), text: `${d.objectType}/${d.objectID}` })), ...deliveryCells(d)),
    ),
  );
  detailPager(r.objects);
}

function detailPager(page) {
  const p = $('detail-pager');
  p.replaceChildren(`${page.items.length} shown of ${page.total}.`);
  if (state.detail.after !== null) p.append(' ', el('button', { type: 'button', class: 'link', 'data-detail': '', text: 'First page' }));
  if (page.next !== null) p.append(' ', el('button', { type: 'button', class: 'link', 'data-detail': page.next, text: 'Next page' }));
}

function onDetailPager(ev) {
  const b = ev.target.closest('button[data-detail]');
  if (b === null) return;
  state.detail.after = b.dataset.detail === '' ? null : b.dataset.detail;
  void loadDetail(false);
}

/** Loads the drill-down of the current route; live refreshes never overlap. */
async function loadDetail(focus) {
  const d = state.detail;
  if (d.loading) {
    d.again = true;
    return;
  }
  d.loading = true;
  try {
    const [, kind, type, id] = d.key.split('\u0000');
    if (kind === 'object') await showObject(type, id);
    else await showNode(type, id);
    if (focus) $('detail-title').focus();
  } catch (err) {
    $('detail-title').textContent = err instanceof HttpError && err.status === 404 ? 'Not found' : 'Could not load this page';
    facts([['Reason', err.message]]);
    detailTable('', [], []);
    if (focus) $('detail-title').focus();
  } finally {
    d.loading = false;
    if (d.again) {
      d.again = false;
      void loadDetail(false);
    }
  }
}

// ---- routing, login -------------------------------------------------------------------------

function show(view) {
  for (const v of ['login-view', 'fleet-view', 'detail-view']) $(v).hidden = v !== view;
}

function route() {
  if (state.auth === null) {
    show('login-view');
    return;
  }
  const m = /^#\/(object|node)\/([^/]+)\/([^/]+)$/.exec(location.hash);
  if (m === null) {
    show('fleet-view');
    renderFleet();
    $('fleet-title').focus();
    return;
  }
  const key = ['', m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3])].join('\u0000');
  if (state.detail.key !== key) state.detail = { key, after: null, loading: false, again: false };
  show('detail-view');
  void loadDetail(true);
}

async function login(ev) {
  ev.preventDefault();
  const user = $('user').value.trim();
  const password = $('password').value;
  const org = $('org').value.trim() || (user.includes('/') ? user.slice(0, user.indexOf('/')) : '');
  const error = $('login-error');
  error.textContent = '';
  if (user === '' || password === '') {
    error.textContent = 'Give a user name and a password.';
    return;
  }
  if (org === '') {
    error.textContent = 'Give the organization (or a user name of the form org/user).';
    $('org').focus();
    return;
  }
  const auth = basicAuth(user, password);
  try {
    const snap = await getJson(fleetPath(org, { limit: PAGE }), auth);
    Object.assign(state, { auth, user, org, snapshot: null, nodeType: snap.nodeType, nodesAfter: null, objectsAfter: null });
    onSnapshot(snap);
  } catch (err) {
    error.textContent =
      err instanceof HttpError && err.status === 403
        ? 'These credentials are not accepted for this organization.'
        : err instanceof HttpError && err.status === 404
          ? `This node does not serve organization ${org}.`
          : `Could not log in: ${err.message}`;
    return;
  }
  $('password').value = '';
  $('who').textContent = `${user} in ${org}`;
  $('who').hidden = false;
  $('logout').hidden = false;
  startStream();
  route();
}

function logout(message = '') {
  state.stream?.abort();
  Object.assign(state, { auth: null, snapshot: null, stream: null });
  $('who').hidden = true;
  $('conn').hidden = true;
  $('logout').hidden = true;
  $('login-error').textContent = message;
  show('login-view');
  $('user').focus();
}

$('login').addEventListener('submit', (ev) => void login(ev));
$('logout').addEventListener('click', () => logout());
$('fleet-view').addEventListener('click', onPager);
$('detail-view').addEventListener('click', onDetailPager);
window.addEventListener('hashchange', route);
route();
