/**
 * The deployment files (Dockerfile, docker-compose.yml, deploy/), checked without a Docker
 * engine: what they reference exists, the settings they give are real settings, the image's
 * start command is the one the tests run, and what can run here (the entrypoint, the health
 * check, the init and broker scripts, nginx's and mosquitto's configs) runs.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import mqtt from 'mqtt';
import { parse } from 'yaml';
import { HEAP_FLAGS, MALLOC_ENV, MALLOC_VALUE, missingSettings } from '../../cmd/runtime.js';
import { KEY_NAMES } from '../../lib/config/index.js';
import { BIN, tempRoot, Teardown } from '../helpers/node-process.js';
import { freePort } from '../helpers/mosquitto.js';

jest.setTimeout(60_000);

const t = new Teardown();
afterAll(() => t.run());

const ROOT = process.cwd();
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------- Dockerfile, read as Docker does

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: string;
}

/** The Dockerfile's instructions (continuation lines joined, comments dropped), each with its stage's name. */
function dockerfile(): Instruction[] {
  const joined = read('Dockerfile')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  let stage = '';
  const out: Instruction[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    if (m[1] === 'FROM') stage = /\sAS\s+(\S+)/i.exec(m[2])?.[1] ?? '';
    out.push({ op: m[1], args: m[2].trim(), stage });
  }
  return out;
}

const DOCKER = dockerfile();
const inStage = (stage: string, op: string): Instruction[] => DOCKER.filter((i) => i.stage === stage && i.op === op);
const exec = (i: Instruction | undefined): string[] => JSON.parse(i?.args ?? 'null') as string[];
/** `ENV A=1 B=2` of a stage, as one map. */
function envOf(stage: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of inStage(stage, 'ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

// ---------------------------------------------------------------- docker-compose.yml

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const COMPOSE_TEXT = read('docker-compose.yml');
const COMPOSE = parse(COMPOSE_TEXT, { merge: true }) as Compose;
const EDGESYNC_SERVICES = Object.entries(COMPOSE.services).filter(([, s]) => s.image === 'edgesync:local');
const ENV_NAMES = new Set(KEY_NAMES.flatMap((k) => k.env));

/** The variables a shell script insists on (`: "${NAME:?}"`). */
function requiredBy(script: string): string[] {
  return [...read(script).matchAll(/"\$\{([A-Z_]+):\?\}"/g)].map((m) => m[1] ?? '');
}

describe('the Dockerfile', () => {
  test('builds in a Node 20 bookworm-slim stage with the toolchain better-sqlite3 compiles with, and runs from another', () => {
    expect(DOCKER.filter((i) => i.op === 'FROM').map((i) => i.stage)).toEqual(['build', 'runtime']);
    expect(read('Dockerfile')).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    const runs = inStage('build', 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/apt-get install -y --no-install-recommends python3 make g\+\+/);
    expect(runs).toMatch(/npm ci/);
    expect(runs).toMatch(/npm rebuild better-sqlite3/);
    expect(runs).toMatch(/npm run build/);
    expect(runs).toMatch(/npm prune --omit=dev/);
  });

  test('runs as a user that is not root, with /data as its volume and the three ports exposed', () => {
    expect(inStage('runtime', 'USER').map((i) => i.args)).toEqual(['node']);
    expect(inStage('runtime', 'VOLUME').map((i) => i.args)).toEqual(['["/data"]']);
    expect(inStage('runtime', 'EXPOSE').map((i) => i.args)).toEqual(['8080 8443 1883']);
    expect(envOf('runtime')).toMatchObject({ PERSISTENCE_ROOT_PATH: '/data', LISTENING_ADDRESS: '0.0.0.0' });
  });

  test('starts the node as the tests do (node dist/cmd/edgesync.js), with the runtime settings of ADR 11, so no launcher is needed', () => {
    const entrypoint = exec(inStage('runtime', 'ENTRYPOINT')[0]);
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint.at(-1)).toBe(relative(ROOT, BIN));
    const flags = entrypoint.slice(1, -1);
    expect(flags).toEqual([...HEAP_FLAGS]);
    expect(envOf('runtime')[MALLOC_ENV]).toBe(MALLOC_VALUE);
    expect(missingSettings(envOf('runtime'), flags)).toEqual({ malloc: false, flags: [] });
    expect(exec(inStage('runtime', 'CMD')[0])).toEqual(['css']);
  });

  test('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const copies = DOCKER.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect([source, existsSync(join(ROOT, source))]).toEqual([source, true]);
        const top = source.replace(/^\.\//, '').split('/')[0] ?? '';
        const excluded = (ignored.includes(top) || ignored.includes(source)) && !ignored.includes(`!${source}`);
        expect([source, excluded]).toEqual([source, false]);
      }
    }
    // The runtime stage reads swagger/openapi.yaml at start (lib/node/node.ts).
    expect(inStage('runtime', 'COPY').map((i) => i.args)).toContain('--from=build /app/swagger ./swagger');
  });

  test('checks health on /swagger.json, which needs no credentials (no secret in the image)', () => {
    const check = inStage('runtime', 'HEALTHCHECK')[0]?.args ?? '';
    expect(check).toMatch(/CMD \["node", "dist\/scripts\/docker\/healthcheck.js"\]$/);
    expect(read('scripts/docker/healthcheck.ts')).toMatch(/path: '\/swagger.json'/);
  });
});

describe('docker-compose.yml', () => {
  test('has the target shape: MongoDB, mosquitto, two CSS behind nginx, an HTTP ESS and an MQTT ESS', () => {
    expect(Object.keys(COMPOSE.services).sort()).toEqual(['css1', 'css1-init', 'css2', 'css2-init', 'ess-http', 'ess-mqtt', 'lb', 'mongo', 'mosquitto'].sort());
    expect(COMPOSE.services.css1?.command).toEqual(['css']);
    expect(COMPOSE.services.css2?.command).toEqual(['css']);
    expect(COMPOSE.services['ess-http']?.command).toEqual(['ess']);
    expect(COMPOSE.services['ess-mqtt']?.environment?.COMMUNICATION_PROTOCOL).toBe('mqtt');
    expect(COMPOSE.services['ess-http']?.environment?.HTTP_CSS_HOST).toBe('lb');
    expect(read('deploy/nginx/nginx.conf')).toMatch(/server css1:8080[^;]*;\s*server css2:8080/);
  });

  test('its two CSS processes share the database and the sealing key, each with a data volume of its own', () => {
    const [css1, css2] = [COMPOSE.services.css1, COMPOSE.services.css2];
    for (const css of [css1, css2]) {
      expect(css?.environment?.STORAGE_PROVIDER).toBe('mongo');
      expect(css?.environment?.MONGO_ADDRESS_CSV).toMatch(/^mongodb:\/\/mongo:27017\/\?replicaSet=rs0/);
      expect(css?.volumes).toContain('css-keys:/data/sync/keys');
    }
    expect(css1?.volumes).toContain('css1-data:/data');
    expect(css2?.volumes).toContain('css2-data:/data');
  });

  test('every file it mounts or builds from exists', () => {
    const paths: string[] = [];
    for (const s of Object.values(COMPOSE.services)) {
      if (s.build !== undefined) paths.push(s.build.context, join(s.build.context, s.build.dockerfile));
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] ?? '';
        if (source.startsWith('.')) paths.push(source);
        else expect(Object.keys(COMPOSE.volumes)).toContain(source);
      }
    }
    expect(paths.length).toBeGreaterThan(3);
    for (const p of paths) expect([p, existsSync(join(ROOT, p))]).toEqual([p, true]);
  });

  test("every edgesync service's environment names real settings (lib/config/sources.ts)", () => {
    expect(EDGESYNC_SERVICES.map(([name]) => name).sort()).toEqual(['css1', 'css1-init', 'css2', 'css2-init', 'ess-http', 'ess-mqtt']);
    for (const [name, s] of EDGESYNC_SERVICES) {
      // The init services run deploy/css/init-users.sh: their variables are that script's.
      const known = s.entrypoint?.includes('/app/deploy/css/init-users.sh') === true ? new Set(requiredBy('deploy/css/init-users.sh')) : ENV_NAMES;
      for (const key of Object.keys(s.environment ?? {})) expect([name, key, known.has(key)]).toEqual([name, key, true]);
    }
  });

  test("gives each script every variable it insists on, and the broker's ESS user is the ESS's own", () => {
    const init = COMPOSE.services['css1-init']?.environment ?? {};
    for (const key of requiredBy('deploy/css/init-users.sh')) expect([key, key in init]).toEqual([key, true]);
    const broker = COMPOSE.services.mosquitto?.environment ?? {};
    for (const key of requiredBy('deploy/mosquitto/start.sh')) expect([key, key in broker]).toEqual([key, true]);
    expect(broker.MQTT_ESS_USER).toBe(COMPOSE.services['ess-mqtt']?.environment?.MQTT_USER_NAME);
    expect(broker.MQTT_CSS_USER).toBe(COMPOSE.services.css1?.environment?.MQTT_USER_NAME);
  });

  test('takes every secret from .env, whose example (deploy/env.example) names them all, and holds none itself', () => {
    const example = new Set([...read('deploy/env.example').matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    const used = [...COMPOSE_TEXT.matchAll(/\$\{([A-Z_]+)(?::[-?][^}]*)?\}/g)].map((m) => m[1] ?? '');
    expect(used.length).toBeGreaterThan(5);
    for (const name of used) expect([name, example.has(name)]).toEqual([name, true]);
    for (const s of Object.values(COMPOSE.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD/.test(key)) expect([key, value]).toEqual([key, expect.stringMatching(/^\$\{[A-Z_]+:\?/)]);
      }
    }
    expect(read('.gitignore')).toMatch(/^\.env$/m);
  });
});

// ---------------------------------------------------------------- what runs here

/** Starts the image's ENTRYPOINT + `mode` with the image's ENV, here (WORKDIR /app is the checkout). */
async function startAsTheImageDoes(mode: string, env: Record<string, string>): Promise<{ child: ChildProcess; out: () => string }> {
  const [command, ...args] = exec(inStage('runtime', 'ENTRYPOINT')[0]);
  const child = spawn(command === 'node' ? process.execPath : (command ?? ''), [...args, mode], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...envOf('runtime'), LISTENING_ADDRESS: '127.0.0.1', LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  t.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start in 20 s:\n${out}`)), 20_000);
    child.stdout?.on('data', () => {
      if (/API:\s+\S+\/api\/v1/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
  });
  return { child, out: () => out };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function healthcheck(env: Record<string, string>): number | null {
  return spawnSync(process.execPath, ['dist/scripts/docker/healthcheck.js'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 }).status;
}

describe("the image's start command and health check, run here", () => {
  test('a CSS and an ESS started as the image starts them serve in one process each, and the health check passes on HTTP (CSS) and HTTPS (ESS), and fails once they stop', async () => {
    const [cssPort, cssTls, broker, essHttp, essTls] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const css = await startAsTheImageDoes('css', {
      PERSISTENCE_ROOT_PATH: await tempRoot(t, 'deploy-css'),
      UNSECURE_LISTENING_PORT: String(cssPort),
      SECURE_LISTENING_PORT: String(cssTls),
      EMBEDDED_BROKER_PORT: String(broker),
    });
    const ess = await startAsTheImageDoes('ess', {
      PERSISTENCE_ROOT_PATH: await tempRoot(t, 'deploy-ess'),
      UNSECURE_LISTENING_PORT: String(essHttp),
      SECURE_LISTENING_PORT: String(essTls),
      ORG_ID: 'myorg',
      DESTINATION_TYPE: 'camera',
      DESTINATION_ID: 'cam1',
      HTTP_CSS_HOST: '127.0.0.1',
      HTTP_CSS_PORT: String(cssPort),
    });
    // No launcher (ADR 11): the process started is the one that serves, with no child of its own.
    for (const p of [css, ess]) {
      const children = readFileSync(`/proc/${p.child.pid ?? 0}/task/${p.child.pid ?? 0}/children`, 'utf8').trim();
      expect(children).toBe('');
    }
    expect(healthcheck({ UNSECURE_LISTENING_PORT: String(cssPort), SECURE_LISTENING_PORT: String(cssTls) })).toBe(0);
    // An ESS listens on HTTPS only (self-signed): the check falls back to it.
    expect(healthcheck({ UNSECURE_LISTENING_PORT: String(essHttp), SECURE_LISTENING_PORT: String(essTls) })).toBe(0);
    for (const p of [ess, css]) {
      p.child.kill('SIGTERM');
      expect(await new Promise((resolve) => p.child.once('exit', resolve))).toBe(0);
    }
    expect(healthcheck({ UNSECURE_LISTENING_PORT: String(cssPort), SECURE_LISTENING_PORT: String(cssTls) })).toBe(1);
  });

  test("deploy/css/init-users.sh puts .env's identities into a CSS's users file, and a second run keeps them", async () => {
    const root = await tempRoot(t, 'deploy-users');
    const env = {
      PATH: process.env.PATH ?? '',
      PERSISTENCE_ROOT_PATH: root,
      EDGESYNC: `${process.execPath} ${BIN}`,
      ...Object.fromEntries([...read('deploy/env.example').matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m): [string, string] => [m[1] ?? '', m[2] ?? ''])),
    };
    expect(execFileSync('sh', ['deploy/css/init-users.sh'], { cwd: ROOT, env, encoding: 'utf8' })).toBe('added: admin\nadded: myorg/camera/cam1\nadded: myorg/camera/cam2\n');
    expect(execFileSync('sh', ['deploy/css/init-users.sh'], { cwd: ROOT, env, encoding: 'utf8' })).toBe('kept: admin\nkept: myorg/camera/cam1\nkept: myorg/camera/cam2\n');
    const list = execFileSync(process.execPath, [BIN, 'users', 'list', '--persistence-root-path', root], { encoding: 'utf8' });
    expect(list).toBe('admin\tsyncadmin\t\tadmin\nmyorg/camera/cam1\tedgenode\tmyorg\tcamera/cam1\nmyorg/camera/cam2\tedgenode\tmyorg\tcamera/cam2\n');
  });
});

const has = (binary: string): boolean => spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
const NGINX = has('nginx');
/** `docker compose` (v2) or `docker-compose` (v1): both check a file against the compose schema without an engine. */
const COMPOSE_CLI: string[] | undefined =
  spawnSync('docker', ['compose', 'version']).status === 0 ? ['docker', 'compose'] : has('docker-compose') ? ['docker-compose'] : undefined;
const MOSQUITTO = has('mosquitto') && has('mosquitto_passwd');

describe('the balancer and broker configs, with the real programs where installed', () => {
  (COMPOSE_CLI ? test : test.skip)(
    `${COMPOSE_CLI?.join(' ') ?? 'docker compose'} config accepts docker-compose.yml with deploy/env.example as .env, and refuses it without, naming the example${COMPOSE_CLI ? '' : ' (SKIPPED: neither docker compose nor docker-compose is installed here)'}`,
    async () => {
      const [command, ...base] = COMPOSE_CLI ?? [];
      const config = (envFile: string): { status: number | null; out: string } => {
        const run = spawnSync(command ?? '', [...base, '--env-file', envFile, '-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
        return { status: run.status, out: run.stdout + run.stderr };
      };
      const good = config(join(ROOT, 'deploy/env.example'));
      expect(good.status).toBe(0);
      expect(good.out).toMatch(/STORAGE_PROVIDER: mongo/);
      const empty = join(await tempRoot(t, 'deploy-compose'), 'empty.env');
      writeFileSync(empty, '');
      const bad = config(empty);
      expect(bad.status).not.toBe(0);
      expect(bad.out).toMatch(/copy deploy\/env.example to .env/);
    },
  );

  (NGINX ? test : test.skip)(`nginx -t accepts deploy/nginx/nginx.conf${NGINX ? '' : ' (SKIPPED: nginx is not installed here)'}`, async () => {
    const dir = await tempRoot(t, 'deploy-nginx');
    // The CSS host names exist only on the compose network; nginx -t resolves them.
    const conf = read('deploy/nginx/nginx.conf').replace(/server css[12]:8080/g, 'server 127.0.0.1:8080');
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const run = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};`], { encoding: 'utf8' });
    expect([run.status, run.stderr]).toEqual([0, expect.stringContaining('test is successful')]);
  });

  (MOSQUITTO ? test : test.skip)(
    `deploy/mosquitto/start.sh starts mosquitto with deploy/mosquitto/mosquitto.conf: the ESS user logs in and is held to its own topics, a wrong password is refused${MOSQUITTO ? '' : ' (SKIPPED: mosquitto is not installed here)'}`,
    async () => {
      const dir = await tempRoot(t, 'deploy-mosquitto');
      const port = await freePort();
      const conf = read('deploy/mosquitto/mosquitto.conf')
        .replaceAll('/mosquitto/data', dir)
        .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`);
      writeFileSync(join(dir, 'mosquitto.conf'), conf);
      const broker = spawn('sh', ['deploy/mosquitto/start.sh'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          MOSQUITTO_CONF: join(dir, 'mosquitto.conf'),
          MOSQUITTO_DATA: dir,
          MQTT_CSS_USER: 'css',
          MQTT_CSS_PASSWORD: 'css-secret',
          MQTT_ESS_USER: 'myorg/camera/cam2',
          MQTT_ESS_PASSWORD: 'ess-secret',
          MQTT_ESS_TYPE: 'camera',
          MQTT_ESS_ID: 'cam2',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      broker.stdout.on('data', (d: Buffer) => (out += d.toString()));
      broker.stderr.on('data', (d: Buffer) => (out += d.toString()));
      t.add(async () => {
        if (broker.exitCode === null) {
          broker.kill('SIGTERM');
          await new Promise((resolve) => broker.once('exit', resolve));
        }
      });
      // mosquitto buffers its log when it is no terminal's: wait for its port instead.
      const deadline = Date.now() + 10_000;
      while (!(await accepts(port))) {
        if (broker.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto did not start:\n${out}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }

      const url = `mqtt://127.0.0.1:${port}`;
      await expect(mqtt.connectAsync(url, { username: 'myorg/camera/cam2', password: 'wrong', reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username or password/i);
      const ess = await mqtt.connectAsync(url, { username: 'myorg/camera/cam2', password: 'ess-secret', reconnectPeriod: 0 });
      // mosquitto grants any subscription and applies the ACL to each message it would deliver.
      await ess.subscribeAsync(['iot-2/type/camera/id/cam2/cmd/+', 'iot-2/type/camera/id/cam1/cmd/+']);
      const essSaw: string[] = [];
      ess.on('message', (topic) => essSaw.push(topic));
      const css = await mqtt.connectAsync(url, { username: 'css', password: 'css-secret', reconnectPeriod: 0 });
      await css.subscribeAsync('iot-2/type/+/id/+/evt/#');
      const cssSaw: string[] = [];
      css.on('message', (topic) => cssSaw.push(topic));
      await css.publishAsync('iot-2/type/camera/id/cam1/cmd/x', 'for cam1', { qos: 1 });
      await css.publishAsync('iot-2/type/camera/id/cam2/cmd/x', 'for cam2', { qos: 1 });
      await ess.publishAsync('iot-2/type/camera/id/cam1/evt/x', 'not mine', { qos: 1 });
      await ess.publishAsync('iot-2/type/camera/id/cam2/evt/x', 'mine', { qos: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(essSaw).toEqual(['iot-2/type/camera/id/cam2/cmd/x']);
      expect(cssSaw).toEqual(['iot-2/type/camera/id/cam2/evt/x']);
      await Promise.all([ess.endAsync(), css.endAsync()]);

      // The compose file's health check of this broker, as the container's shell runs it.
      if (has('mosquitto_sub')) {
        const check = COMPOSE.services.mosquitto?.healthcheck?.test ?? [];
        expect(check[0]).toBe('CMD-SHELL');
        const line = (check[1] ?? '').replaceAll('$$', '$').replace('-p 1883', `-p ${port}`);
        const env = { PATH: process.env.PATH ?? '', MQTT_CSS_USER: 'css', MQTT_CSS_PASSWORD: 'css-secret' };
        expect(spawnSync('sh', ['-c', line], { env }).status).toBe(0);
        expect(spawnSync('sh', ['-c', line], { env: { ...env, MQTT_CSS_PASSWORD: 'wrong' } }).status).not.toBe(0);
      } else {
        process.stderr.write('[edgesync] SKIPPED: the compose health check of mosquitto (mosquitto_sub is not installed here)\n');
      }
    },
  );

  const SHELLCHECK = has('shellcheck');
  (SHELLCHECK ? test : test.skip)(`shellcheck (POSIX sh) finds nothing in deploy/'s scripts${SHELLCHECK ? '' : ' (SKIPPED: shellcheck is not installed here)'}`, () => {
    const scripts = ['deploy/css/init-users.sh', 'deploy/mongo/start.sh', 'deploy/mosquitto/start.sh', 'deploy/simulate-image.sh'];
    const run = spawnSync('shellcheck', ['-s', 'sh', ...scripts], { cwd: ROOT, encoding: 'utf8' });
    expect([run.status, run.stdout]).toEqual([0, '']);
  });

  test('haproxy is not used: the balancer is nginx', () => {
    expect(COMPOSE.services.lb?.volumes).toEqual(['./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro']);
  });
});
