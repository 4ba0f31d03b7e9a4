// CPU profile of a fresh isolate's FIRST request, through workerd's V8 inspector: where
// the "first answer after load" of scripts/bench.sh goes. Self time per function; a frame
// whose own code is small but whose self time is large is paying for the lazy compilation
// of what it calls first (V8 compiles a Wasm function when it is first called).
// Usage (a names-kept build gives readable Wasm frames):
//   BUILD_KEEP_NAMES=1 BUILD_OUT=/tmp/prof scripts/build.sh
//   cd tests && node --experimental-websocket bench/first-profile.mjs /tmp/prof
// WITH_COOKIE=1: the first request carries a session made by another isolate (a login
// against the real oidc-provider first), as scripts/bench.sh's fresh-isolate row does.
import { Miniflare } from 'miniflare';
import { newCookieKeys, freePort } from '../support/worker.mjs';
import { startProvider } from '../support/idp.mjs';
import { login } from '../support/login.mjs';
const dir = process.argv[2];
const port = await freePort();
const inspectorPort = await freePort();
const origin = `http://localhost:${port}`;
const idp = await startProvider({ redirectOrigin: origin });
const keys = newCookieKeys();
const opts = (extra) => ({
  modules: true, scriptPath: `${dir}/entry.mjs`, modulesRoot: dir,
  modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-04-01', host: '127.0.0.1', port,
  bindings: { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: origin, COOKIE_KEYS: keys },
  handleRuntimeStdio: (o, e) => { o.resume(); e.resume(); }, ...extra });
const cookie = process.env.WITH_COOKIE === '1' ? await (async () => {
  const a = new Miniflare(opts({})); await a.ready;
  const { jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
  await a.dispose(); return jar.header(); })() : '';
const mf = new Miniflare(opts({ inspectorPort }));
await mf.ready;
const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r));
let id = 0; const pending = new Map();
ws.addEventListener('message', (m) => { const d = JSON.parse(m.data); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 50 });
await send('Profiler.start');
const t0 = performance.now();
const r = await fetch(`http://127.0.0.1:${port}/auth/session`, { headers: cookie ? { cookie } : {} }); console.log('status', r.status); await r.arrayBuffer();
console.log('first', (performance.now() - t0).toFixed(1), 'ms');
const { result } = await send('Profiler.stop');
const prof = result.profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const counts = new Map(); for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const dt = (prof.endTime - prof.startTime) / prof.samples.length / 1000;
const self = new Map(); let total = 0;
for (const [nid, c] of counts) { const n = byId.get(nid); const l = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`; self.set(l, (self.get(l) ?? 0) + c); total += c; }
console.log('samples', total, 'ms/sample', dt.toFixed(3));
for (const [l, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((c * dt).toFixed(2).padStart(7), 'ms', l.slice(0, 120));
ws.close(); await mf.dispose(); await idp.close();
