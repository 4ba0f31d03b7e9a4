// A session cookie the isolate has not opened before is opened by the runtime's WebCrypto
// AES-GCM (glue.js `openThen`, issue 16), handed to Wasm to be remembered, and the request
// then takes the direct path. The built Worker at LOG_LEVEL=debug, the real oidc-provider
// and a real upstream: the debug line says when WebCrypto opened a cookie.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort } from '../support/worker.mjs';
import { login } from '../support/login.mjs';

const OPENED = 'session cookie opened by WebCrypto';
const openedCount = (logs) => logs.filter((l) => l.includes(OPENED)).length;
const accessLines = (logs) =>
  logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
const settle = () => new Promise((r) => setTimeout(r, 150));

/** `header` (a Cookie header) with one base64url character of the session cookie changed. */
function tampered(header) {
  return header.replace(/(__Host-bff-session=k\w*\.)([A-Za-z0-9_-]{40})([A-Za-z0-9_-])/, (_, head, body, c) =>
    `${head}${body}${c === 'A' ? 'B' : 'A'}`);
}

describe('opening unseen session cookies by WebCrypto', () => {
  let idp;
  let up;
  let w;
  let jar;
  let origin;

  before(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    idp = await startProvider({ redirectOrigin: origin });
    up = await startUpstream();
    w = await startWorker(
      {
        OIDC_ISSUER: idp.issuer,
        CLIENT_ID: 'edge-bff',
        CLIENT_SECRET: 'edge-bff-local-secret',
        PUBLIC_ORIGIN: origin,
        COOKIE_KEYS: newCookieKeys(),
        LOG_LEVEL: 'debug',
        API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]),
      },
      // No KV binding: cookie sessions can be read without I/O.
      { port, kv: false },
    );
    ({ jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin }));
  });

  after(async () => {
    await w?.close();
    await up?.close();
    await idp?.close();
  });

  test('the first request with a cookie opens it by WebCrypto; later ones use the remembered session', async () => {
    await settle();
    const before = openedCount(w.logs);
    const first = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal(first.status, 200);
    const body = await first.json();
    assert.equal(body.authenticated, true);
    assert.ok(body.user.sub);
    await settle();
    assert.equal(openedCount(w.logs), before + 1, 'opened once by WebCrypto');
    const again = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.deepEqual(await again.json(), body);
    const proxied = await w.fetch('/api/echo', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(proxied.status, 200);
    assert.match((await proxied.json()).headers.authorization, /^Bearer .+/);
    await settle();
    assert.equal(openedCount(w.logs), before + 1, 'remembered: not opened again');
  });

  test('a proxied call with a new cookie: opened by WebCrypto, sent with its access token, noted as a proxy call', async () => {
    const refreshed = await w.fetch('/auth/refresh', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(refreshed.status, 200);
    jar.update(refreshed);
    await settle();
    const before = openedCount(w.logs);
    const lines = accessLines(w.logs).length;
    const res = await w.fetch('/api/echo', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(res.status, 200);
    const echoed = (await res.json()).headers.authorization;
    await settle();
    assert.equal(openedCount(w.logs), before + 1);
    const line = accessLines(w.logs).slice(lines).find((l) => l.path === '/api/echo');
    assert.equal(line?.kind, 'proxy', JSON.stringify(line));
    assert.equal(line.status, 200);
    // The token sent is the refreshed session's: the same one the full path would send.
    const session = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal((await session.json()).authenticated, true);
    assert.match(echoed, /^Bearer .+/);
  });

  test('a forged cookie does not open: no session, the cookie cleared, a proxied call refused', async () => {
    await settle();
    const before = openedCount(w.logs);
    const forged = tampered(jar.header());
    assert.notEqual(forged, jar.header());
    const res = await w.fetch('/auth/session', { headers: { cookie: forged } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { authenticated: false });
    assert.match(res.headers.get('set-cookie') ?? '', /__Host-bff-session=;/);
    const proxied = await w.fetch('/api/echo', { headers: { cookie: forged, 'x-csrf': '1' } });
    assert.equal(proxied.status, 401);
    await proxied.arrayBuffer();
    await settle();
    assert.equal(openedCount(w.logs), before, 'nothing opened');
  });
});
