// The fleet API as the page uses it: Basic credentials held in memory only, JSON reads, and the
// server-sent event stream read through fetch (EventSource cannot send an Authorization header).

export class HttpError extends Error {
  constructor(status, text) {
    super(text === '' ? `HTTP ${status}` : text);
    this.status = status;
  }
}

export function basicAuth(user, password) {
  // btoa takes Latin-1 only; user names and passwords may be any Unicode.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

const seg = (s) => encodeURIComponent(s);

export function fleetPath(org, query = {}) {
  return withQuery(`/api/v1/fleet/${seg(org)}`, query);
}

export function eventsPath(org, query = {}) {
  return withQuery(`/api/v1/fleet/${seg(org)}/events`, query);
}

export function objectPath(org, type, id, query = {}) {
  return withQuery(`/api/v1/fleet/${seg(org)}/objects/${seg(type)}/${seg(id)}`, query);
}

export function nodePath(org, type, id, query = {}) {
  return withQuery(`/api/v1/fleet/${seg(org)}/nodes/${seg(type)}/${seg(id)}`, query);
}

function withQuery(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

export async function getJson(path, auth, signal) {
  const res = await fetch(path, { headers: { authorization: auth, accept: 'application/json' }, signal, cache: 'no-store' });
  if (!res.ok) throw new HttpError(res.status, (await res.text()).trim());
  return res.json();
}

/**
 * Reads a text/event-stream until it ends or `signal` aborts, calling onEvent(name, data) for
 * each event. Resolves when the server ends the stream.
 */
export async function readEvents(path, auth, signal, onEvent) {
  const res = await fetch(path, { headers: { authorization: auth, accept: 'text/event-stream' }, signal, cache: 'no-store' });
  if (!res.ok) throw new HttpError(res.status, (await res.text()).trim());
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const val = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length > 0) onEvent(name, data.join('\n'));
    }
  }
}
