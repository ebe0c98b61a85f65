/**
 * The pino JSON lines a node process wrote on stdout (the banner and stderr are not JSON), for
 * tests that read a node's story from its logs.
 */
import type { RunningProcess } from './node-process.js';

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export function linesOf(node: Pick<RunningProcess, 'output'>): LogLine[] {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
