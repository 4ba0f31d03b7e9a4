// HTTP benchmark of the built Worker (scripts/bench.sh): edge-bff and a pass-through
// Worker built the same way, both served by Miniflare's own listener (not `wrangler dev`),
// a local upstream, the real local OpenID provider for a session, and wrk as the load.
//
// Both Workers are measured in the same two layouts: route-only (the main table), and with
// static assets in the same Worker (`[assets]` with `run_worker_first`), where Miniflare
// puts its asset-router Worker in front of the user Worker for every request; that hop is
// the same for both and is shown separately.
import path from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Miniflare } from 'miniflare';
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort, ROOT } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { wrk } from './wrk.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const up = await startUpstream({ record: false });
const bffPort = await freePort();
const origin = `http://localhost:${bffPort}`;
const idp = await startProvider({ redirectOrigin: origin });
const bindings = {
  OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: origin,
  COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]),
};
const bff = await startWorker(bindings, { port: bffPort, kv: false, assets: false });
const bffAssetsPort = await freePort();
const bffAssets = await startWorker(bindings, { port: bffAssetsPort, kv: false, assets: true });

const passDir = path.join(ROOT, 'target/bench-passthrough');
async function startPassThrough(withAssets) {
  const port = await freePort();
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(passDir, 'index.js'),
    modulesRoot: passDir,
    modulesRules: [{ type: 'ESModule', include: ['**/*.js'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    bindings: { UPSTREAM: up.base },
    // The same asset configuration as edge-bff's (tests/support/worker.mjs).
    assets: withAssets
      ? {
          directory: path.join(ROOT, 'scripts/demo/spa'),
          binding: 'ASSETS',
          routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
        }
      : undefined,
    // workerd reports every connection wrk drops at the end of a run; not news here.
    handleRuntimeStdio: (stdout, stderr) => {
      stdout.resume();
      stderr.resume();
    },
    host: '127.0.0.1',
    port,
  });
  await mf.ready;
  return { mf, port };
}
const pass = await startPassThrough(false);
const passAssets = await startPassThrough(true);
const passPort = pass.port;

const { jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
const withSession = { Cookie: jar.header(), 'X-CSRF': '1', Host: `localhost:${bffPort}` };
const withSessionA = { ...withSession, Host: `localhost:${bffAssetsPort}` };
const luaDir = mkdtempSync(path.join(tmpdir(), 'edge-bff-bench-'));
const post64k = path.join(luaDir, 'post64k.lua');
writeFileSync(post64k, 'wrk.method = "POST"\nwrk.body = string.rep("x", 65536)\nwrk.headers["Content-Type"] = "application/octet-stream"\n');

const scenarios = [
  ['a', 'GET /auth/session (with a session)', `http://127.0.0.1:${bffPort}/auth/session`, { headers: withSession }],
  ['b', 'proxied GET (with a session)', `http://127.0.0.1:${bffPort}/api/status/200`, { headers: withSession }],
  ['c', 'proxied POST 64 KB (with a session)', `http://127.0.0.1:${bffPort}/api/upload`, { headers: withSession, script: post64k }],
  ['d', 'pass-through Worker GET', `http://127.0.0.1:${passPort}/status/200`, {}],
  ['d2', 'pass-through Worker POST 64 KB', `http://127.0.0.1:${passPort}/upload`, { script: post64k }],
  ['a+', '(a) with assets in the Worker', `http://127.0.0.1:${bffAssetsPort}/auth/session`, { headers: withSessionA }],
  ['b+', '(b) with assets in the Worker', `http://127.0.0.1:${bffAssetsPort}/api/status/200`, { headers: withSessionA }],
  ['d+', '(d) with assets in the Worker', `http://127.0.0.1:${passAssets.port}/status/200`, {}],
];

// Check every scenario answers 200 before measuring.
for (const [, name, url, opts] of scenarios) {
  const res = await fetch(url, { method: opts.script ? 'POST' : 'GET', headers: opts.headers, body: opts.script ? 'x'.repeat(65536) : undefined });
  if (res.status !== 200) throw new Error(`${name}: status ${res.status} ${await res.text()}`);
}

const results = Object.fromEntries(scenarios.map(([id]) => [id, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order each round so drift does not favour one side.
  const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
  for (const [id, , url, opts] of order) {
    const r = await wrk(url, { seconds: SECONDS, connections: CONNECTIONS, ...opts });
    if (r.non2xx || r.errors) throw new Error(`${id}: ${r.non2xx} non-2xx, ${r.errors}`);
    results[id].push(r);
  }
}

const summary = {};
console.log(`\nHTTP (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} alternating rounds, medians; route-only unless marked)`);
console.log(`${'scenario'.padEnd(40)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
for (const [id, name] of scenarios) {
  const rps = median(results[id].map((r) => r.rps));
  const p50 = median(results[id].map((r) => r.p50));
  const p99 = median(results[id].map((r) => r.p99));
  summary[id] = { rps, p50, p99 };
  console.log(`${`(${id}) ${name}`.padEnd(40)} ${rps.toFixed(0).padStart(8)} ${p50.toFixed(2).padStart(8)} ${p99.toFixed(2).padStart(8)}`);
}
const ratio = (x, y) => `throughput ${(summary[x].rps / summary[y].rps).toFixed(2)}x, p50 latency ${(summary[x].p50 / summary[y].p50).toFixed(2)}x`;
console.log(`\nratios against the pass-through Worker`);
const verdict = (ok) => (ok ? 'met' : 'NOT met');
console.log(`(a)/(d)  ${ratio('a', 'd')}   target throughput >= 0.95x: ${verdict(summary.a.rps / summary.d.rps >= 0.95)}`);
console.log(`(b)/(d)  ${ratio('b', 'd')}   target p50 latency <= 1.10x: ${verdict(summary.b.p50 / summary.d.p50 <= 1.1)}`);
console.log(`(c)/(d)  ${ratio('c', 'd')}`);
console.log(`(c)/(d2) ${ratio('c', 'd2')}  (same 64 KB POST through the pass-through)`);
console.log(`with static assets in both Workers (Miniflare's asset router in front of each):`);
console.log(`(a+)/(d+) ${ratio('a+', 'd+')}`);
console.log(`(b+)/(d+) ${ratio('b+', 'd+')}`);
console.log(`asset-router hop: (d+)/(d) ${ratio('d+', 'd')}`);

// A fresh isolate: a new runtime with the module, then its first and a warm request.
const t0 = performance.now();
const fresh = await startWorker(bindings, { kv: false });
const ready = performance.now();
const first = await fresh.fetch('/auth/session', { headers: { cookie: jar.header() } });
await first.text();
const firstMs = performance.now() - ready;
const t1 = performance.now();
await (await fresh.fetch('/auth/session', { headers: { cookie: jar.header() } })).text();
const warmMs = performance.now() - t1;
console.log(`\nfresh isolate: runtime start with the module ${(ready - t0).toFixed(0)} ms; first response ${firstMs.toFixed(1)} ms; next response ${warmMs.toFixed(1)} ms`);

await fresh.close();
await bff.close();
await bffAssets.close();
await pass.mf.dispose();
await passAssets.mf.dispose();
await up.close();
await idp.close();
