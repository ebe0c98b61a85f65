/**
 * What the API fuzz run (api-fuzz.test.ts) found wrong in swagger/openapi.yaml, each pinned
 * without the fuzzer so that it stays fixed where schemathesis is not installed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';

type Schema = { $ref?: string; required?: string[]; items?: Schema; oneOf?: Schema[]; anyOf?: Schema[] } & Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>; components: { schemas: Record<string, Schema> } };

const doc = parseYaml(readFileSync(join(process.cwd(), 'swagger', 'openapi.yaml'), 'utf8')) as Doc;

function component(ref: string): Schema {
  return doc.components.schemas[ref.replace('#/components/schemas/', '')]!;
}

/** Whether every value of `a` (an object schema by reference) has every key `b` requires, so `b` may match it too. */
function mayMatchBoth(a: Schema, b: Schema): boolean {
  if (a.items?.$ref === undefined || b.items?.$ref === undefined) return false;
  const required = new Set(component(a.items.$ref).required ?? []);
  return (component(b.items.$ref).required ?? []).every((k) => required.has(k));
}

describe('swagger/openapi.yaml, as the fuzz run found it', () => {
  // GET /api/v1/objects/{objectType}?all_objects=1 on an ESS answered [ObjectDestinationPolicy],
  // which also satisfies [MetaData] (objectID and objectType are all MetaData requires): under
  // oneOf, a correct answer was "valid under more than one of the schemas".
  test('no 200 answer is a oneOf of object lists that one value can satisfy twice', () => {
    const overlapping: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const schema = op.responses?.['200']?.content?.['application/json']?.schema;
        const alternatives = schema?.oneOf ?? [];
        for (const a of alternatives) for (const b of alternatives) if (a !== b && mayMatchBoth(a, b)) overlapping.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect([...new Set(overlapping)]).toEqual([]);
  });

  test('the two object listings still offer both shapes', () => {
    for (const path of ['/api/v1/objects/{orgID}', '/api/v1/objects/{orgID}/{objectType}']) {
      const schema = doc.paths[path]!.get!.responses['200']!.content!['application/json']!.schema;
      expect((schema.anyOf ?? []).map((s) => s.items?.$ref).filter((r) => r !== undefined).sort()).toEqual([
        '#/components/schemas/MetaData',
        '#/components/schemas/ObjectDestinationPolicy',
      ]);
    }
  });
});
