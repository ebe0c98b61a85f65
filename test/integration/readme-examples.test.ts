/**
 * The examples of README.md and sdk/README.md, run as written (see test/helpers/doc-examples.ts
 * for the markers): the walkthrough starts a CSS with `npm start` and an ESS with the README's
 * command, in a scratch directory that looks like a checkout (`dist/` and `package.json` of this
 * one, and this package linked as `node_modules/edgesync`), then runs every block in order.
 *
 * What differs from a reader's terminal, and only this: the nodes listen on random ports
 * (UNSECURE_LISTENING_PORT=0, SECURE_LISTENING_PORT=0, LOG_LEVEL=warning in the environment),
 * so the README's 8080 and 8443 are replaced by those ports; `<password printed above>` and
 * `<css password>` by the password the CSS printed, `<ess password>` by the ESS's; and curl
 * fails on an HTTP error (`--fail-with-body`) unless it prints the status itself (`-w`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import ts from 'typescript';
import { docExamples, shScript, type DocExample } from '../helpers/doc-examples.js';
import { Teardown } from '../helpers/node-process.js';

jest.setTimeout(240_000);

const repo = process.cwd();
const t = new Teardown();
/** How each background example ended, checked once all of them are stopped. */
const endings: { where: string; clean: boolean; end: string; output: string }[] = [];
t.add(() => {
  for (const e of endings) expect(e).toEqual({ ...e, clean: true, output: expect.not.stringMatching(/second signal|Error/) });
  return Promise.resolve();
});
afterAll(() => t.run());

interface Background {
  child: ChildProcess;
  example: DocExample;
  output(): string;
}

function transpiled(code: string): string {
  return ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

/** Runs to its end; rejects with the example's place and output unless it exits 0. */
function runToEnd(example: DocExample, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`example at ${example.where} ended with ${code ?? signal}:\n${example.code}\n--- output:\n${out}`));
    });
  });
}

/** Starts a background example in its own process group; for a node, waits for its banner. */
async function startBackground(example: DocExample, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Background> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const bg: Background = { child, example, output: () => out };
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  // A node is stopped as a reader does, with Ctrl-C in its terminal (SIGINT to the whole
  // process group: bash, npm, the node); the app, with SIGTERM, as its comment says.
  const stopSignal = example.lang === 'sh' ? 'SIGINT' : 'SIGTERM';
  t.add(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid ?? 0), stopSignal);
    const timer = setTimeout(() => process.kill(-(child.pid ?? 0), 'SIGKILL'), 30_000);
    const end = await exited;
    clearTimeout(timer);
    // Each ends cleanly: the node stops gracefully (npm and bash then end by the same signal), the app ends its loop.
    endings.push({ where: example.where, clean: end === '0' || (end === stopSignal && example.lang === 'sh'), end, output: out });
  });
  if (example.lang === 'sh') {
    const deadline = Date.now() + 30_000;
    while (!/is running[\s\S]*password:\s+\S+/.test(out)) {
      if (child.exitCode !== null) throw new Error(`example at ${example.where} exited with ${child.exitCode}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`example at ${example.where} printed no banner in 30 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return bg;
}

describe('the README walkthrough (README.md, then sdk/README.md)', () => {
  const examples = [...docExamples(repo, 'README.md'), ...docExamples(repo, 'sdk/README.md')];

  test('the documents mark their examples', () => {
    const walkthrough = examples.filter((e) => e.scenario === 'walkthrough');
    expect(walkthrough.length).toBeGreaterThanOrEqual(10);
    expect(walkthrough.filter((e) => e.background).map((e) => e.lang)).toEqual(['sh', 'sh', 'sh', 'ts']);
    expect(new Set(examples.map((e) => e.scenario))).toEqual(new Set(['walkthrough']));
  });

  test('every example runs as written and ends as the text says', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgesync-readme-'));
    t.add(() => rm(dir, { recursive: true, force: true }));
    await symlink(join(repo, 'dist'), join(dir, 'dist'));
    await copyFile(join(repo, 'package.json'), join(dir, 'package.json'));
    await mkdir(join(dir, 'node_modules'));
    await symlink(repo, join(dir, 'node_modules', 'edgesync'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      UNSECURE_LISTENING_PORT: '0',
      SECURE_LISTENING_PORT: '0',
      EMBEDDED_BROKER_PORT: '0',
      LOG_LEVEL: 'warning',
    };

    const known: { cssPort?: string; essPort?: string; cssPassword?: string; essPassword?: string; brokerPort?: string; mqttEssPort?: string; mqttEssPassword?: string } = {};
    const substituted = (e: DocExample): string => {
      const need = (v: string | undefined, what: string): string => {
        if (v === undefined) throw new Error(`example at ${e.where} uses ${what} before it is known`);
        return v;
      };
      return e.code
        .replace(/\b8080\b/g, () => need(known.cssPort, 'the CSS port'))
        .replace(/\b8443\b/g, () => need(known.essPort, 'the ESS port'))
        .replace(/\b1883\b/g, () => need(known.brokerPort, "the CSS's MQTT broker port"))
        // The MQTT ESS's own command names 8444: a random port then, read from its banner.
        .replace(/\b8444\b/g, () => known.mqttEssPort ?? '0')
        .replace(/<password printed above>|<css password>/g, () => need(known.cssPassword, 'the CSS password'))
        .replace(/<ess password>/g, () => need(known.essPassword, 'the ESS password'))
        .replace(/<mqtt ess password>/g, () => need(known.mqttEssPassword, 'the MQTT ESS password'));
    };

    const ran: string[] = [];
    for (const [i, example] of examples.entries()) {
      const code = substituted(example);
      const file = join(dir, `example-${i}.${example.lang === 'sh' ? 'sh' : 'mjs'}`);
      await writeFile(file, example.lang === 'sh' ? shScript(code) : transpiled(code));
      const [command, args] = example.lang === 'sh' ? ['bash', [file]] : [process.execPath, [file]];
      if (!example.background) {
        await runToEnd(example, command, args, dir, env);
      } else {
        const bg = await startBackground(example, command, args, dir, env);
        const out = bg.output();
        const port = /API:\s+\S+:(\d+)\/api\/v1/.exec(out)?.[1];
        const password = /password:\s+(\S+)/.exec(out)?.[1];
        if (/edgesync CSS is running/.test(out)) Object.assign(known, { cssPort: port, cssPassword: password, brokerPort: /MQTT:\s+mqtt:\/\/\S+:(\d+)/.exec(out)?.[1] });
        else if (/edgesync ESS is running/.test(out) && known.essPort === undefined) Object.assign(known, { essPort: port, essPassword: password });
        else if (/edgesync ESS is running/.test(out)) Object.assign(known, { mqttEssPort: port, mqttEssPassword: password });
      }
      ran.push(example.where);
    }
    expect(ran).toHaveLength(examples.length);
  });
});
