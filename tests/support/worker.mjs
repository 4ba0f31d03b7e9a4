// Runs the built Worker (build/ from scripts/build.sh) in Miniflare, the workerd-based
// runtime that `wrangler dev` uses, with its KV namespace and static assets.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BASE = 'http://localhost:8787';

/** The build directory to run: `dir` (relative to the checkout), unless EDGE_BFF_BUILD
 * names another one (for running these tests against another build, e.g. an older commit's). */
const buildPath = (dir) => path.resolve(ROOT, process.env.EDGE_BFF_BUILD ?? dir);

/** Miniflare's `assets` option for the demo SPA, as wrangler.toml configures it. */
export function spaAssets() {
  return {
    directory: path.join(ROOT, 'scripts/demo/spa'),
    binding: 'ASSETS',
    routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
  };
}

/** A fresh `COOKIE_KEYS` value with one key. */
export function newCookieKeys(kid = 'k1') {
  return `${kid}:${randomBytes(32).toString('base64url')}`;
}

/** The built Worker's module options for Miniflare (`buildDir`, entry module `entry`). */
function builtWorker(buildDir, entry = 'entry.mjs') {
  return {
    modules: true,
    scriptPath: path.join(buildPath(buildDir), entry),
    modulesRoot: buildPath(buildDir),
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-01',
  };
}

/** Every line the runtime writes, collected: { logs, handleRuntimeStdio } for Miniflare. */
function logCollector() {
  const logs = [];
  const collect = (stream) => {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => logs.push(...chunk.split('\n').filter(Boolean)));
  };
  return {
    logs,
    handleRuntimeStdio: (stdout, stderr) => {
      collect(stdout);
      collect(stderr);
    },
  };
}

/** `bindings` with `LOG_LEVEL: 'debug'` unless they set it (an empty value means the default, `warn`). */
const withLogLevel = (bindings) => ('LOG_LEVEL' in bindings ? bindings : { ...bindings, LOG_LEVEL: 'debug' });

// A stand-in Analytics Engine dataset for `METRICS` (Miniflare's own simulator discards
// every data point): it checks each point against Analytics Engine's limits, throwing as
// the service does, and prints it as one JSON log line, which `metricsPoints` reads.
const METRICS_RECORDER = `
class RecordingDataset {
  writeDataPoint(point) {
    const { blobs = [], doubles = [], indexes = [] } = point ?? {};
    if (!Array.isArray(blobs) || blobs.length > 20) throw new TypeError('blobs: at most 20');
    if (!blobs.every((b) => b === null || typeof b === 'string' || b instanceof ArrayBuffer)) throw new TypeError('blobs: strings');
    if (blobs.reduce((n, b) => n + (typeof b === 'string' ? new TextEncoder().encode(b).length : (b?.byteLength ?? 0)), 0) > 16 * 1024) throw new TypeError('blobs: 16 KB in all');
    if (!Array.isArray(doubles) || doubles.length > 20 || !doubles.every((d) => typeof d === 'number' && Number.isFinite(d))) throw new TypeError('doubles: at most 20 finite numbers');
    if (!Array.isArray(indexes) || indexes.length > 1) throw new TypeError('indexes: at most 1');
    console.log(JSON.stringify({ metrics_data_point: { blobs, doubles, indexes } }));
  }
}
export default function () {
  return new RecordingDataset();
}
`;

/** The data points the recording `METRICS` dataset printed into `logs`, in order. */
export function metricsPoints(logs) {
  return logs.filter((l) => l.startsWith('{"metrics_data_point"')).map((l) => JSON.parse(l).metrics_data_point);
}

/**
 * Start the Worker with `bindings` (vars and secrets). Returns { mf, fetch, logs, close }:
 * `fetch(path, init)` dispatches to BASE + path without following redirects; `logs` collects
 * every line the Worker wrote to the console. `LOG_LEVEL` is `debug` unless `bindings`
 * name it, so the tests see every line and the leak checks cover every level.
 *
 * `metrics`: bind `METRICS` to the recording stand-in ('record') or to Miniflare's own
 * Analytics Engine simulator ('simulator').
 */
export async function startWorker(bindings, { assets = true, port, buildDir = 'build', kv = true, kvPersist, entry = 'entry.mjs', coordinator = false, metrics } = {}) {
  const { logs, handleRuntimeStdio } = logCollector();
  const worker = {
    ...builtWorker(buildDir, entry),
    kvNamespaces: kv ? ['SESSIONS'] : [],
    // The coordinator (docs/api.md section 8), served by this same Worker: `true`, or
    // { binding, className } as a wrangler.toml names them.
    ...(coordinator
      ? { durableObjects: { [coordinator.binding ?? 'COORDINATOR']: { className: coordinator.className ?? 'EdgeBffCoordinator', useSQLite: true } } }
      : {}),
    bindings: withLogLevel(bindings),
    assets: assets ? spaAssets() : undefined,
    ...(metrics === 'record' ? { wrappedBindings: { METRICS: { scriptName: 'metrics-recorder' } } } : {}),
    ...(metrics === 'simulator' ? { analyticsEngineDatasets: { METRICS: { dataset: 'edge_bff' } } } : {}),
  };
  const shared = {
    ...(kvPersist ? { kvPersist } : {}),
    ...(port ? { host: '127.0.0.1', port } : {}),
    handleRuntimeStdio,
  };
  const mf = new Miniflare(
    metrics === 'record'
      ? { ...shared, workers: [{ name: 'edge-bff', ...worker }, { name: 'metrics-recorder', modules: true, script: METRICS_RECORDER }] }
      : { ...shared, ...worker },
  );
  await mf.ready;
  return {
    mf,
    logs,
    fetch: (p, init = {}) => mf.dispatchFetch(new URL(p, BASE), { redirect: 'manual', ...init }),
    close: () => mf.dispose(),
  };
}

/**
 * Start the benchmarks' pass-through Worker (target/bench-passthrough, built by
 * scripts/bench.sh) forwarding to `upstream`, listening on 127.0.0.1:`port`; with
 * `assets`, behind the same asset router as edge-bff's. Returns the Miniflare instance.
 */
export async function startPassThrough(upstream, { port, assets = false }) {
  const dir = path.join(ROOT, 'target/bench-passthrough');
  return listeningWorker(
    {
      modules: true,
      scriptPath: path.join(dir, 'entry.mjs'),
      modulesRoot: dir,
      modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
      bindings: { UPSTREAM: upstream },
      assets: assets ? spaAssets() : undefined,
    },
    port,
  );
}

/**
 * Start a JavaScript peer Worker for the benchmarks (one bundled ES module, `script`)
 * with `bindings`, listening on 127.0.0.1:`port`. Returns the Miniflare instance.
 */
export async function startPeer(script, bindings, { port }) {
  return listeningWorker({ modules: true, scriptPath: script, modulesRoot: path.dirname(script), bindings }, port);
}

/** A benchmark Worker (Miniflare options `worker`) on 127.0.0.1:`port`, its console dropped. */
async function listeningWorker(worker, port) {
  const mf = new Miniflare({
    compatibilityDate: '2026-04-01',
    ...worker,
    // workerd reports every connection wrk drops at the end of a run; not news here.
    handleRuntimeStdio: (stdout, stderr) => {
      stdout.resume();
      stderr.resume();
    },
    host: '127.0.0.1',
    port,
  });
  await mf.ready;
  return mf;
}

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Several isolates of the built Worker in one Miniflare: `isolates` workers (`w0`, `w1`, …)
 * running the same build, one shared KV namespace, and (with `coordinator`) the
 * `COORDINATOR` Durable Object bound in all of them, its class served by `w0`. Every
 * worker is its own V8 isolate with its own Wasm instance (per-isolate memory is
 * separate), as isolates of one deployment at the edge are.
 * Returns { mf, on(i), logs, close }: `on(i).fetch(path, init)` sends to isolate i without
 * following redirects.
 */
export async function startFleet(bindings, { isolates = 2, coordinator = true, kv = true, buildDir = 'build', port, coordinatorScript } = {}) {
  const { logs, handleRuntimeStdio } = logCollector();
  const common = { ...builtWorker(buildDir), kvNamespaces: kv ? { SESSIONS: 'sessions' } : {}, bindings: withLogLevel(bindings) };
  const durableObjects = coordinator
    ? { COORDINATOR: { className: 'EdgeBffCoordinator', scriptName: coordinatorScript ? 'coordinator' : 'w0', useSQLite: true } }
    : {};
  const workers = Array.from({ length: isolates }, (_, i) => ({ ...common, name: `w${i}`, durableObjects }));
  if (coordinatorScript) {
    // A stand-in coordinator (for what the real one will not do: fail, hang).
    workers.push({ name: 'coordinator', modules: true, script: coordinatorScript, compatibilityDate: '2026-04-01', durableObjects });
  }
  const mf = new Miniflare({
    workers,
    ...(port ? { host: '127.0.0.1', port } : {}),
    handleRuntimeStdio,
  });
  await mf.ready;
  const handles = [];
  for (let i = 0; i < isolates; i++) {
    const worker = await mf.getWorker(`w${i}`);
    handles.push({ fetch: (p, init = {}) => worker.fetch(new URL(p, BASE), { redirect: 'manual', ...init }) });
  }
  return { mf, logs, on: (i) => handles[i % isolates], isolates, close: () => mf.dispose() };
}
