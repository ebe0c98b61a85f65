/**
 * Benchmark: CSS → ESS over MQTT on the real binaries, through the CSS's embedded broker
 * (`mqtt-embedded`: COMMUNICATION_PROTOCOL=http,mqtt, no BROKER_ADDRESS, EMBEDDED_BROKER_PORT
 * picked here) or through mosquitto (`mqtt-mosquitto`: /usr/sbin/mosquitto on a random loopback
 * port with a password file; CSS and ESS both dial it). Per transport a fresh CSS and one ESS
 * (temp dirs, LOG_LEVEL warning, the ESS logging in as its own `edgenode` user), then:
 *
 * - many: 500 objects of 1 KiB inline data addressed by type `edge`, published by 16 concurrent
 *   SDK clients; clocked from the first PUT to all 500 listed by the ESS (probed once the last
 *   PUT is accepted: the status of the last one every 10 ms, then the listing every 20 ms).
 *   Twice: run 1 on the freshly started nodes, run 2 warm (other objects, same nodes). Prints
 *   objects/s and each process's CPU seconds over each run. Target ≥ 1000.
 * - latency: then 20 objects of 1 KiB published one after another, each clocked from its PUT's
 *   answer to its status on the ESS being `completelyReceived` (polled every 2 ms); p50 and max.
 * - large: one object of 256 MiB (generated as it is read, never held whole; its SHA-256 known
 *   up front), metadata PUT then one streamed data PUT; clocked from the data PUT's start to its
 *   status on the ESS being `completelyReceived` (polled every 10 ms). Prints MiB/s, whether
 *   the ESS's copy is intact (read back and SHA-256'd after the clock), and each process's peak
 *   RSS (VmHWM; mosquitto's too, for reading). Targets ≥ 200 MiB/s, each node's peak ≤ 150 MB.
 *
 * One JSON line per result ({"bench":"sync-mqtt","transport":...,"metric":...,"value":...}).
 * The exit code is 1 when a copy is not intact.
 *
 *   npm run build && node dist/scripts/bench/sync-mqtt.js [mqtt-embedded|mqtt-mosquitto] [largeMiB=256] [objects=500]
 *
 * largeMiB 0 skips the large object; objects 0 skips the many objects.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import type { SyncServiceClient } from '../../sdk/index.js';
import { generatedData } from '../../test/helpers/generated-data.js';
import { freePort, mosquittoAvailable, startMosquitto, type Mosquitto } from '../../test/helpers/mosquitto.js';
import { adminClients, BIN, cleanUpOnSignals, cpuSeconds, nowMs, round, rssMB, startNode, stopNode, until, type BenchNode } from './bench-nodes.js';

cleanUpOnSignals('sync-mqtt');

type Transport = 'mqtt-embedded' | 'mqtt-mosquitto';

const ORG = 'bench';
const DEST_TYPE = 'edge';
const ESS_ID = 'n1';
const ESS_SECRET = 's';
const KiB = 1024;
const MiB = 1024 * KiB;
const PUBLISHERS = 16;
/** Bound of every wait (start-up, registration, publishing, delivery, read-back). */
const DEADLINE_MS = 300_000;

function line(transport: Transport, o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'sync-mqtt', transport, ...o })}\n`);
}

/** A CSS with org `bench` and ESS edge/n1 registered with it over `transport`; `body` runs with them, then all stops. */
async function withNet(transport: Transport, body: (css: BenchNode, ess: BenchNode, broker: Mosquitto | null, client: (n: BenchNode, org?: string) => SyncServiceClient) => Promise<void>): Promise<void> {
  const nodes: BenchNode[] = [];
  const { client, closeAll } = adminClients();
  const essUser = `${ORG}/${DEST_TYPE}/${ESS_ID}`;
  const cssUser = { user: 'edgesync-css', password: 'bench-css' };
  let broker: Mosquitto | null = null;
  try {
    if (transport === 'mqtt-mosquitto') broker = await startMosquitto({ users: [cssUser, { user: essUser, password: ESS_SECRET }] });
    const brokerPort = broker?.port ?? (await freePort());
    const mqttEnv = { BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(brokerPort), MQTT_USE_SSL: 'false' };
    const cssEnv =
      transport === 'mqtt-embedded'
        ? { COMMUNICATION_PROTOCOL: 'http,mqtt', BROKER_ADDRESS: '', EMBEDDED_BROKER_PORT: String(brokerPort) }
        : { COMMUNICATION_PROTOCOL: 'mqtt', ...mqttEnv, MQTT_USER_NAME: cssUser.user, MQTT_PASSWORD: cssUser.password };
    const css = await startNode('css', cssEnv, nodes);
    const onCss = client(css, ORG);
    await onCss.putOrganization({ orgID: ORG });
    await promisify(execFile)(process.execPath, [BIN, 'users', 'add', essUser, '--type', 'edgenode', '--org', ORG, '--username', `${DEST_TYPE}/${ESS_ID}`, '--secret', ESS_SECRET, '--persistence-root-path', css.root], { timeout: 30_000 });
    const ess = await startNode(
      'ess',
      { ORG_ID: ORG, DESTINATION_TYPE: DEST_TYPE, DESTINATION_ID: ESS_ID, COMMUNICATION_PROTOCOL: 'mqtt', ...mqttEnv, MQTT_USER_NAME: essUser, MQTT_PASSWORD: ESS_SECRET },
      nodes,
    );
    await until('registration of the ESS', Date.now() + DEADLINE_MS, 100, () => onCss.getDestinations(), (d) => d.some((x) => x.destinationID === ESS_ID));
    // The first login to each node (a scrypt) happens before any clock.
    await client(ess).getObjectStatus('warm', 'up');
    await body(css, ess, broker, client);
  } finally {
    closeAll();
    // ESS first, then CSS, then the broker.
    for (const node of [...nodes].reverse()) await stopNode(node);
    await broker?.stop();
  }
}

const LATENCY_OBJECTS = 20;

async function benchMany(transport: Transport, objects: number): Promise<void> {
  await withNet(transport, async (css, ess, broker, client) => {
    for (const run of [1, 2]) await manyRun(transport, run, objects, css, ess, broker, client);
    await latencyRun(transport, css, ess, client);
  });
}

/** One run of `objects` objects published by PUBLISHERS clients, ids `r<run>-<n>` of type `many`. */
async function manyRun(transport: Transport, run: number, objects: number, css: BenchNode, ess: BenchNode, broker: Mosquitto | null, client: (n: BenchNode, org?: string) => SyncServiceClient): Promise<void> {
  const onEss = client(ess);
  const brokerPid = broker?.pid() ?? null;
  const cpu = async (): Promise<Record<string, number>> => ({
    css: await cpuSeconds(css.pid),
    ess: await cpuSeconds(ess.pid),
    ...(brokerPid !== null ? { mosquitto: await cpuSeconds(brokerPid) } : {}),
    bench: await cpuSeconds(process.pid),
  });
  const publishers = Array.from({ length: PUBLISHERS }, () => client(css, ORG));
  const payload = Buffer.alloc(KiB, 0x61);
  const deadline = Date.now() + DEADLINE_MS;
  let next = 0;
  const cpu0 = await cpu();
  const t0 = nowMs();
  await Promise.all(
    publishers.map(async (c) => {
      while (next < objects && Date.now() < deadline) await c.updateObject({ objectID: `r${run}-${next++}`, objectType: 'many', destinationType: DEST_TYPE }, payload);
    }),
  );
  const publishedAt = nowMs();
  // Nothing can be complete before the last PUT is accepted. The probe must not slow down what
  // it measures (a delivery over MQTT may take a while, and the probe runs all along): the
  // status of the last object put every 10 ms first (one cheap request), then the listing
  // that decides every 20 ms.
  await until('the last object on the ESS', deadline, 10, () => onEss.getObjectStatus('many', `r${run}-${objects - 1}`), (s) => s === 'completelyReceived');
  await until('all objects on the ESS', deadline, 20, async () => (await onEss.listObjects('many')).length, (n) => n === objects * run);
  const seconds = (nowMs() - t0) / 1000;
  const cpu1 = await cpu();
  line(transport, { metric: 'many_objects_per_s', value: round(objects / seconds), run, seconds: round(seconds, 2), publishSeconds: round((publishedAt - t0) / 1000, 2), objects, sizeKiB: 1, publishers: PUBLISHERS, target: '>=1000' });
  // CPU seconds (user + system) of each process over the run (the bench: its 16 SDK clients and the probe).
  line(transport, { metric: 'many_cpu_seconds', run, value: Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, round(v - (cpu0[k] ?? 0), 2)])) });
}

/** LATENCY_OBJECTS objects one after another: from each PUT's answer to the object complete on the ESS. */
async function latencyRun(transport: Transport, css: BenchNode, ess: BenchNode, client: (n: BenchNode, org?: string) => SyncServiceClient): Promise<void> {
  const onCss = client(css, ORG);
  const onEss = client(ess);
  const payload = Buffer.alloc(KiB, 0x62);
  const ms: number[] = [];
  for (let i = 0; i < LATENCY_OBJECTS; i++) {
    await onCss.updateObject({ objectID: `l-${i}`, objectType: 'latency', destinationType: DEST_TYPE }, payload);
    const t0 = nowMs();
    await until('the object on the ESS', Date.now() + DEADLINE_MS, 2, () => onEss.getObjectStatus('latency', `l-${i}`), (s) => s === 'completelyReceived');
    ms.push(nowMs() - t0);
  }
  ms.sort((a, b) => a - b);
  line(transport, { metric: 'latency_ms', value: { p50: round(ms[Math.floor(ms.length / 2)]!), max: round(ms[ms.length - 1]!) }, objects: LATENCY_OBJECTS, sizeKiB: 1 });
}

async function benchLarge(transport: Transport, sizeMiB: number): Promise<boolean> {
  let intact = false;
  await withNet(transport, async (css, ess, broker, client) => {
    const onCss = client(css, ORG);
    const onEss = client(ess);
    const size = sizeMiB * MiB;
    const data = generatedData(size);
    const brokerPid = broker?.pid() ?? null;
    const cpu = async (): Promise<Record<string, number>> => ({
      css: await cpuSeconds(css.pid),
      ess: await cpuSeconds(ess.pid),
      ...(brokerPid !== null ? { mosquitto: await cpuSeconds(brokerPid) } : {}),
    });
    await onCss.updateObject({ objectID: 'big', objectType: 'large', destinationType: DEST_TYPE });
    const cpu0 = await cpu();
    const t0 = nowMs();
    await onCss.updateObjectData('large', 'big', data.stream(), { size, signal: AbortSignal.timeout(DEADLINE_MS) });
    const uploadedAt = nowMs();
    const cpu1 = await cpu();
    await until('the object completelyReceived on the ESS', Date.now() + DEADLINE_MS, 10, () => onEss.getObjectStatus('large', 'big'), (s) => s === 'completelyReceived');
    const seconds = (nowMs() - t0) / 1000;
    const cpu2 = await cpu();
    const atVisible = { css: await rssMB(css.pid), ess: await rssMB(ess.pid) };
    line(transport, { metric: 'large_MiBps', value: round(sizeMiB / seconds), seconds: round(seconds, 2), uploadSeconds: round((uploadedAt - t0) / 1000, 2), sizeMiB, target: '>=200' });
    // CPU seconds (user + system) of each process during the upload, then from its end to the object visible on the ESS.
    const spent = (from: Record<string, number>, to: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(to).map(([k, v]) => [k, round(v - (from[k] ?? 0), 2)]));
    line(transport, { metric: 'large_cpu_seconds', value: { upload: spent(cpu0, cpu1), transfer: spent(cpu1, cpu2) } });

    const hash = createHash('sha256');
    let got = 0;
    for await (const chunk of (await onEss.fetchObjectData('large', 'big', { signal: AbortSignal.timeout(DEADLINE_MS) })) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      got += chunk.length;
    }
    const sha256 = hash.digest('hex');
    intact = got === size && sha256 === data.sha256;
    line(transport, { metric: 'large_intact', value: intact, size: got, sha256, expected: data.sha256 });
    // VmHWM is a high-water mark: atVisible is the transfer's, the value also the read-back's.
    line(transport, { metric: 'css_peak_rss_MB', value: await rssMB(css.pid), atVisible: atVisible.css, target: '<=150' });
    line(transport, { metric: 'ess_peak_rss_MB', value: await rssMB(ess.pid), atVisible: atVisible.ess, target: '<=150' });
    if (brokerPid !== null) line(transport, { metric: 'mosquitto_peak_rss_MB', value: await rssMB(brokerPid) });
  });
  return intact;
}

const TRANSPORTS: readonly Transport[] = ['mqtt-embedded', 'mqtt-mosquitto'];
const [only, largeArg, objectsArg] = process.argv.slice(2);
if (only !== undefined && only !== 'all' && !(TRANSPORTS as readonly string[]).includes(only)) throw new Error(`usage: sync-mqtt.js [${TRANSPORTS.join('|')}|all] [largeMiB] [objects]`);
const largeMiB = Number(largeArg ?? 256);
const objects = Number(objectsArg ?? 500);
if (!Number.isSafeInteger(largeMiB) || largeMiB < 0 || !Number.isSafeInteger(objects) || objects < 0) throw new Error('largeMiB and objects must be integers ≥ 0 (0 skips that part)');

let allIntact = true;
for (const transport of TRANSPORTS) {
  if (only !== undefined && only !== 'all' && only !== transport) continue;
  if (transport === 'mqtt-mosquitto' && !mosquittoAvailable()) {
    line(transport, { metric: 'skipped', value: 'mosquitto not installed' });
    continue;
  }
  line(transport, { metric: 'loadavg_start', value: loadavg().map((x) => round(x, 2)) });
  if (objects > 0) await benchMany(transport, objects);
  if (largeMiB > 0) allIntact = (await benchLarge(transport, largeMiB)) && allIntact;
  line(transport, { metric: 'loadavg_end', value: loadavg().map((x) => round(x, 2)) });
}
process.exitCode = allIntact ? 0 : 1;
