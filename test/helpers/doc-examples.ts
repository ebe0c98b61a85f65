/**
 * The runnable examples of our Markdown files. A fenced block is runnable when the line just
 * before its fence is `<!-- example: <scenario> -->` or `<!-- example: <scenario> background -->`
 * (a process that keeps running, such as a node, stopped with SIGTERM at the scenario's end).
 * Languages: `sh` (run by bash) and `ts` (transpiled, run by node as an ES module).
 *
 * In `sh` blocks, a command whose last line ends in `# => TEXT` is repeated (every 0.2 s, up to
 * 30 s) until it succeeds and prints TEXT: what a reader sees once the system got there.
 */
import { readFileSync } from 'node:fs';

export interface DocExample {
  /** `README.md:42`: where the fence opens. */
  readonly where: string;
  readonly scenario: string;
  readonly background: boolean;
  readonly lang: 'sh' | 'ts';
  readonly code: string;
}

const MARKER = /^<!-- example: ([\w-]+)( background)? -->$/;

/** The runnable blocks of `file` (path relative to `root`), in order; throws on a marker without a block. */
export function docExamples(root: string, file: string): DocExample[] {
  const lines = readFileSync(`${root}/${file}`, 'utf8').split('\n');
  const out: DocExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec(lines[i] ?? '');
    if (m === null) continue;
    const fence = /^```(sh|ts)$/.exec(lines[i + 1] ?? '');
    if (fence === null) throw new Error(`${file}:${i + 1}: an example marker must be followed by a \`\`\`sh or \`\`\`ts fence`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`${file}:${i + 2}: unclosed fence`);
    out.push({
      where: `${file}:${i + 2}`,
      scenario: m[1] ?? '',
      background: m[2] !== undefined,
      lang: fence[1] as 'sh' | 'ts',
      code: lines.slice(i + 2, end).join('\n'),
    });
    i = end;
  }
  return out;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Bash that runs an `sh` example: strict, with curl failing on HTTP errors, and `# =>` checks. */
export function shScript(code: string): string {
  const prelude = [
    'set -euo pipefail',
    // An HTTP error fails the example, as an error exit does, unless it asks for --fail itself
    // or for the status code (`-w '%{http_code}'`: the status is what it shows, 4xx included).
    'curl() { case " $* " in *" --fail "*|*" -f "*|*" -w "*|*" --write-out "*) command curl --silent --show-error "$@" ;; *) command curl --fail-with-body --silent --show-error "$@" ;; esac; }',
    'expect_output() {',
    "  local want=$1 cmd=$2 out=''",
    '  for _ in $(seq 1 150); do',
    '    if out=$(eval "$cmd" 2>&1) && [[ $out == *"$want"* ]]; then printf "%s\\n" "$out"; return 0; fi',
    '    sleep 0.2',
    '  done',
    '  printf "expected output containing %s from: %s\\ngot: %s\\n" "$want" "$cmd" "$out" >&2',
    '  return 1',
    '}',
  ];
  const body: string[] = [];
  let command: string[] = [];
  for (const line of code.split('\n')) {
    command.push(line);
    if (line.trimEnd().endsWith('\\')) continue;
    const last = command[command.length - 1] ?? '';
    const expect = /^(.*?)\s+# => (.+)$/.exec(last);
    if (expect !== null) {
      const text = [...command.slice(0, -1), expect[1] ?? ''].join('\n');
      body.push(`expect_output ${quote((expect[2] ?? '').trim())} ${quote(text)}`);
    } else {
      body.push(...command);
    }
    command = [];
  }
  return [...prelude, ...body, ...command, ''].join('\n');
}
