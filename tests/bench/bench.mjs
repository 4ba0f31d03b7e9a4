// HTTP benchmark of the built Worker (scripts/bench.sh): edge-bff and a pass-through
// Worker built the same way, both served by Miniflare's own listener (not `wrangler dev`),
// a local upstream, the real local OpenID provider for a session, and wrk as the load.
//
// Both Workers are measured in the same two layouts: route-only (the main table), and with
// static assets in the same Worker (`[assets]` with `run_worker_first`), where Miniflare
// puts its asset-router Worker in front of the user Worker for every request; that hop is
// the same for both and is shown separately. (bk) is the proxied GET with a SESSIONS
// binding, which sends cookie-session calls through the full path (deny-list read).
//
// Peers (issue 16): a Hono Worker with @hono/oidc-auth (tests/bench/peers/hono-oidc.js),
// bundled and minified by esbuild as `wrangler deploy --minify` would, logged in against
// the same provider, doing the jobs of (a) and (b). (au) and (bu) are (a) and (b) with
// many distinct valid session cookies sent in turn, more than the isolate remembers, so
// every request opens its cookie (a real app's users mostly arrive with cookies the
// isolate has not seen). Issue 27 adds a second peer: the contract's hot paths in plain
// JavaScript with WebCrypto (tests/bench/peers/webcrypto-contract.js), reading edge-bff's
// own cookies, so (ja)/(jb) and (jau)/(jbu) are measured on the very same cookies as
// (a)/(b) and (au)/(bu).
import path from 'node:path';
import { writeFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { availableParallelism, tmpdir } from 'node:os';
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, startPassThrough, startPeer, newCookieKeys, freePort } from '../support/worker.mjs';
import { login, authorizeAtProvider } from '../support/login.mjs';
import { CookieJar } from '../support/http.mjs';
import { createRequire } from 'node:module';
import { generateKeyPairSync } from 'node:crypto';
import { wrk, workerdPid, pinWrkTo, pinToCore } from './wrk.mjs';
import { unseenCookies, rotatingCookieScript } from './unseen.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
// With two or more cores the Workers under test run on core 1 and everything else (this
// process with the upstream and the provider, wrk) on core 0: the Workers do not share
// their core with the load, and runs are far steadier on this machine.
const PIN = availableParallelism() >= 2 && process.env.BENCH_PIN !== '0';
if (PIN) {
  pinToCore(process.pid, 0);
  pinWrkTo(0);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const verdict = (ok) => (ok ? 'met' : 'NOT met');
// BENCH_FRESH_ONLY=1: only the fresh-isolate starts and the upload sizes (a minute).
const FRESH_ONLY = process.env.BENCH_FRESH_ONLY === '1';

const up = await startUpstream({ record: false });
const bffPort = await freePort();
const origin = `http://localhost:${bffPort}`;
// The provider knows one resource (RFC 8707), for (bt)'s route token.
const BENCH_RESOURCE = 'https://bench-api.example/';
const idp = await startProvider({ redirectOrigin: origin, resourceServers: { [BENCH_RESOURCE]: '' } });
const bindings = {
  OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: origin,
  COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]),
  LOG_LEVEL: 'warn', // production's default: the benchmarks measure what a deployment pays
};
const bff = await startWorker(bindings, { port: bffPort, kv: false, assets: false });
const bffAssetsPort = await freePort();
const bffAssets = await startWorker(bindings, { port: bffAssetsPort, kv: false, assets: true });
// Cookie sessions with a SESSIONS binding: every proxied call reads the back-channel
// deny-list (Miniflare's local KV) and takes the full, async path.
const bffKvPort = await freePort();
const bffKv = await startWorker(bindings, { port: bffKvPort, kv: true, assets: false });
// The same as (b) with the COORDINATOR Durable Object bound: the hot path never calls it.
const bffCoPort = await freePort();
const bffCo = await startWorker(bindings, { port: bffCoPort, kv: false, assets: false, coordinator: true });
// The same as (b) on an https PUBLIC_ORIGIN, as in production: every answer gets
// edge-bff's Strict-Transport-Security (HSTS), so the upstream's response is copied to
// add it. The session cookie opens here too (same keys; a session is not bound to the
// origin), and wrk sends no Origin header, so the CSRF check passes as in (b).
const bffHstsPort = await freePort();
const bffHsts = await startWorker({ ...bindings, PUBLIC_ORIGIN: 'https://app.example.test' }, { port: bffHstsPort, kv: false, assets: false });

// The same as (b) with DPOP_KEY and a DPoP-bound session: every call carries a fresh
// proof, its signing input made in Rust and signed by WebCrypto in glue.js (the direct
// path). It shares (b)'s PUBLIC_ORIGIN, so the provider's redirect URI fits; its login
// is sent to its own port.
const bffDpopPort = await freePort();
const dpopKey = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'bench-dpop', alg: 'ES256' };
const bffDpop = await startWorker({ ...bindings, DPOP_KEY: JSON.stringify(dpopKey) }, { port: bffDpopPort, kv: false, assets: false });

// The same as (b) on a route with `require` (docs/api.md section 4): the claims check is made
// on the direct path for every call (the ID token's claims read from the session).
const bffReqPort = await freePort();
const bffReq = await startWorker(
  { ...bindings, API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/`, require: { email_verified: true, sub: ['someone-else', 'demo-user-0001'] } }]) },
  { port: bffReqPort, kv: false, assets: false },
);

// The same as (b) on a route with its own token (docs/api.md section 4, "Route tokens"):
// the session holds the route token (granted once, before measuring), which the direct
// path picks and sends instead of the login's.
const bffRouteTokenPort = await freePort();
const bffRouteToken = await startWorker(
  { ...bindings, API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/`, token_request: { resource: BENCH_RESOURCE } }]) },
  { port: bffRouteTokenPort, kv: false, assets: false },
);

// The same as (b) with an Analytics Engine dataset bound as METRICS (Miniflare's own
// simulator): one data point per call, written from glue.js when the answer's head is in.
const bffMetricsPort = await freePort();
const bffMetrics = await startWorker(bindings, { port: bffMetricsPort, kv: false, assets: false, metrics: 'simulator' });
// The same as (b) at LOG_LEVEL=info: one JSON access line per call (here written to
// workerd's stdout, which the test harness reads; at the edge, Workers Logs).
const bffInfoPort = await freePort();
const bffInfo = await startWorker({ ...bindings, LOG_LEVEL: 'info' }, { port: bffInfoPort, kv: false, assets: false });

// The Hono peer, bundled here as `wrangler deploy --minify` would bundle it.
const PEER_DIR = path.resolve('../target/bench-peers');
const esbuild = createRequire(import.meta.url)('esbuild');
await esbuild.build({
  entryPoints: ['bench/peers/hono-oidc.js'],
  outfile: path.join(PEER_DIR, 'hono-oidc.mjs'),
  bundle: true,
  minify: true,
  format: 'esm',
  conditions: ['workerd', 'worker', 'browser'],
  external: ['cloudflare:*'],
  logLevel: 'warning',
});
const honoPort = await freePort();
const honoBindings = {
  OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: 'edge-bff', OIDC_CLIENT_SECRET: 'edge-bff-local-secret',
  // The provider knows edge-bff's callback URL; the peer's login is sent to its own port.
  OIDC_REDIRECT_URI: `${origin}/auth/callback`, OIDC_SCOPES: 'openid profile email',
  OIDC_AUTH_SECRET: newCookieKeys().slice(3), UPSTREAM: up.base,
};
const hono = await startPeer(path.join(PEER_DIR, 'hono-oidc.mjs'), honoBindings, { port: honoPort });

async function passThrough(assets) {
  const port = await freePort();
  return { mf: await startPassThrough(up.base, { port, assets }), port };
}
const pass = await passThrough(false);
const passAssets = await passThrough(true);
const passPort = pass.port;

const { jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
const withSession = { Cookie: jar.header(), 'X-CSRF': '1', Host: `localhost:${bffPort}` };
const withSessionA = { ...withSession, Host: `localhost:${bffAssetsPort}` };
const withSessionK = { ...withSession, Host: `localhost:${bffKvPort}` };
const withSessionC = { ...withSession, Host: `localhost:${bffCoPort}` };
const withSessionH = { ...withSession, Host: `localhost:${bffHstsPort}` };
const withSessionR = { ...withSession, Host: `localhost:${bffReqPort}` };
const withSessionM = { ...withSession, Host: `localhost:${bffMetricsPort}` };
const withSessionI = { ...withSession, Host: `localhost:${bffInfoPort}` };
// (bt)'s session: its own login (the grant must cover the resource), then one call that
// grants the route token and stores it in the cookie.
const toRouteTokenWorker = (p) => {
  const u = new URL(p, origin);
  return `http://127.0.0.1:${bffRouteTokenPort}${u.pathname}${u.search}`;
};
const { jar: routeTokenJar } = await login({ fetch: (p, init = {}) => fetch(toRouteTokenWorker(p), { redirect: 'manual', ...init }) }, { base: origin });
{
  const first = await fetch(toRouteTokenWorker('/api/status/200'), { headers: { cookie: routeTokenJar.header(), 'x-csrf': '1' } });
  if (first.status !== 200) throw new Error(`(bt): the route token was not granted (${first.status})`);
  routeTokenJar.update(first);
}
const withSessionT = { Cookie: routeTokenJar.header(), 'X-CSRF': '1', Host: `localhost:${bffRouteTokenPort}` };
const toDpopWorker = (p) => {
  const u = new URL(p, origin);
  return `http://127.0.0.1:${bffDpopPort}${u.pathname}${u.search}`;
};
// The peer's own login: its middleware redirects to the provider, and its callback sets
// its session cookie.
const toPeer = (p) => {
  const u = new URL(p, origin);
  return `http://127.0.0.1:${honoPort}${u.pathname}${u.search}`;
};
const honoJar = new CookieJar();
{
  const start = await fetch(toPeer('/auth/session'), { redirect: 'manual' });
  honoJar.update(start);
  const callbackUrl = await authorizeAtProvider(start.headers.get('location'), { base: origin });
  const done = await fetch(toPeer(callbackUrl), { redirect: 'manual', headers: { cookie: honoJar.header() } });
  honoJar.update(done);
  if (!honoJar.header().includes('oidc-auth=')) throw new Error(`peer login: no session cookie (status ${done.status})`);
}
const withPeerSession = { Cookie: honoJar.header(), Host: `localhost:${honoPort}` };

// The second peer (issue 27): the contract's hot paths in plain JavaScript with WebCrypto
// (tests/bench/peers/webcrypto-contract.js), reading edge-bff's own cookies, so both are
// measured on the same cookies, remembered or unseen.
const jsPeerPath = path.resolve('bench/peers/webcrypto-contract.js');
const jsPeerBindings = { COOKIE_KEYS: bindings.COOKIE_KEYS, UPSTREAM: up.base };
const jsPeerPort = await freePort();
const jsPeer = await startPeer(jsPeerPath, jsPeerBindings, { port: jsPeerPort });
const withJsPeerSession = { ...withSession, Host: `localhost:${jsPeerPort}` };
{
  const r = await fetch(`http://127.0.0.1:${jsPeerPort}/auth/session`, { headers: withJsPeerSession });
  if (!(await r.json()).authenticated) throw new Error('the WebCrypto peer does not open edge-bff\'s cookie');
}

// The floor: a JavaScript Worker answering a constant (tests/bench/peers/constant.js).
const floorPort = await freePort();
const floor = await startPeer(path.resolve('bench/peers/constant.js'), {}, { port: floorPort });

// Unseen cookies: a login of its own, then chained refreshes, each of which seals the
// session anew (a distinct cookie). More than the isolate remembers (CAPACITY, 256).
const UNSEEN = 600;
const { jar: unseenJar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
const unseen = await unseenCookies(unseenJar, bffPort, UNSEEN);
/** A wrk script sending GET with the unseen cookies in turn. */
const unseenScript = (port) => rotatingCookieScript(unseen, `localhost:${port}`);

const { jar: dpopJar } = await login({ fetch: (p, init = {}) => fetch(toDpopWorker(p), { redirect: 'manual', ...init }) }, { base: origin });
const withSessionP = { Cookie: dpopJar.header(), 'X-CSRF': '1', Host: `localhost:${bffDpopPort}` };
// The pass-through gets the very same request (the browser sends its cookies either way):
// the same bytes in, so the difference is what each Worker does with them.
const sameRequest = (port) => ({ ...withSession, Host: `127.0.0.1:${port}` });
const luaDir = mkdtempSync(path.join(tmpdir(), 'edge-bff-bench-'));
const post64k = path.join(luaDir, 'post64k.lua');
writeFileSync(post64k, 'wrk.method = "POST"\nwrk.body = string.rep("x", 65536)\nwrk.headers["Content-Type"] = "application/octet-stream"\n');

const scenarios = [
  ['a', 'GET /auth/session (with a session)', `http://127.0.0.1:${bffPort}/auth/session`, { headers: withSession }],
  ['b', 'proxied GET (with a session)', `http://127.0.0.1:${bffPort}/api/status/200`, { headers: withSession }],
  ['c', 'proxied POST 64 KB (with a session)', `http://127.0.0.1:${bffPort}/api/upload`, { headers: withSession, script: post64k }],
  ['d', 'pass-through Worker GET', `http://127.0.0.1:${passPort}/status/200`, { headers: sameRequest(passPort) }],
  ['d2', 'pass-through Worker POST 64 KB', `http://127.0.0.1:${passPort}/upload`, { headers: sameRequest(passPort), script: post64k }],
  ['d0', '(d) without the cookie and X-CSRF', `http://127.0.0.1:${passPort}/status/200`, {}],
  ['bk', '(b) with SESSIONS bound (full path)', `http://127.0.0.1:${bffKvPort}/api/status/200`, { headers: withSessionK }],
  ['bc', '(b) with COORDINATOR bound', `http://127.0.0.1:${bffCoPort}/api/status/200`, { headers: withSessionC }],
  ['bh', '(b) on an https origin (HSTS added)', `http://127.0.0.1:${bffHstsPort}/api/status/200`, { headers: withSessionH }],
  ['br', '(b) on a route with require', `http://127.0.0.1:${bffReqPort}/api/status/200`, { headers: withSessionR }],
  ['bt', '(b) on a route with its own token', `http://127.0.0.1:${bffRouteTokenPort}/api/status/200`, { headers: withSessionT }],
  ['au', '(a) with unseen cookies', `http://127.0.0.1:${bffPort}/auth/session`, { script: unseenScript(bffPort) }],
  ['bu', '(b) with unseen cookies', `http://127.0.0.1:${bffPort}/api/status/200`, { script: unseenScript(bffPort) }],
  ['ha', 'peer Hono: GET /auth/session', `http://127.0.0.1:${honoPort}/auth/session`, { headers: withPeerSession }],
  ['hb', 'peer Hono: proxied GET', `http://127.0.0.1:${honoPort}/api/status/200`, { headers: withPeerSession }],
  ['ja', 'peer WebCrypto: GET /auth/session', `http://127.0.0.1:${jsPeerPort}/auth/session`, { headers: withJsPeerSession }],
  ['jb', 'peer WebCrypto: proxied GET', `http://127.0.0.1:${jsPeerPort}/api/status/200`, { headers: withJsPeerSession }],
  ['jau', 'peer WebCrypto: (ja) with unseen cookies', `http://127.0.0.1:${jsPeerPort}/auth/session`, { script: unseenScript(jsPeerPort) }],
  ['jbu', 'peer WebCrypto: (jb) with unseen cookies', `http://127.0.0.1:${jsPeerPort}/api/status/200`, { script: unseenScript(jsPeerPort) }],
  ['z', 'floor: JS Worker answering a constant', `http://127.0.0.1:${floorPort}/auth/session`, { headers: withSession }],
  ['bm', '(b) with METRICS bound', `http://127.0.0.1:${bffMetricsPort}/api/status/200`, { headers: withSessionM }],
  ['bi', '(b) at LOG_LEVEL=info (access lines)', `http://127.0.0.1:${bffInfoPort}/api/status/200`, { headers: withSessionI }],
  ['bp', '(b) with a DPoP-bound token (ES256 proof)', `http://127.0.0.1:${bffDpopPort}/api/status/200`, { headers: withSessionP }],
  ['a+', '(a) with assets in the Worker', `http://127.0.0.1:${bffAssetsPort}/auth/session`, { headers: withSessionA }],
  ['b+', '(b) with assets in the Worker', `http://127.0.0.1:${bffAssetsPort}/api/status/200`, { headers: withSessionA }],
  ['d+', '(d) with assets in the Worker', `http://127.0.0.1:${passAssets.port}/status/200`, { headers: sameRequest(passAssets.port) }],
];

// BENCH_ONLY=a,au,…: measure these scenarios only (quick comparisons while working; the
// ratios of rows not measured print as NaN).
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
if (ONLY) scenarios.splice(0, scenarios.length, ...scenarios.filter(([id]) => ONLY.has(id)));

// Check every scenario answers 200 before measuring.
// (The unseen-cookie scenarios are checked with their first cookie.)
for (const [, name, url, opts] of scenarios) {
  const post = opts.script === post64k;
  const headers = opts.headers ?? { Cookie: unseen[0], 'X-CSRF': '1' };
  const res = await fetch(url, { method: post ? 'POST' : 'GET', headers, body: post ? 'x'.repeat(65536) : undefined });
  if (res.status !== 200) throw new Error(`${name}: status ${res.status} ${await res.text()}`);
}

// (bp) really sends DPoP: the upstream sees the DPoP scheme and a proof.
{
  const echo = await (await fetch(`http://127.0.0.1:${bffDpopPort}/api/echo`, { headers: withSessionP })).json();
  if (!echo.headers.authorization?.startsWith('DPoP ') || !echo.headers.dpop) throw new Error('(bp): no DPoP proof reached the upstream');
}

// The workerd process behind each scenario, for its CPU time per request.
const pids = Object.fromEntries(scenarios.map(([id, , url]) => [id, workerdPid(Number(new URL(url).port))]));
if (PIN) for (const pid of new Set(Object.values(pids))) pinToCore(pid, 1);
if (!FRESH_ONLY) {
// Warm-up: V8 compiles hot Wasm and JS functions in tiers; measure the steady state.
for (const [, , url, opts] of scenarios) await wrk(url, { seconds: 3, connections: CONNECTIONS, ...opts });
const results = Object.fromEntries(scenarios.map(([id]) => [id, []]));
async function measure(list, results, connections, rounds) {
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round so drift does not favour one side.
    const order = round % 2 === 0 ? list : [...list].reverse();
    for (const [id, , url, opts] of order) {
      const r = await wrk(url, { seconds: SECONDS, connections, pid: pids[id], ...opts });
      if (r.non2xx || r.errors) throw new Error(`${id}: ${r.non2xx} non-2xx, ${r.errors}`);
      results[id].push(r);
    }
  }
}
await measure(scenarios, results, CONNECTIONS, ROUNDS);

const row = (label, rs) => {
  const pick = (f) => median(rs.map(f));
  return `${label.padEnd(40)} ${pick((r) => r.rps).toFixed(0).padStart(8)} ${pick((r) => r.p50).toFixed(2).padStart(8)} ${pick((r) => r.p99).toFixed(2).padStart(8)} ${pick((r) => r.cpuUs).toFixed(0).padStart(9)}`;
};
const header = `${'scenario'.padEnd(40)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'CPU µs/req'.padStart(9)}`;
console.log(`\nHTTP (wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} alternating rounds, medians; route-only unless marked;`);
console.log(`CPU: user + system time of the scenario's workerd process per request${PIN ? '; Workers pinned to core 1, load and upstream to core 0' : ''})`);
console.log(header);
for (const [id, name] of scenarios) console.log(row(`(${id}) ${name}`, results[id]));

// Ratios of measurements taken next to each other (the same round), then the median:
// this machine's speed drifts between minutes more than the differences measured.
const paired = (x, y, f) => (results[x] && results[y] ? median(results[x].map((r, i) => f(r) / f(results[y][i]))) : NaN);
const ratio = (x, y) =>
  `throughput ${paired(x, y, (r) => r.rps).toFixed(2)}x, p50 latency ${paired(x, y, (r) => r.p50).toFixed(2)}x, CPU ${paired(x, y, (r) => r.cpuUs).toFixed(2)}x`;
console.log(`\nratios against the pass-through Worker (medians of per-round ratios)`);
console.log(`(a)/(d)  ${ratio('a', 'd')}   target throughput >= 0.95x: ${verdict(paired('a', 'd', (r) => r.rps) >= 0.95)}`);
console.log(`(b)/(d)  ${ratio('b', 'd')}   target p50 latency <= 1.10x: ${verdict(paired('b', 'd', (r) => r.p50) <= 1.1)}`);
console.log(`(c)/(d)  ${ratio('c', 'd')}`);
console.log(`(c)/(d2) ${ratio('c', 'd2')}  (same 64 KB POST through the pass-through)`);
console.log(`(b)/(d0) ${ratio('b', 'd0')}  (pass-through sent a bare request, no cookie)`);
console.log(`(bk)/(d) ${ratio('bk', 'd')}  (deny-list read from Miniflare's local KV on every call)`);
console.log(`(bc)/(b) ${ratio('bc', 'b')}  (COORDINATOR bound, no refresh due: must be 1.00x within noise)`);
console.log(`(bh)/(d) ${ratio('bh', 'd')}  (https origin: HSTS on every answer, the upstream's response copied to add it)`);
console.log(`(br)/(b) ${ratio('br', 'b')}  (a route with require: must be 1.00x within noise)`);
console.log(`(bt)/(b) ${ratio('bt', 'b')}  (a route token held in the session, direct path: must be 1.00x within noise)`);
console.log(`(bm)/(b) ${ratio('bm', 'b')}  (METRICS bound: one Analytics Engine data point per call)`);
console.log(`(bi)/(b) ${ratio('bi', 'b')}  (LOG_LEVEL=info: one access line per call)`);
console.log(`(bp)/(d) ${ratio('bp', 'd')}   target CPU <= 1.30x: ${verdict(paired('bp', 'd', (r) => r.cpuUs) <= 1.3)}  (a DPoP proof per call)`);
console.log(`(bp)/(b) ${ratio('bp', 'b')}  (what the proof costs over a Bearer call)`);
// Goals of issue 27, against the faster of the two JavaScript peers in each row: Hono
// with @hono/oidc-auth (its own signed cookie, the same work seen or not) and the
// WebCrypto peer (edge-bff's cookies, remembered (ja, jb) or unseen (jau, jbu)).
console.log(`\nratios against the JavaScript peers, goals from issue 27 (against the faster peer)`);
const againstPeers = (x, peers, target, note = '') => {
  const worst = Math.min(...peers.map((p) => paired(x, p, (r) => r.rps)));
  for (const p of peers) console.log(`(${x})/(${p})`.padEnd(12) + `${ratio(x, p)}${note}`);
  console.log(`  (${x}) against the faster peer: throughput ${worst.toFixed(2)}x   target >= ${target}x: ${verdict(worst >= target)}`);
};
againstPeers('a', ['ha', 'ja'], 1.2);
againstPeers('au', ['ha', 'jau'], 1.1, '  (unseen cookies)');
againstPeers('b', ['hb', 'jb'], 1.0);
againstPeers('bu', ['hb', 'jbu'], 1.0, '  (unseen cookies)');
// The floor bounds what any goal against a peer can reach: no Worker answers faster than
// one that answers a constant, so against a peer at x of the floor, 1/x is the ceiling.
console.log(`the floor, a Worker that answers a constant (no work at all):`);
for (const id of ['a', 'ha', 'ja', 'au', 'jau']) console.log(`  (${id})/(z)`.padEnd(12) + ratio(id, 'z'));
const ceiling = 1 / Math.max(paired('ha', 'z', (r) => r.rps), paired('ja', 'z', (r) => r.rps));
console.log(`  the most any Worker can reach against the faster peer's GET /auth/session here: ${ceiling.toFixed(2)}x (goals: 1.2x remembered, 1.1x unseen)`);
console.log(`the Rust pass-through (idiomatic worker crate, no session) against the JS peer's proxied GET: (d)/(jb) ${ratio('d', 'jb')}`);
console.log(`(b)/(d)    CPU ${paired('b', 'd', (r) => r.cpuUs).toFixed(2)}x   target CPU <= 1.05x of the pass-through: ${verdict(paired('b', 'd', (r) => r.cpuUs) <= 1.05)}`);
console.log(`(bu)/(d)   ${ratio('bu', 'd')}   target CPU <= 1.05x: ${verdict(paired('bu', 'd', (r) => r.cpuUs) <= 1.05)}  (unseen cookies against the pass-through)`);
console.log(`with static assets in both Workers (Miniflare's asset router in front of each):`);
console.log(`(a+)/(d+) ${ratio('a+', 'd+')}`);
console.log(`(b+)/(d+) ${ratio('b+', 'd+')}`);
console.log(`asset-router hop: (d+)/(d) ${ratio('d+', 'd')}`);

// Latency without load: one connection, so no request waits for another.
const unloaded = Object.fromEntries(['b', 'd'].map((id) => [id, []]));
if (!ONLY || (ONLY.has('b') && ONLY.has('d'))) {
  await measure(scenarios.filter(([id]) => id === 'b' || id === 'd'), unloaded, 1, 3);
  console.log(`\nunloaded (wrk -c1, 3 rounds): (b) proxied GET p50 ${median(unloaded.b.map((r) => r.p50)).toFixed(2)} ms, (d) pass-through p50 ${median(unloaded.d.map((r) => r.p50)).toFixed(2)} ms, ratio ${median(unloaded.b.map((r, i) => r.p50 / unloaded.d[i].p50)).toFixed(2)}x`);
}

// A refresh's latency: POST /auth/refresh one at a time (real oidc-provider, rotating
// refresh tokens), through the coordinator against the isolate's own token call.
// Both Workers share the configuration, so the login's cookie works on either; each run
// continues from the tokens the previous one left.
const refreshJar = jar.clone();
async function refreshLatency(port, count) {
  const via = { fetch: (p, init = {}) => fetch(new URL(p, `http://127.0.0.1:${port}`), { redirect: 'manual', ...init }) };
  const own = refreshJar;
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const res = await via.fetch('/auth/refresh', { method: 'POST', headers: { cookie: own.header(), 'x-csrf': '1' } });
    await res.text();
    if (res.status !== 200) throw new Error(`refresh: status ${res.status}`);
    times.push(performance.now() - started);
    own.update(res);
  }
  const sorted = [...times].sort((x, y) => x - y);
  return { p50: median(times), p90: sorted[Math.floor(sorted.length * 0.9)] };
}
const REFRESHES = 40;
const local = await refreshLatency(bffPort, REFRESHES);
const coordinated = await refreshLatency(bffCoPort, REFRESHES);
console.log(`
refresh latency (POST /auth/refresh, ${REFRESHES} in sequence, real oidc-provider): isolate-local p50 ${local.p50.toFixed(2)} ms, p90 ${local.p90.toFixed(2)} ms; through the coordinator p50 ${coordinated.p50.toFixed(2)} ms, p90 ${coordinated.p90.toFixed(2)} ms (+${(coordinated.p50 - local.p50).toFixed(2)} ms at p50)`);
}

// A fresh isolate, for every Worker of the bench (issue 16): a new runtime loading the
// Worker, then its first request, FRESH_STARTS times each; medians. "Start to first 200"
// runs from creating the runtime (Miniflare starts workerd, which compiles the modules)
// to the first answer's body; "first answer" is that request alone (the isolate's set-up
// on its first request, e.g. edge-bff's configuration and keys). Each Worker answers its
// usual request: edge-bff and the peer `GET /auth/session` with a session, the
// pass-through a proxied GET. The upload is what `wrangler deploy` sends: the bundled
// modules, raw and gzip -9 (the budget of scripts/wasm-size.sh counts the Wasm alone).
// Issue 27: medians of at least 15 starts (3 starts moved these figures by ±25 %).
const FRESH_STARTS = Number(process.env.BENCH_FRESH_STARTS ?? 15);
const freshWorkers = [
  ['edge-bff', (port) => startWorker(bindings, { port, kv: false, assets: false }).then((w) => () => w.close()), '/auth/session', { cookie: jar.header() },
    [path.resolve('../build/entry.mjs'), path.resolve('../build/index_bg.wasm')]],
  ['pass-through (Rust)', (port) => startPassThrough(up.base, { port }).then((mf) => () => mf.dispose()), '/status/200', {},
    [path.resolve('../target/bench-passthrough/entry.mjs'), path.resolve('../target/bench-passthrough/index_bg.wasm')]],
  ['peer Hono + @hono/oidc-auth', (port) => startPeer(path.join(PEER_DIR, 'hono-oidc.mjs'), honoBindings, { port }).then((mf) => () => mf.dispose()), '/auth/session', { cookie: honoJar.header() },
    [path.join(PEER_DIR, 'hono-oidc.mjs')]],
  ['peer WebCrypto (contract)', (port) => startPeer(jsPeerPath, jsPeerBindings, { port }).then((mf) => () => mf.dispose()), '/auth/session', { cookie: jar.header() },
    [jsPeerPath]],
];
const freshResults = {};
for (let i = 0; i < FRESH_STARTS; i++) {
  for (const [name, start, urlPath, headers] of freshWorkers) {
    const port = await freePort();
    const t0 = performance.now();
    const close = await start(port);
    const ready = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { headers });
    await res.arrayBuffer();
    const done = performance.now();
    if (res.status !== 200) throw new Error(`fresh ${name}: status ${res.status}`);
    (freshResults[name] ??= []).push({ total: done - t0, first: done - ready });
    await close();
  }
}
const gzipSize = (files) => gzipSync(Buffer.concat(files.map((f) => readFileSync(f))), { level: 9 }).length;
const rawSize = (files) => files.reduce((n, f) => n + statSync(f).size, 0);
console.log(`\nfresh isolate (${FRESH_STARTS} starts each, medians) and upload size`);
console.log(`${'Worker'.padEnd(30)} ${'start to first 200'.padStart(19)} ${'first answer'.padStart(13)} ${'upload raw'.padStart(11)} ${'upload gzip'.padStart(12)}`);
const passFresh = median(freshResults['pass-through (Rust)'].map((r) => r.total));
for (const [name, , , , files] of freshWorkers) {
  const rs = freshResults[name];
  const total = median(rs.map((r) => r.total));
  console.log(`${name.padEnd(30)} ${`${total.toFixed(0)} ms`.padStart(19)} ${`${median(rs.map((r) => r.first)).toFixed(1)} ms`.padStart(13)} ${`${(rawSize(files) / 1024).toFixed(0)} KiB`.padStart(11)} ${`${(gzipSize(files) / 1024).toFixed(0)} KiB`.padStart(12)}`);
}
const freshRatio = median(freshResults['edge-bff'].map((r, i) => r.total / freshResults['pass-through (Rust)'][i].total));
console.log(`edge-bff / pass-through, start to first 200 (median of per-start ratios): ${freshRatio.toFixed(2)}x   target <= 1.10x: ${verdict(freshRatio <= 1.1)} (medians ${median(freshResults['edge-bff'].map((r) => r.total)).toFixed(0)} / ${passFresh.toFixed(0)} ms)`);
// Issue 27: the first request after load no slower than the Hono Worker's, and the upload
// at most 250 KB gzip.
const firstOf = (name) => median(freshResults[name].map((r) => r.first));
const [edgeFirst, honoFirst] = [firstOf('edge-bff'), firstOf('peer Hono + @hono/oidc-auth')];
console.log(`edge-bff / Hono, first answer after load: ${(edgeFirst / honoFirst).toFixed(2)}x   target <= 1.00x: ${verdict(edgeFirst <= honoFirst)} (medians ${edgeFirst.toFixed(1)} / ${honoFirst.toFixed(1)} ms)`);
const edgeUpload = gzipSize(freshWorkers[0][4]);
console.log(`edge-bff upload: ${(edgeUpload / 1000).toFixed(1)} KB gzip   target <= 250 KB: ${verdict(edgeUpload <= 250_000)}`);
await bff.close();
await bffAssets.close();
await bffKv.close();
await bffCo.close();
await bffHsts.close();
await bffDpop.close();
await bffReq.close();
await bffRouteToken.close();
await bffMetrics.close();
await bffInfo.close();
await hono.dispose();
await jsPeer.dispose();
await floor.dispose();
await pass.mf.dispose();
await passAssets.mf.dispose();
await up.close();
await idp.close();
