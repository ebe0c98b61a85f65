/**
 * Runs schemathesis (a schema-driven HTTP fuzzer, Python) against a running node's OpenAPI
 * document, and reads what it did from its NDJSON event report. Integration tests only.
 *
 * `.ci/run` installs schemathesis into a venv of its own; the tests look for it there, or where
 * EDGESYNC_SCHEMATHESIS says, or as `schemathesis` on the PATH, and skip visibly without it.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

/** The version `.ci/run` installs; another version may generate other requests from the same seed. */
export const SCHEMATHESIS_VERSION = '4.32.5';

/** The venv `.ci/run` installs schemathesis into. */
export function fuzzVenv(): string {
  const cache = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(cache, 'edgesync-ci', 'venv');
}

export const SCHEMATHESIS_MISSING = `schemathesis not installed (.ci/run installs it into ${fuzzVenv()}; or set EDGESYNC_SCHEMATHESIS to its executable)`;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The schemathesis executable, or null when there is none. EDGESYNC_SCHEMATHESIS naming no
 * executable is an error, not a skip: a typo must not pass for a missing tool.
 */
export function schemathesisBin(): string | null {
  const set = process.env.EDGESYNC_SCHEMATHESIS;
  if (set !== undefined && set !== '') {
    if (!executable(set)) throw new Error(`EDGESYNC_SCHEMATHESIS=${set} is not an executable file`);
    return set;
  }
  const inVenv = join(fuzzVenv(), 'bin', 'schemathesis');
  if (executable(inVenv)) return inVenv;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, 'schemathesis'))) return join(dir, 'schemathesis');
  }
  return null;
}

/** `4.32.5` from `schemathesis, version 4.32.5`. */
export async function schemathesisVersion(bin: string): Promise<string> {
  const { stdout: out } = await promisify(execFile)(bin, ['--version']);
  return /version\s+(\S+)/.exec(out)?.[1] ?? out.trim();
}

/** The hooks of the fuzz run: two checks of ours, a reader for `plain/text`, and writes made to agree with their URL. */
export const HOOKS = join(process.cwd(), 'test', 'fuzz', 'schemathesis_hooks.py');

/**
 * The checks of every run: no 5xx, and each answer as the document describes it (status code,
 * Content-Type of a body, headers, body schema); missing or wrong credentials are refused; a
 * deleted object is gone or reads as deleted, and a created one is there (schemathesis_hooks.py
 * defines the two checks of ours). Left out, each for a behaviour of the reference the document
 * states: `unsupported_method` (405 comes without an `Allow` header), `missing_required_header`
 * (authentication failures are 403, never 401), `use_after_free` (a deleted object reads as
 * `deleted: true` until the nodes that may hold it acknowledge the deletion),
 * `negative_data_rejection` (unknown query parameters and JSON keys are ignored) and
 * `positive_data_acceptance` (a well-formed request about a missing object is refused).
 */
export const FUZZ_CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_unless_empty',
  'response_headers_conformance',
  'response_schema_conformance',
  'ignored_auth',
  'deleted_object_gone_or_flagged',
  'ensure_resource_availability',
];

export interface FuzzOptions {
  /** The node's base URL, e.g. http://127.0.0.1:41234; its document is read from `/swagger.json`. */
  url: string;
  auth: { user: string; pass: string };
  /** The CA file that signed the node's certificate, for an https URL. */
  ca?: string;
  /** Where the NDJSON report goes (a fresh directory). */
  reportDir: string;
  seed: number;
  /** Test cases per operation and phase. */
  maxExamples: number;
  /** operationIds not to call, e.g. `shutdown`. */
  excludeOperationIds: string[];
  /** The operations of the node's document (`METHOD /path`), see readReport. */
  documented: ReadonlySet<string>;
  /** Kills the run after this long. */
  timeoutMs: number;
}

export interface FuzzFailure {
  operation: string;
  check: string;
  title: string;
  request: string;
  status: number | null;
}

export interface FuzzResult {
  exitCode: number | null;
  /** schemathesis's console output, for the failure message. */
  output: string;
  seconds: number;
  /** Requests sent (each recorded interaction once). */
  requests: number;
  /** Distinct documented operations (`METHOD /path/{template}`) that were called. */
  operations: string[];
  /** Requests per response status; `none` for a request that got no response (a dropped connection). */
  statuses: Record<string, number>;
  failures: FuzzFailure[];
}

interface Interaction {
  request: { method: string; uri: string };
  response: { status_code: number } | null;
  timestamp: number;
}

interface Recorder {
  label: string;
  cases: Record<string, { value: { method: string; path: string } }>;
  checks?: Record<string, { name: string; status: string; failure_info?: { failure: { title: string } } }[]>;
  interactions?: Record<string, Interaction>;
}

/**
 * What an NDJSON report says: every interaction once, with its operation. `documented` are the
 * document's operations (`METHOD /path`): a request with a method the path does not serve
 * (schemathesis tries a few) counts as a request, not as an operation.
 */
export function readReport(ndjson: string, documented: ReadonlySet<string>): Pick<FuzzResult, 'requests' | 'operations' | 'statuses' | 'failures'> {
  const seen = new Set<string>();
  const operations = new Set<string>();
  const statuses: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  for (const line of ndjson.split('\n')) {
    if (line.trim() === '') continue;
    const event = JSON.parse(line) as { ScenarioFinished?: { recorder: Recorder } };
    const recorder = event.ScenarioFinished?.recorder;
    if (recorder === undefined) continue;
    for (const [caseId, interaction] of Object.entries(recorder.interactions ?? {})) {
      // A scenario's recorder is reported again when a later event repeats it (shrinking, replays).
      const key = `${caseId} ${interaction.timestamp}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const status = interaction.response === null ? 'none' : String(interaction.response.status_code);
      statuses[status] = (statuses[status] ?? 0) + 1;
      const value = recorder.cases[caseId]?.value;
      const operation = value !== undefined ? `${value.method.toUpperCase()} ${value.path}` : '';
      if (documented.has(operation)) operations.add(operation);
    }
    for (const [caseId, checks] of Object.entries(recorder.checks ?? {})) {
      for (const check of checks) {
        if (check.status !== 'failure') continue;
        const interaction = recorder.interactions?.[caseId];
        failures.push({
          operation: recorder.label,
          check: check.name,
          title: check.failure_info?.failure.title ?? '',
          request: interaction !== undefined ? `${interaction.request.method} ${interaction.request.uri}` : '',
          status: interaction?.response?.status_code ?? null,
        });
      }
    }
  }
  return { requests: seen.size, operations: [...operations].sort(), statuses, failures };
}

/** Runs `schemathesis run` once against a node and reads its report. */
export async function runSchemathesis(bin: string, o: FuzzOptions): Promise<FuzzResult> {
  const args = [
    'run',
    `${o.url}/swagger.json`,
    '--no-color',
    '--auth',
    `${o.auth.user}:${o.auth.pass}`,
    '--seed',
    String(o.seed),
    '--max-examples',
    String(o.maxExamples),
    // One worker: the run is reproducible from its seed, and hypothesis's lambda introspection
    // is not thread-safe under Python 3.11 (a second worker fails at random with a Runtime Error).
    '--workers',
    '1',
    '--checks',
    FUZZ_CHECKS.join(','),
    ...o.excludeOperationIds.flatMap((id) => ['--exclude-operation-id', id]),
    '--generation-database',
    'none',
    '--max-failures',
    '50',
    '--request-timeout',
    '10',
    ...(o.ca !== undefined ? ['--tls-verify', o.ca] : []),
    '--report',
    'ndjson',
    '--report-dir',
    o.reportDir,
  ];
  await mkdir(o.reportDir, { recursive: true });
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(
      bin,
      args,
      // In the report directory: schemathesis keeps a cache (.schemathesis/) in its working directory.
      { cwd: o.reportDir, env: { ...process.env, SCHEMATHESIS_HOOKS: HOOKS, NO_COLOR: '1' }, timeout: o.timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exit = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code: exit, output: `${stdout}${stderr}` });
      },
    );
  });
  const seconds = (Date.now() - started) / 1000;
  const reports = existsSync(o.reportDir) ? (await readdir(o.reportDir)).filter((f) => f.endsWith('.ndjson')) : [];
  const report = reports.length === 1 ? readReport(await readFile(join(o.reportDir, reports[0]!), 'utf8'), o.documented) : { requests: 0, operations: [], statuses: {}, failures: [] };
  return { exitCode: code, output, seconds, ...report };
}

/** One line for the test output, e.g. `[edgesync] fuzz CSS (sync admin): 2100 requests, 24 operations, 14.2 s`. */
export function summary(what: string, r: FuzzResult): string {
  const codes = Object.entries(r.statuses)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
  return `[edgesync] fuzz ${what}: ${r.requests} requests, ${r.operations.length} operations, ${r.seconds.toFixed(1)} s (${codes})`;
}
