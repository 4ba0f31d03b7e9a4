// HTTP benchmark of the built Worker (scripts/bench.sh): edge-bff and a pass-through
// Worker built the same way, both served by Miniflare's own listener (not `wrangler dev`),
// a local upstream, the real local OpenID provider for a session, and wrk as the load.
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
const bff = await startWorker(bindings, { port: bffPort, kv: false });

const passPort = await freePort();
const passDir = path.join(ROOT, 'target/bench-passthrough');
const pass = new Miniflare({
  modules: true,
  scriptPath: path.join(passDir, 'index.js'),
  modulesRoot: passDir,
  modulesRules: [{ type: 'ESModule', include: ['**/*.js'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-04-01',
  bindings: { UPSTREAM: up.base },
  // workerd reports every connection wrk drops at the end of a run; not news here.
  handleRuntimeStdio: (stdout, stderr) => {
    stdout.resume();
    stderr.resume();
  },
  host: '127.0.0.1',
  port: passPort,
});
await pass.ready;

const { jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
const withSession = { Cookie: jar.header(), 'X-CSRF': '1', Host: `localhost:${bffPort}` };
const luaDir = mkdtempSync(path.join(tmpdir(), 'edge-bff-bench-'));
const post64k = path.join(luaDir, 'post64k.lua');
writeFileSync(post64k, 'wrk.method = "POST"\nwrk.body = string.rep("x", 65536)\nwrk.headers["Content-Type"] = "application/octet-stream"\n');

const scenarios = [
  ['a', 'GET /auth/session (with a session)', `http://127.0.0.1:${bffPort}/auth/session`, { headers: withSession }],
  ['b', 'proxied GET (with a session)', `http://127.0.0.1:${bffPort}/api/status/200`, { headers: withSession }],
  ['c', 'proxied POST 64 KB (with a session)', `http://127.0.0.1:${bffPort}/api/upload`, { headers: withSession, script: post64k }],
  ['d', 'pass-through Worker GET', `http://127.0.0.1:${passPort}/status/200`, {}],
  ['d2', 'pass-through Worker POST 64 KB', `http://127.0.0.1:${passPort}/upload`, { script: post64k }],
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
console.log(`\nHTTP (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} alternating rounds, medians)`);
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
console.log(`(a)/(d)  ${ratio('a', 'd')}`);
console.log(`(b)/(d)  ${ratio('b', 'd')}`);
console.log(`(c)/(d)  ${ratio('c', 'd')}`);
console.log(`(c)/(d2) ${ratio('c', 'd2')}  (same 64 KB POST through the pass-through)`);

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
await pass.dispose();
await up.close();
await idp.close();
