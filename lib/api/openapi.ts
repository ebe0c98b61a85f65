/**
 * The OpenAPI document describes the CSS surface; the ESS's is derived from it: operations
 * marked `x-edgesync-nodes: [CSS]` are dropped and object paths lose their `{orgID}` segment.
 */
export type OpenApiDoc = Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete'] as const;

type Operation = { 'x-edgesync-nodes'?: string[]; parameters?: unknown[] } & Record<string, unknown>;

function isOrgParam(p: unknown): boolean {
  return typeof p === 'object' && p !== null && (p as { name?: unknown; in?: unknown }).name === 'orgID' && (p as { in?: unknown }).in === 'path';
}

export function openApiFor(node: 'CSS' | 'ESS', doc: OpenApiDoc): OpenApiDoc {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, unknown>>;
  const out: Record<string, Record<string, unknown>> = {};
  for (const [path, item] of Object.entries(paths)) {
    const isObjectPath = path.startsWith('/api/v1/objects/{orgID}');
    const newPath = node === 'ESS' && isObjectPath ? path.replace('/{orgID}', '') : path;
    const newItem: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(item)) {
      if (!(METHODS as readonly string[]).includes(key)) {
        if (key === 'parameters' && node === 'ESS' && isObjectPath && Array.isArray(value)) newItem[key] = value.filter((p) => !isOrgParam(p));
        else newItem[key] = value;
        continue;
      }
      const op = value as Operation;
      const nodes = op['x-edgesync-nodes'] ?? ['CSS', 'ESS'];
      if (!nodes.includes(node)) continue;
      newItem[key] = node === 'ESS' && isObjectPath && Array.isArray(op.parameters) ? { ...op, parameters: op.parameters.filter((p) => !isOrgParam(p)) } : op;
    }
    if (METHODS.some((m) => m in newItem)) out[newPath] = newItem;
  }
  return { ...doc, paths: out };
}

/** The (method, path) pairs a document describes, upper-case methods. */
export function documentedRoutes(doc: OpenApiDoc): { method: string; path: string }[] {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, unknown>>;
  return Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((m) => m in item).map((m) => ({ method: m.toUpperCase(), path })),
  );
}
