// Compares builds of edge-bff (route-only) against the pass-through Worker, for deciding
// an optimisation: build each variant with `BUILD_OUT=target/<dir> scripts/build.sh`, then
//   cd tests && PIN=1 VARIANTS='[{"name":"now"},{"name":"try","buildDir":"target/<dir>"}]' \
//     node bench/compare.mjs
// Prints per scenario: req/s, p50 ms, both relative to the pass-through, workerd CPU µs per
// request, and the medians of per-round ratios ("paired"). Environment: PATHS (comma-
// separated, default /api/status/200), ROUNDS (3), SECS (4), CONN (16), PIN (1: Workers on
// core 1, the rest on core 0), PASS_SAME (1: the pass-through gets the same headers),
// KV (1: a SESSIONS binding, so cookie sessions take the full path with deny-list reads),
// UNSEEN (a number: the variants get that many distinct session cookies in turn, made by
// chained refreshes, so no isolate remembers them).
// Each variant may name its `entry` module (default entry.mjs).
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, startPassThrough, newCookieKeys, freePort } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { wrk, workerdPid, pinWrkTo, pinToCore } from './wrk.mjs';
import { unseenCookies, rotatingCookieScript } from './unseen.mjs';
const PIN = process.env.PIN === '1';
if (PIN) {
  pinToCore(process.pid, 0);
  pinWrkTo(0);
}
const variants = JSON.parse(process.env.VARIANTS); // [{name, buildDir, entry}]
const paths = (process.env.PATHS ?? '/api/status/200').split(',');
const up = await startUpstream({ record: false });
const ports = await Promise.all(variants.map(() => freePort()));
const o1 = `http://localhost:${ports[0]}`;
const idp = await startProvider({ redirectOrigin: o1 });
const b = { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: o1,
  COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]) };
const ws = [];
for (let i = 0; i < variants.length; i++) ws.push(await startWorker(b, { port: ports[i], kv: process.env.KV === '1', assets: false, buildDir: variants[i].buildDir ?? 'build', entry: variants[i].entry ?? 'entry.mjs' }));
const { jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, o1), { redirect: 'manual', ...init }) }, { base: o1 });
const passPort = await freePort();
const pass = await startPassThrough(up.base, { port: passPort });
const h = { Cookie: jar.header(), 'X-CSRF': '1', Host: `localhost:${ports[0]}` };
const unseenScript = process.env.UNSEEN
  ? rotatingCookieScript(await unseenCookies(jar, ports[0], Number(process.env.UNSEEN)), `localhost:${ports[0]}`)
  : undefined;
const sc = [['pass', `http://127.0.0.1:${passPort}/status/200`, process.env.PASS_SAME === '1' ? { ...h, Host: `127.0.0.1:${passPort}` } : {}, workerdPid(passPort)], ['pass-nohdr', `http://127.0.0.1:${passPort}/status/200`, {}, workerdPid(passPort)]];
for (const p of paths) variants.forEach((v, i) => sc.push([`${v.name} ${p}`, `http://127.0.0.1:${ports[i]}${p}`, h, workerdPid(ports[i])]));
if (PIN) for (const [, , , pid] of sc) pinToCore(pid, 1);
for (const [id, url, headers] of sc) { const r = await fetch(url, { headers }); if (r.status !== 200) throw new Error(id + r.status + await r.text()); }
for (const [, url, headers] of sc) await wrk(url, { seconds: 4, connections: 16, headers }); // warm-up
const res = {};
const rounds = Number(process.env.ROUNDS ?? 3);
for (let i = 0; i < rounds; i++) for (const [id, url, headers, pid] of (i % 2 ? [...sc].reverse() : sc)) {
  const script = unseenScript && !id.startsWith('pass') ? unseenScript : undefined;
  const r = await wrk(url, { seconds: Number(process.env.SECS ?? 4), connections: Number(process.env.CONN ?? 16), headers, pid, script }); (res[id] ??= []).push(r);
}
const cpu = (id) => med(res[id].map((r) => r.cpuUs));
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = med(res.pass.map((r) => r.p50)), baseR = med(res.pass.map((r) => r.rps));
const pairRatio = (id, f) => med(res[id].map((r, i) => f(r) / f(res.pass[i])));
for (const [id] of sc) { console.log(id.padEnd(40), 'paired: rps', pairRatio(id, (r) => r.rps).toFixed(3), 'p50', pairRatio(id, (r) => r.p50).toFixed(3), 'cpu', pairRatio(id, (r) => r.cpuUs).toFixed(3)); }
for (const [id] of sc) { const p50 = med(res[id].map((r) => r.p50)), rps = med(res[id].map((r) => r.rps));
  console.log(id.padEnd(40), rps.toFixed(0).padStart(6), p50.toFixed(2).padStart(6), (rps / baseR).toFixed(2), (p50 / base).toFixed(2), 'cpu', cpu(id).toFixed(0), (cpu(id) / cpu('pass')).toFixed(2), res[id].map(r=>r.rps.toFixed(0)).join(' ')); }
for (const w of ws) await w.close(); await pass.dispose(); await up.close(); await idp.close();
