/**
 * swagger/openapi.yaml is the source of truth for /api/v1: it must document exactly the routes
 * the dispatcher serves, on the CSS and on the ESS, and be a self-consistent OpenAPI 3.0 document.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { routesOf, type NodeType } from '../../../lib/api/route-table.js';
import { documentedRoutes, openApiFor, type OpenApiDoc } from '../../../lib/api/openapi.js';
import { METRICS_PATH } from '../../../lib/api/metrics-route.js';
import { METADATA_KEYS } from '../../../lib/model/index.js';

type Json = Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete'] as const;
const NODES: readonly NodeType[] = ['CSS', 'ESS'];

const docPath = join(process.cwd(), 'swagger', 'openapi.yaml');
const raw = parse(readFileSync(docPath, 'utf8')) as OpenApiDoc;
const derived: Record<NodeType, OpenApiDoc> = { CSS: openApiFor('CSS', raw), ESS: openApiFor('ESS', raw) };

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(v: unknown, key: string): unknown {
  return isObject(v) ? v[key] : undefined;
}

function pathsOf(doc: OpenApiDoc): [string, Json][] {
  const paths = doc.paths;
  return isObject(paths) ? Object.entries(paths).filter((e): e is [string, Json] => isObject(e[1])) : [];
}

interface Operation {
  method: string;
  path: string;
  item: Json;
  op: Json;
}

function operationsOf(doc: OpenApiDoc): Operation[] {
  return pathsOf(doc).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const op = item[method];
      return isObject(op) ? [{ method: method.toUpperCase(), path, item, op }] : [];
    }),
  );
}

/** The value a local `$ref` (`#/a/b`) points to, or undefined when it points nowhere. */
function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const token of ref.slice(2).split('/')) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = /^\d+$/.test(key) ? (node as unknown[])[Number(key)] : undefined;
    else node = isObject(node) && Object.hasOwn(node, key) ? node[key] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

function deref(doc: unknown, v: unknown): unknown {
  const ref = field(v, '$ref');
  return typeof ref === 'string' ? resolvePointer(doc, ref) : v;
}

/** Every `$ref` value in the document, with where it was found. */
function refsIn(node: unknown, at = '#'): { at: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((v, i) => refsIn(v, `${at}/${i}`));
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k === '$ref' && typeof v === 'string' ? [{ at, ref: v }] : refsIn(v, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
  );
}

/** Names of the path parameters an operation declares, its own and its path item's. */
function declaredPathParams(doc: OpenApiDoc, o: Operation): string[] {
  const params = [o.item.parameters, o.op.parameters].flatMap((list) => (Array.isArray(list) ? (list as unknown[]) : []));
  return params
    .map((p) => deref(doc, p))
    .filter((p) => field(p, 'in') === 'path')
    .map((p) => String(field(p, 'name')));
}

function templateParams(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? '');
}

const key = (r: { method: string; path: string }): string => `${r.method} ${r.path}`;

describe('swagger/openapi.yaml', () => {
  it('parses as an OpenAPI 3.0.x document with paths', () => {
    expect(isObject(raw)).toBe(true);
    expect(raw.openapi).toMatch(/^3\.0\.\d+$/);
    expect(isObject(raw.info)).toBe(true);
    expect(pathsOf(raw).length).toBeGreaterThan(0);
  });

  it('marks operations with x-edgesync-nodes only as [CSS]', () => {
    const odd = operationsOf(raw)
      .filter((o) => o.op['x-edgesync-nodes'] !== undefined)
      .filter((o) => JSON.stringify(o.op['x-edgesync-nodes']) !== '["CSS"]')
      .map(key);
    expect(odd).toEqual([]);
  });

  describe.each(NODES)('%s', (node) => {
    const doc = derived[node];

    it('documents exactly the routes the dispatcher serves', () => {
      const served = new Set(routesOf(node).map(key));
      // Paths beside /api/v1 (`/metrics`) are the app's, not the dispatcher's: checked below.
      const documented = new Set(documentedRoutes(doc).filter((r) => r.path.startsWith('/api/v1/')).map(key));
      const missing = [...served].filter((r) => !documented.has(r)).sort();
      const extra = [...documented].filter((r) => !served.has(r)).sort();
      const report = [
        ...missing.map((r) => `served on the ${node} but missing from the document: ${r}`),
        ...extra.map((r) => `documented for the ${node} but not served: ${r}`),
      ].join('\n');
      expect(report).toBe('');
    });

    it('documents the only path it has beside /api/v1: GET /metrics (lib/api/metrics-route.ts)', () => {
      expect(documentedRoutes(doc).filter((r) => !r.path.startsWith('/api/v1/')).map(key)).toEqual([`GET ${METRICS_PATH}`]);
    });

    it('gives every operation a 2xx and a 403 response', () => {
      const problems = operationsOf(doc).flatMap((o) => {
        const codes = Object.keys(isObject(o.op.responses) ? o.op.responses : {});
        return [
          ...(codes.some((c) => /^2\d\d$/.test(c)) ? [] : [`${key(o)}: no 2xx response`]),
          ...(codes.includes('403') ? [] : [`${key(o)}: no 403 response`]),
        ];
      });
      expect(problems).toEqual([]);
    });

    it('resolves every $ref inside the document', () => {
      const dangling = refsIn(doc)
        .filter((r) => resolvePointer(doc, r.ref) === undefined)
        .map((r) => `${r.at}: ${r.ref}`);
      expect(dangling).toEqual([]);
    });

    it('declares every path parameter of a path template', () => {
      const undeclared = operationsOf(doc).flatMap((o) => {
        const declared = declaredPathParams(doc, o);
        return templateParams(o.path)
          .filter((name) => !declared.includes(name))
          .map((name) => `${key(o)}: {${name}} is not declared`);
      });
      expect(undeclared).toEqual([]);
    });

    it('declares no path parameter that its path template lacks', () => {
      const stray = operationsOf(doc).flatMap((o) => {
        const inTemplate = templateParams(o.path);
        return declaredPathParams(doc, o)
          .filter((name) => !inTemplate.includes(name))
          .map((name) => `${key(o)}: ${name} is not in the path`);
      });
      expect(stray).toEqual([]);
    });
  });

  it('has unique operationIds', () => {
    const ids = operationsOf(raw).map((o) => String(o.op.operationId));
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    expect(ids).not.toContain('undefined');
  });

  it('lists the MetaData keys in the wire order', () => {
    const props = field(resolvePointer(raw, '#/components/schemas/MetaData'), 'properties');
    expect(Object.keys(isObject(props) ? props : {})).toEqual([...METADATA_KEYS]);
  });
});
