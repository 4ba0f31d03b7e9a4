// CPU profile of a built Worker under wrk load, through workerd's V8 inspector.
// Usage (a build with the names section kept gives readable Wasm frames, e.g.
// `BUILD_KEEP_NAMES=1 BUILD_OUT=/tmp/prof scripts/build.sh`):
//   cd tests && node --experimental-websocket bench/profile.mjs /tmp/prof [/api/status/200]
// Prints the share of samples per function (self time).
import { Miniflare } from 'miniflare';
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { newCookieKeys, freePort } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { wrk } from './wrk.mjs';
const dir = process.argv[2];
const entry = process.argv[4] ?? 'entry.mjs';
const passthrough = process.env.PROFILE_PASSTHROUGH === '1';
const path = process.argv[3] ?? '/api/status/200';
const up = await startUpstream({ record: false });
const port = await freePort();
const origin = `http://localhost:${port}`;
const idp = await startProvider({ redirectOrigin: origin });
const inspectorPort = await freePort();
const mf = new Miniflare({
  modules: true, scriptPath: `${dir}/${entry}`, modulesRoot: dir,
  modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-04-01', host: '127.0.0.1', port, inspectorPort,
  bindings: { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: origin, COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]), UPSTREAM: up.base },
  handleRuntimeStdio: (o, e) => { o.resume(); e.resume(); },
});
await mf.ready;
const { jar } = passthrough ? { jar: { header: () => '' } } : await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin });
const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r));
let id = 0;
const pending = new Map();
ws.addEventListener('message', (m) => { const d = JSON.parse(m.data); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 100 });
await send('Profiler.start');
const r = await wrk(`http://127.0.0.1:${port}${path}`, { seconds: 5, headers: passthrough ? {} : { Cookie: jar.header(), 'X-CSRF': '1', Host: `localhost:${port}` } });
const { result } = await send('Profiler.stop');
console.log('rps', r.rps.toFixed(0));
const prof = result.profile;
if (process.env.PROFILE_OUT) (await import('node:fs')).writeFileSync(process.env.PROFILE_OUT, JSON.stringify({ profile: prof, requests: r.rps * 5 }));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const counts = new Map();
for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`;
const self = new Map();
const inclusive = new Map();
let total = 0;
let idle = 0;
for (const [nid, c] of counts) {
  const n = byId.get(nid);
  self.set(label(n), (self.get(label(n)) ?? 0) + c);
  total += c;
  if (n.callFrame.functionName === '(idle)') idle += c;
  // Each function counted once per sample, however often it recurs on the stack.
  const seen = new Set();
  for (let id = nid; id !== undefined; id = parent.get(id)) {
    const l = label(byId.get(id));
    if (!seen.has(l)) { seen.add(l); inclusive.set(l, (inclusive.get(l) ?? 0) + c); }
  }
}
const requests = r.rps * 5;
const busyUs = ((total - idle) / total) * 5e6;
console.log(`samples ${total}, idle ${((100 * idle) / total).toFixed(1)} %, busy JS thread per request ${(busyUs / requests).toFixed(0)} µs`);
const show = (title, map, n) => {
  console.log(title);
  for (const [name, c] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n))
    console.log(((100 * c) / total).toFixed(1).padStart(5) + '%', ((c / total) * 5e6 / requests).toFixed(1).padStart(6) + ' µs/req', name.slice(0, 100));
};
show('self time', self, Number(process.env.TOP ?? 30));
show('inclusive time', inclusive, Number(process.env.TOP ?? 30));
ws.close();
await mf.dispose(); await up.close(); await idp.close();
