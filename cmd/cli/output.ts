/**
 * What a command prints: a table for people, or with `--json` the server's JSON exactly (int64
 * ids written digit for digit by the SDK's stringifyJson, never through a JS number).
 */
import Table from 'cli-table3';
import { stringifyJson } from '../../sdk/index.js';

/** Where and how a command writes. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** Writes a line (or lines) to stdout. */
  line(text: string): void;
  /** A note for a person on stderr; silent with `--quiet` or `--json`. */
  note(text: string): void;
}

export function createOutput(o: { json: boolean; quiet: boolean; stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream }): Output {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  return {
    json: o.json,
    quiet: o.quiet,
    line: (text) => void stdout.write(`${text}\n`),
    note: (text) => {
      if (!o.quiet && !o.json) stderr.write(`${text}\n`);
    },
  };
}

/** A cell's text: ids and numbers as they are, lists joined, nothing for null. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(cell).join(', ');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value.toString();
  return stringifyJson(value);
}

/** A table with a header row (no colours: they would end up in logs and pipes). */
export function renderTable(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map(cell));
  return table.toString();
}

/** Two columns, field and value: one record (an object's metadata, a health report). */
export function renderRecord(record: Record<string, unknown>): string {
  const table = new Table({ style: { head: [], border: [] } });
  for (const [key, value] of Object.entries(record)) table.push({ [key]: cell(value) });
  return table.toString();
}

/** Prints `value` as JSON with `--json`, else what `human` renders of it. */
export function print<T>(out: Output, value: T, human: (v: T) => string): void {
  out.line(out.json ? stringifyJson(value, 2) : human(value));
}

/** A list: JSON array, or a table, or a note that it is empty. */
export function printList<T>(out: Output, items: readonly T[], head: readonly string[], row: (item: T) => readonly unknown[], empty: string): void {
  if (out.json) out.line(stringifyJson(items, 2));
  else if (items.length === 0) out.note(empty);
  else out.line(renderTable(head, items.map(row)));
}
