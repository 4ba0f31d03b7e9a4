// The token lifecycle against the built Worker: refresh, userinfo, refresh failures,
// concurrent refreshes with rotating refresh tokens (real oidc-provider), idle timeout,
// cookie key rotation, logout with revocation, timeouts.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider } from '../support/test-idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { CookieJar, parseSetCookie } from '../support/http.mjs';
import { login, loginOnce } from '../support/login.mjs';

const CSRF = { 'x-csrf': '1', origin: BASE };
const json = async (res) => JSON.parse(await res.text());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function withTestIdp(extraBindings = {}) {
  const idp = await startTestProvider({ redirectOrigin: BASE });
  const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys(), ...extraBindings });
  cleanup.push(() => idp.close(), () => w.close());
  return { idp, w };
}

function sessionCleared(res) {
  const set = res.headers.getSetCookie().map(parseSetCookie);
  return set.some((c) => c.name === '__Host-bff-session' && c.attrs['max-age'] === '0');
}

describe('POST /auth/refresh', () => {
  test('refreshes, rotates the refresh token, keeps the absolute expiry', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    const before = await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    await sleep(1100);
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.deepEqual(Object.keys(body), ['access_token_expires_at']);
    assert.ok(body.access_token_expires_at > before.access_token_expires_at);
    assert.equal(idp.stats.refresh, 1);
    const oldCookie = jar.get('__Host-bff-session');
    jar.update(res);
    assert.notEqual(jar.get('__Host-bff-session'), oldCookie, 'session rewritten');
    const afterRefresh = await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    assert.equal(afterRefresh.expires_at, before.expires_at, 'SESSION_MAX_AGE counts from login, never extended');
    assert.equal(afterRefresh.access_token_expires_at, body.access_token_expires_at);
    // A second refresh uses the rotated token.
    const again = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(again.status, 200);
    assert.equal(idp.stats.refresh, 2);
  });

  test('without a session: 401 unauthorized; without X-CSRF: 403', async () => {
    const { w } = await withTestIdp();
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: CSRF });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).error, 'unauthorized');
    const { jar } = await loginOnce(w);
    const noCsrf = await w.fetch('/auth/refresh', { method: 'POST', headers: { cookie: jar.header() } });
    assert.equal(noCsrf.status, 403);
  });

  test('invalid_grant: 401 session_expired and every session cookie cleared', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.refresh = 'reject';
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).error, 'session_expired');
    assert.ok(sessionCleared(res));
  });

  test('provider down: 502 idp_unavailable, session kept and usable afterwards', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.refresh = 'down';
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 502);
    assert.equal((await json(res)).error, 'idp_unavailable');
    assert.equal(res.headers.getSetCookie().length, 0, 'no cookie touched');
    idp.scenario.refresh = 'rotate';
    const ok = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(ok.status, 200);
  });

  test('a refreshed ID token naming another subject ends the session', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.refreshIdToken = { sub: 'user-2' };
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).error, 'session_expired');
    assert.ok(sessionCleared(res));
  });

  test('a refreshed ID token with the same iss and sub is accepted', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.refreshIdToken = {};
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
  });

  test('a token endpoint slower than the timeout: 502 after about 5 s, session kept', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.tokenDelayMs = 8000;
    const started = Date.now();
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    const took = Date.now() - started;
    assert.equal(res.status, 502);
    assert.equal((await json(res)).error, 'idp_unavailable');
    assert.ok(took >= 4500 && took < 7500, `answered after ${took} ms`);
    assert.equal(res.headers.getSetCookie().length, 0);
  });
});

describe('GET /auth/userinfo', () => {
  test('answers the provider\'s claims; refreshes first when the access token expired', async () => {
    const { idp, w } = await withTestIdp();
    // Times are whole seconds: a 1 s token could already count as expired when the login
    // ended just before a second boundary. 2 s is never expired within a second of login.
    idp.scenario.accessTtl = 2;
    const { jar } = await loginOnce(w);
    const fresh = await w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(fresh.status, 200);
    assert.equal((await json(fresh)).email, 'test@example.com');
    assert.equal(idp.stats.refresh, 0);
    await sleep(2600);
    const res = await w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
    assert.equal(idp.stats.refresh, 1, 'refreshed before calling userinfo');
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session=')), 'session rewritten');
    const noCsrf = await w.fetch('/auth/userinfo', { headers: { cookie: jar.header() } });
    assert.equal(noCsrf.status, 403);
  });
});

describe('refresh races (real oidc-provider: rotating refresh tokens, reuse rejected)', () => {
  test('8 concurrent requests needing refresh: all succeed with one refresh; the old cookie still works briefly', async () => {
    const idp = await startProvider({ accessTokenTtl: 2 });
    const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
    cleanup.push(() => idp.close(), () => w.close());
    let refreshes = 0;
    idp.provider.on('grant.success', (ctx) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') refreshes++;
    });
    const { jar } = await login(w);
    await sleep(2300);
    const oldCookie = jar.header();
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: oldCookie } })),
    );
    for (const r of responses) {
      assert.equal(r.status, 200, `status ${r.status}`);
      assert.equal((await json(r)).name, 'Dana Demo');
    }
    assert.equal(refreshes, 1, 'the provider saw one refresh');
    jar.update(responses[3]);
    const next = await w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(next.status, 200, 'the new session works');
    const late = await w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: oldCookie } });
    assert.equal(late.status, 200, 'a late request with the old cookie gets the cached result');
    assert.equal(refreshes, 1);
    assert.equal((await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }))).authenticated, true);
  });
});

// The idle timeout (at least 60 s since v2) is tested with a moved clock in
// edge-lifecycle.test.mjs.

describe('cookie key rotation', () => {
  test('old key still opens and is re-sealed with the new one; a removed key ends the session cleanly', async () => {
    const idp = await startTestProvider({ redirectOrigin: BASE });
    cleanup.push(() => idp.close());
    const k1 = newCookieKeys('k1');
    const k2 = newCookieKeys('k2');
    const base = { OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE };
    const before = await startWorker({ ...base, COOKIE_KEYS: k1 });
    const { jar } = await loginOnce(before);
    await before.close();
    assert.match(jar.get('__Host-bff-session'), /^k1\./);
    const oldJar = jar.clone();

    const rotated = await startWorker({ ...base, COOKIE_KEYS: `${k2} ${k1}` });
    const res = await rotated.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal((await json(res)).authenticated, true);
    jar.update(res);
    assert.match(jar.get('__Host-bff-session'), /^k2\./, 're-sealed under the current key');
    await rotated.close();

    const removed = await startWorker({ ...base, COOKIE_KEYS: k2 });
    cleanup.push(() => removed.close());
    assert.equal((await json(await removed.fetch('/auth/session', { headers: { cookie: jar.header() } }))).authenticated, true);
    const stale = await removed.fetch('/auth/session', { headers: { cookie: oldJar.header() } });
    assert.equal(stale.status, 200);
    assert.deepEqual(await json(stale), { authenticated: false });
    const refresh = await removed.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: oldJar.header() } });
    assert.equal(refresh.status, 401);
    assert.equal((await json(refresh)).error, 'unauthorized');
  });
});

describe('logout', () => {
  test('revokes the refresh token (RFC 7009) and sends id_token_hint, client_id, post_logout_redirect_uri', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    const res = await w.fetch('/auth/logout', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
    const url = new URL((await json(res)).logout_url);
    assert.equal(url.origin + url.pathname, `${idp.issuer}/logout`);
    assert.ok(url.searchParams.get('id_token_hint'));
    assert.equal(url.searchParams.get('client_id'), idp.clientId);
    assert.equal(url.searchParams.get('post_logout_redirect_uri'), `${BASE}/`);
    assert.equal(idp.stats.revoke.length, 1);
    assert.equal(idp.stats.revoke[0].hint, 'refresh_token');
    assert.ok(idp.stats.revoke[0].authenticated, 'client authenticated at the revocation endpoint');
    assert.ok(idp.state.refreshTokens.has(idp.stats.revoke[0].token), 'the session\'s refresh token was revoked');
    assert.ok(sessionCleared(res));
  });

  test('a failing revocation endpoint does not fail the logout', async () => {
    const { idp, w } = await withTestIdp();
    const { jar } = await loginOnce(w);
    idp.scenario.revoke = 'down';
    const res = await w.fetch('/auth/logout', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
    assert.ok(sessionCleared(res));
    assert.equal(idp.stats.revoke.length, 1);
  });

  test('the real provider revokes: the refresh token no longer works', async () => {
    const idp = await startProvider({});
    const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
    cleanup.push(() => idp.close(), () => w.close());
    let revoked = 0;
    idp.provider.on('refresh_token.destroyed', () => revoked++);
    const { jar } = await login(w);
    const kept = jar.clone();
    const res = await w.fetch('/auth/logout', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 200);
    assert.ok(revoked >= 1, 'provider destroyed the refresh token');
    // Someone who kept the old cookie cannot refresh any more.
    const refresh = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: kept.header() } });
    assert.equal(refresh.status, 401);
    assert.equal((await json(refresh)).error, 'session_expired');
  });
});

test('no JSON error response carries a token, secret or key', async () => {
  const { idp, w } = await withTestIdp();
  const { jar } = await loginOnce(w);
  idp.scenario.refresh = 'reject';
  const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
  const text = await res.text();
  assert.ok(!text.includes(idp.clientSecret));
  assert.ok(!/at-|eyJ/.test(text));
  assert.ok(!w.logs.join('\n').includes(idp.clientSecret));
  assert.ok(!/\bat-[\w-]{10,}|eyJ[\w-]{10,}/.test(w.logs.join('\n')), 'no token in logs');
});
