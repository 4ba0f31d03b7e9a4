// KV sessions (SESSION_STORE=kv) and back-channel logout against the built Worker with
// Miniflare's KV, the real oidc-provider, and the defect-signing test provider.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider } from '../support/test-idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort, BASE } from '../support/worker.mjs';
import { CookieJar, parseSetCookie } from '../support/http.mjs';
import { login, loginOnce } from '../support/login.mjs';

const CSRF = { 'x-csrf': '1' };
const json = async (res) => JSON.parse(await res.text());
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});
const session = async (w, jar) => json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }));

async function kvWorkerWithTestIdp(extra = {}, options = {}) {
  const idp = await startTestProvider({ redirectOrigin: BASE });
  const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys(), SESSION_STORE: 'kv', ...extra }, options);
  cleanup.push(() => idp.close(), () => w.close());
  return { idp, w };
}

describe('KV mode with the real provider', () => {
  test('login, refresh, and logout revoking the old cookie everywhere', async () => {
    const idp = await startProvider({});
    const up = await startUpstream();
    const w = await startWorker({
      OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(), SESSION_STORE: 'kv', API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/v1/` }]),
    });
    cleanup.push(() => idp.close(), () => up.close(), () => w.close());
    const { jar, setCookies } = await login(w);
    const cookie = setCookies.find((c) => c.name === '__Host-bff-session');
    assert.ok(cookie.value.length < 120, `small cookie (${cookie.value.length} bytes)`);
    assert.equal(cookie.attrs.samesite, 'Strict');
    assert.deepEqual(jar.names(), ['__Host-bff-session']);
    assert.equal((await session(w, jar)).user.name, 'Dana Demo');

    const refresh = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(refresh.status, 200);
    assert.equal(refresh.headers.getSetCookie().length, 0, 'KV mode: the cookie does not change on refresh');
    const api = await w.fetch('/api/echo', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(api.status, 200);

    const old = jar.clone();
    const logout = await w.fetch('/auth/logout', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(logout.status, 200);
    assert.ok(logout.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session=;')));
    // Someone who kept the cookie: nothing works any more.
    assert.deepEqual(await session(w, old), { authenticated: false });
    const after = await w.fetch('/api/echo', { headers: { ...CSRF, cookie: old.header() } });
    assert.equal(after.status, 401);
    const refreshAfter = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: old.header() } });
    assert.equal(refreshAfter.status, 401);
  });

  test('back-channel logout sent by the real oidc-provider ends the session', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin, backchannelLogoutUri: `http://127.0.0.1:${port}/auth/backchannel-logout` });
    const w = await startWorker(
      { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: origin, COOKIE_KEYS: newCookieKeys(), SESSION_STORE: 'kv' },
      { port },
    );
    cleanup.push(() => idp.close(), () => w.close());
    let delivered = 0;
    idp.provider.on('backchannel.success', () => delivered++);
    idp.provider.on('backchannel.error', (_ctx, err) => console.error('backchannel.error', err.message, err.cause?.code, err.cause?.message));
    const idpJar = new CookieJar();
    const via = { fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) };
    const { jar } = await login(via, { base: origin, idpJar });
    const s = await json(await via.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    assert.equal(s.authenticated, true);
    assert.ok(s.user.sid, 'the provider put sid into the ID token');

    // The user logs out at the provider itself (not through edge-bff).
    const end = await fetch(`${idp.issuer}/session/end`, { headers: { cookie: idpJar.header() } });
    idpJar.update(end);
    const page = await end.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
    const action = /action="([^"]+)"/.exec(page)?.[1];
    assert.ok(xsrf && action, 'provider shows its logout confirmation');
    const confirm = await fetch(new URL(action, idp.issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: idpJar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    });
    assert.ok(confirm.status >= 300 && confirm.status < 400, `confirm answered ${confirm.status}`);
    for (let i = 0; i < 50 && delivered === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(delivered, 1, 'the provider delivered the logout token');
    const afterLogout = await json(await via.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    assert.deepEqual(afterLogout, { authenticated: false });
  });
});

describe('logout_token validation (test provider)', () => {
  test('every invalid logout_token is refused with 400 and the session kept; a valid one ends it', async () => {
    const { idp, w } = await kvWorkerWithTestIdp();
    idp.scenario = { alg: 'RS256', defect: null, accessTtl: 3600, refresh: 'rotate', sid: 'sid-bcl-1' };
    const { jar } = await loginOnce(w);
    assert.equal((await session(w, jar)).authenticated, true);
    const post = (body) => w.fetch('/auth/backchannel-logout', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    for (const defect of ['bad-signature', 'alg-none', 'wrong-iss', 'wrong-aud', 'no-events', 'nonce', 'no-subject', 'old-iat', 'unknown-kid']) {
      const token = await idp.logoutToken({ sid: 'sid-bcl-1', defect });
      const res = await post(new URLSearchParams({ logout_token: token }).toString());
      assert.equal(res.status, 400, defect);
      assert.equal((await json(res)).error, 'invalid_request', defect);
      assert.equal((await session(w, jar)).authenticated, true, `${defect}: session kept`);
    }
    for (const body of ['', 'logout_token=', 'logout_token=not-a-jwt', 'other=1']) {
      const res = await post(body);
      assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
    }
    // An ID token is not a logout token (no events claim, has a nonce).
    const ok = await post(new URLSearchParams({ logout_token: await idp.logoutToken({ sid: 'sid-other' }) }).toString());
    assert.equal(ok.status, 200, 'valid token for another sid: 200, nothing ended');
    assert.equal((await session(w, jar)).authenticated, true);
    const end = await post(new URLSearchParams({ logout_token: await idp.logoutToken({ sid: 'sid-bcl-1' }) }).toString());
    assert.equal(end.status, 200);
    assert.equal(end.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await session(w, jar), { authenticated: false });
  });

  test('a logout token with only sub ends every session of that user', async () => {
    const { idp, w } = await kvWorkerWithTestIdp();
    const a = await loginOnce(w);
    const b = await loginOnce(w);
    assert.equal((await session(w, a.jar)).authenticated, true);
    const res = await w.fetch('/auth/backchannel-logout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: await idp.logoutToken({ sub: 'user-1', sid: null }) }).toString(),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await session(w, a.jar), { authenticated: false });
    assert.deepEqual(await session(w, b.jar), { authenticated: false });
  });

  test('cookie mode with KV bound: the sid deny-list ends the session', async () => {
    const idp = await startTestProvider({ redirectOrigin: BASE });
    const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
    cleanup.push(() => idp.close(), () => w.close());
    idp.scenario.sid = 'sid-cookie-1';
    const { jar } = await loginOnce(w);
    assert.equal((await session(w, jar)).authenticated, true);
    const res = await w.fetch('/auth/backchannel-logout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: await idp.logoutToken({ sid: 'sid-cookie-1' }) }).toString(),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await session(w, jar), { authenticated: false });
  });

  test('without a KV binding: 404 not_found; SESSION_STORE=kv without it: configuration_error', async () => {
    const idp = await startTestProvider({ redirectOrigin: BASE });
    cleanup.push(() => idp.close());
    const base = { OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() };
    const noKv = await startWorker(base, { kv: false });
    cleanup.push(() => noKv.close());
    const res = await noKv.fetch('/auth/backchannel-logout', { method: 'POST', body: 'logout_token=x' });
    assert.equal(res.status, 404);
    assert.equal((await json(res)).error, 'not_found');
    const broken = await startWorker({ ...base, SESSION_STORE: 'kv' }, { kv: false });
    cleanup.push(() => broken.close());
    const r = await broken.fetch('/auth/session');
    assert.equal(r.status, 500);
    assert.equal((await json(r)).error, 'configuration_error');
  });
});

describe('KV mode specifics', () => {
  test('a 6 KB ID token works with a small cookie', async () => {
    const { idp, w } = await kvWorkerWithTestIdp();
    idp.scenario = { alg: 'ES256', defect: null, accessTtl: 3600, refresh: 'rotate', padding: 6000 };
    const { jar, set } = await loginOnce(w);
    const cookie = set.find((c) => c.name === '__Host-bff-session');
    assert.ok(cookie && cookie.value.length < 120, 'small cookie');
    const s = await session(w, jar);
    assert.equal(s.authenticated, true);
    assert.ok(JSON.stringify(s.user).length > 6000, 'the big claims are there');
    const logout = await w.fetch('/auth/logout', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    const hint = new URL((await json(logout)).logout_url).searchParams.get('id_token_hint');
    assert.ok(hint.length > 6000, 'the whole ID token came back from KV as id_token_hint');
  });

  test('a record that is not found means "not logged in", never 500, and the cookie is kept', async () => {
    const { w } = await kvWorkerWithTestIdp();
    const { jar } = await loginOnce(w);
    // Another Worker with a fresh (empty) KV namespace: as if not yet replicated there.
    const idp2 = await startTestProvider({ redirectOrigin: BASE });
    cleanup.push(() => idp2.close());
    const elsewhere = await startWorker({ OIDC_ISSUER: idp2.issuer, CLIENT_ID: idp2.clientId, CLIENT_SECRET: idp2.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: (await w.mf.getBindings()).COOKIE_KEYS, SESSION_STORE: 'kv' });
    cleanup.push(() => elsewhere.close());
    const res = await elsewhere.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { authenticated: false });
    assert.equal(res.headers.getSetCookie().length, 0, 'cookie not cleared');
  });

  test('refresh race across isolates: a refused refresh re-reads the record and succeeds', async () => {
    const idp = await startTestProvider({ redirectOrigin: BASE });
    const persist = mkdtempSync(path.join(tmpdir(), 'edge-bff-kv-'));
    const keys = newCookieKeys();
    const bindings = { OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: keys, SESSION_STORE: 'kv' };
    const a = await startWorker(bindings, { kvPersist: persist });
    const b = await startWorker(bindings, { kvPersist: persist });
    cleanup.push(() => idp.close(), () => a.close(), () => b.close());
    const { jar } = await loginOnce(a);
    assert.equal((await session(b, jar)).authenticated, true, 'both isolates read the same KV');
    // Both isolates refresh at once; the provider rotates and rejects the second use.
    idp.scenario.tokenDelayMs = 400;
    const [ra, rb] = await Promise.all([
      a.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } }),
      new Promise((r) => setTimeout(r, 100)).then(() => b.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } })),
    ]);
    assert.equal(idp.stats.refresh, 2, 'two isolates, two token calls');
    assert.equal(ra.status, 200);
    assert.equal(rb.status, 200, `the loser re-read the record instead of logging out: ${await rb.clone().text()}`);
    assert.equal((await session(a, jar)).authenticated, true);
  });
});
