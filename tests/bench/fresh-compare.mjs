// Fresh isolates of two (or more) builds, alternating, for a paired figure of their first
// request: `GET /auth/session` without any cookie (a first visit), the answer checked.
// Usage: cd tests && N=15 node bench/fresh-compare.mjs /tmp/before ../build
// Prints, per build, the medians of "start to first 200" (from creating the runtime) and
// "first answer" (that request alone), then the median of the per-start ratios of the
// first answer, second build against the first.
import { Miniflare } from 'miniflare';
import { newCookieKeys } from '../support/worker.mjs';
const dirs = process.argv.slice(2);
const bindings = { OIDC_ISSUER: 'http://127.0.0.1:9', CLIENT_ID: 'x', CLIENT_SECRET: 's', PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys() };
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const res = {};
for (let i = 0; i < Number(process.env.N ?? 15); i++) {
  for (const dir of dirs) {
    const t0 = performance.now();
    const mf = new Miniflare({ modules: true, scriptPath: `${dir}/entry.mjs`, modulesRoot: dir,
      modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
      compatibilityDate: '2026-04-01', bindings, handleRuntimeStdio: (o, e) => { o.resume(); e.resume(); } });
    await mf.ready;
    const ready = performance.now();
    const r = await mf.dispatchFetch('http://localhost:8787/auth/session'); const body = await r.text();
    const done = performance.now();
    if (body !== '{"authenticated":false}') throw new Error(body);
    (res[dir] ??= []).push([done - t0, done - ready]);
    await mf.dispose();
  }
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(20), 'start to first 200', median(v.map((x) => x[0])).toFixed(1), 'ms; first answer', median(v.map((x) => x[1])).toFixed(1), 'ms');
const ratios = res[dirs[1]].map((x, i) => x[1] / res[dirs[0]][i][1]);
console.log('first answer, per-start ratio (second / first), median', median(ratios).toFixed(2));
