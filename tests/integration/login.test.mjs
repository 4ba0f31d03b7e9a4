// Cookie-mode login against the built Worker in Miniflare and the real oidc-provider.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider, DEMO_USER } from '../support/idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { CookieJar, parseSetCookie } from '../support/http.mjs';
import { login, authorizeAtProvider, loginCookieName } from '../support/login.mjs';

const SECRET = 'edge-bff-local-secret-for-tests';
let idp;
let w;
let keys;

before(async () => {
  idp = await startProvider({ clientSecret: SECRET });
  keys = newCookieKeys('k1');
  w = await startWorker({
    OIDC_ISSUER: idp.issuer,
    CLIENT_ID: 'edge-bff',
    CLIENT_SECRET: SECRET,
    PUBLIC_ORIGIN: BASE,
    COOKIE_KEYS: keys,
  });
});

after(async () => {
  await w?.close();
  await idp?.close();
});

const json = async (res) => JSON.parse(await res.text());

function assertCookieAttributes(c, sameSite) {
  assert.match(c.name, /^__Host-bff-/);
  assert.equal(c.attrs.path, '/');
  assert.equal(c.attrs.secure, true);
  assert.equal(c.attrs.httponly, true);
  assert.equal(c.attrs.samesite, sameSite);
  assert.equal(c.attrs.domain, undefined, 'no Domain attribute');
}

describe('GET /auth/login', () => {
  test('redirects to the authorization endpoint with PKCE S256, state, nonce and the exact redirect URI', async () => {
    const res = await w.fetch('/auth/login?return_to=/after&prompt=login&evil=1');
    assert.equal(res.status, 302);
    const url = new URL(res.headers.get('location'));
    assert.equal(url.origin + url.pathname, `${idp.issuer}/auth`);
    const q = url.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), 'edge-bff');
    assert.equal(q.get('redirect_uri'), `${BASE}/auth/callback`);
    assert.deepEqual(q.get('scope').split(' '), ['openid', 'profile', 'email']);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('state'), /^[A-Za-z0-9_-]{43}$/, '256-bit state');
    assert.match(q.get('nonce'), /^[A-Za-z0-9_-]{43}$/, '256-bit nonce');
    assert.equal(q.get('prompt'), 'login', 'allow-listed parameter passes');
    assert.equal(q.get('evil'), null, 'other parameters do not');
    assert.equal(q.get('client_secret'), null);

    const again = new URL((await w.fetch('/auth/login')).headers.get('location')).searchParams;
    assert.notEqual(again.get('state'), q.get('state'));
    assert.notEqual(again.get('nonce'), q.get('nonce'));
    assert.notEqual(again.get('code_challenge'), q.get('code_challenge'));
  });

  test('a parameter given twice reaches the provider once, with its first value (query and /login/start)', async () => {
    const res = await w.fetch('/auth/login?prompt=login&prompt=none&max_age=300&max_age=0');
    assert.equal(res.status, 302);
    const q = new URL(res.headers.get('location')).searchParams;
    assert.deepEqual(q.getAll('prompt'), ['login']);
    assert.deepEqual(q.getAll('max_age'), ['300']);
    // A JSON object with a name twice (JSON.stringify cannot write one).
    const start = await w.fetch('/auth/login/start', {
      method: 'POST',
      headers: { 'x-csrf': '1', 'content-type': 'application/json', origin: BASE },
      body: '{"params":{"prompt":"login","prompt":"none"}}',
    });
    assert.equal(start.status, 200);
    assert.deepEqual(new URL((await json(start)).authorization_url).searchParams.getAll('prompt'), ['login']);
  });

  test('sets the login cookie with every attribute and a sealed value', async () => {
    const res = await w.fetch('/auth/login');
    const cookies = res.headers.getSetCookie().map(parseSetCookie);
    assert.equal(cookies.length, 1);
    const c = cookies[0];
    const state = new URL(res.headers.get('location')).searchParams.get('state');
    assert.equal(c.name, loginCookieName(state), 'one login cookie per attempt, named after its state');
    assertCookieAttributes(c, 'Lax');
    assert.equal(c.attrs['max-age'], '600');
    assert.match(c.value, /^k1\.[A-Za-z0-9_-]+$/);
    assert.ok(!c.value.includes(state), 'state is not readable in the cookie');
  });

  test('return_to that could leave the origin becomes /', async () => {
    for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', '\\\\evil', '/%2F%2Fevil.example', 'javascript:alert(1)', '/a\r\nSet-Cookie: x=1', `/${'a'.repeat(600)}`]) {
      const { callbackResponse } = await login(w, { returnTo: bad });
      assert.equal(callbackResponse.status, 302);
      assert.equal(callbackResponse.headers.get('location'), '/', `return_to ${JSON.stringify(bad)}`);
    }
  });
});

describe('full login', () => {
  test('callback sets the session, clears the login cookie and returns to return_to', async () => {
    const { callbackResponse, setCookies, jar, loginResponse } = await login(w, { returnTo: '/app/page?x=1' });
    assert.equal(callbackResponse.status, 302);
    assert.equal(callbackResponse.headers.get('location'), '/app/page?x=1');
    assert.equal(callbackResponse.headers.get('referrer-policy'), 'no-referrer');
    const session = setCookies.find((c) => c.name === '__Host-bff-session');
    assert.ok(session, 'session cookie set');
    assertCookieAttributes(session, 'Strict');
    const maxAge = Number(session.attrs['max-age']);
    assert.ok(maxAge > 28700 && maxAge <= 28800, `Max-Age ${maxAge} is SESSION_MAX_AGE`);
    const state = new URL(loginResponse.headers.get('location')).searchParams.get('state');
    const loginCookie = setCookies.find((c) => c.name === loginCookieName(state));
    assert.equal(loginCookie.attrs['max-age'], '0', 'login cookie cleared');
    assertCookieAttributes(loginCookie, 'Lax');
    assert.match(session.value, /^k1\.[A-Za-z0-9_-]+$/);
    const decoded = Buffer.from(session.value.split('.')[1], 'base64url').toString('latin1');
    for (const plain of ['Dana Demo', DEMO_USER.claims.sub, DEMO_USER.claims.email, '"alg"', 'access_token']) {
      assert.ok(!session.value.includes(plain) && !decoded.includes(plain), `"${plain}" is not readable in the cookie`);
    }
    assert.deepEqual(jar.names(), ['__Host-bff-session']);
  });

  test('/auth/session reports the user from the ID token', async () => {
    const { jar } = await login(w);
    const res = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const body = await json(res);
    assert.equal(body.authenticated, true);
    assert.equal(body.user.sub, DEMO_USER.claims.sub);
    assert.equal(body.user.name, 'Dana Demo');
    assert.equal(body.user.email, DEMO_USER.claims.email);
    assert.equal(body.user.iss, idp.issuer);
    assert.equal(body.user.nonce, undefined);
    assert.equal(body.user.at_hash, undefined);
    assert.equal(body.user.c_hash, undefined);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(body.expires_at - (now + 28800)) < 30);
    assert.ok(Math.abs(body.access_token_expires_at - (now + 3600)) < 30);
    const text = JSON.stringify(body);
    assert.ok(!/access_token"|refresh_token|id_token/.test(text), 'no tokens in /session');
  });

  test('/auth/session without a session answers authenticated:false, never 401', async () => {
    const res = await w.fetch('/auth/session');
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { authenticated: false });
    assert.equal(res.headers.getSetCookie().length, 0);
  });

  test('logout clears every session cookie and answers the end-session URL', async () => {
    const { jar } = await login(w);
    const idToken = null;
    const res = await w.fetch('/auth/logout', {
      method: 'POST',
      headers: { cookie: jar.header(), 'x-csrf': '1', origin: BASE },
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    const url = new URL(body.logout_url);
    assert.equal(url.origin + url.pathname, `${idp.issuer}/session/end`);
    assert.equal(url.searchParams.get('client_id'), 'edge-bff');
    assert.equal(url.searchParams.get('post_logout_redirect_uri'), `${BASE}/`);
    assert.match(url.searchParams.get('id_token_hint'), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(idToken, null);
    const cleared = jar.update(res);
    assert.ok(cleared.some((c) => c.name === '__Host-bff-session' && c.attrs['max-age'] === '0'));
    for (const c of cleared) assertCookieAttributes(c, 'Strict');
    assert.deepEqual(jar.names(), []);
    const after = await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    assert.deepEqual(after, { authenticated: false });
  });

  test('logout without X-CSRF or from another origin is refused and keeps the session', async () => {
    const { jar } = await login(w);
    for (const headers of [{}, { 'x-csrf': '1', origin: 'https://evil.example' }, { 'x-csrf': '1', 'sec-fetch-site': 'cross-site' }, { 'x-csrf': '1', origin: 'null' }]) {
      const res = await w.fetch('/auth/logout', { method: 'POST', headers: { cookie: jar.header(), ...headers } });
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal((await json(res)).error, 'csrf_check_failed');
      assert.equal(res.headers.getSetCookie().length, 0);
    }
    const s = await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } }));
    assert.equal(s.authenticated, true);
  });

  test('logout without a session still answers 200 without a hint', async () => {
    const res = await w.fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf': '1' } });
    assert.equal(res.status, 200);
    const url = new URL((await json(res)).logout_url);
    assert.equal(url.searchParams.get('id_token_hint'), null);
    assert.equal(url.searchParams.get('client_id'), 'edge-bff');
  });
});

describe('cookies that do not open', () => {
  test('tampered, truncated, garbage, foreign-name and unknown-kid cookies mean "not logged in", never 500', async () => {
    const { jar } = await login(w);
    const good = jar.get('__Host-bff-session');
    const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const loginCookie = (await w.fetch('/auth/login')).headers.getSetCookie().map(parseSetCookie)[0].value;
    const variants = [
      flip(good, good.length - 5),
      flip(good, 10),
      good.slice(0, good.length - 20),
      'k1.',
      'garbage',
      'k9.' + good.slice(3),
      good.replace(/^k1/, 'k2'),
      loginCookie, // a real sealed value, moved to another cookie name
      '%00%ff',
      'a'.repeat(5000),
    ];
    for (const v of variants) {
      const res = await w.fetch('/auth/session', { headers: { cookie: `__Host-bff-session=${v}` } });
      assert.equal(res.status, 200, `variant ${v.slice(0, 30)}`);
      assert.deepEqual(await json(res), { authenticated: false });
      const cleared = res.headers.getSetCookie().map(parseSetCookie);
      assert.ok(cleared.some((c) => c.name === '__Host-bff-session' && c.attrs['max-age'] === '0'), 'bad cookie cleared');
    }
    const logout = await w.fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf': '1', cookie: `__Host-bff-session=${flip(good, 12)}` } });
    assert.equal(logout.status, 200);
    assert.equal(new URL((await json(logout)).logout_url).searchParams.get('id_token_hint'), null);
  });
});

describe('GET /auth/callback refusals', () => {
  async function startLogin() {
    const jar = new CookieJar();
    const res = await w.fetch('/auth/login');
    jar.update(res);
    const callbackUrl = await authorizeAtProvider(res.headers.get('location'));
    return { jar, callbackUrl: new URL(callbackUrl) };
  }

  async function expectRefusal(url, jar, code) {
    const res = await w.fetch(url.toString(), { headers: { cookie: jar.header() } });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `/?auth_error=${code}`);
    const set = res.headers.getSetCookie().map(parseSetCookie);
    assert.ok(!set.some((c) => c.name.startsWith('__Host-bff-session') && c.value !== ''), 'no session set');
    return res;
  }

  test('state mismatch', async () => {
    const { jar, callbackUrl } = await startLogin();
    callbackUrl.searchParams.set('state', 'A'.repeat(43));
    await expectRefusal(callbackUrl, jar, 'state_mismatch');
  });

  test('missing login cookie', async () => {
    const { callbackUrl } = await startLogin();
    await expectRefusal(callbackUrl, new CookieJar(), 'login_expired');
  });

  test('a login cookie from another browser (foreign state)', async () => {
    const a = await startLogin();
    const b = await startLogin();
    await expectRefusal(a.callbackUrl, b.jar, 'state_mismatch');
  });

  test('a callback works once', async () => {
    const { jar, callbackUrl } = await startLogin();
    const first = await w.fetch(callbackUrl.toString(), { headers: { cookie: jar.header() } });
    const replayJar = jar.clone();
    jar.update(first);
    assert.ok(jar.get('__Host-bff-session'));
    // The browser no longer has the login cookie …
    await expectRefusal(callbackUrl, jar, 'login_expired');
    // … and an attacker who kept it cannot redeem the code a second time.
    await expectRefusal(callbackUrl, replayJar, 'token_exchange_failed');
  });

  test('wrong iss (RFC 9207)', async () => {
    const { jar, callbackUrl } = await startLogin();
    assert.equal(callbackUrl.searchParams.get('iss'), idp.issuer, 'provider sends iss');
    callbackUrl.searchParams.set('iss', 'http://localhost:1/evil');
    await expectRefusal(callbackUrl, jar, 'issuer_mismatch');
  });

  test('missing iss although the provider advertises it', async () => {
    const { jar, callbackUrl } = await startLogin();
    callbackUrl.searchParams.delete('iss');
    await expectRefusal(callbackUrl, jar, 'issuer_mismatch');
  });

  test('provider errors: four passed through, others become login_failed, nothing reflected', async () => {
    for (const [error, code] of [['access_denied', 'access_denied'], ['interaction_required', 'interaction_required'], ['<script>alert(1)</script>', 'login_failed'], ['server_error', 'login_failed']]) {
      const { jar, callbackUrl } = await startLogin();
      const url = new URL('/auth/callback', BASE);
      url.searchParams.set('error', error);
      url.searchParams.set('error_description', '<b>html</b>');
      url.searchParams.set('state', callbackUrl.searchParams.get('state'));
      url.searchParams.set('iss', idp.issuer);
      const res = await expectRefusal(url, jar, code);
      assert.equal(await res.text(), '');
    }
  });

  test('a wrong code is token_exchange_failed', async () => {
    const { jar, callbackUrl } = await startLogin();
    callbackUrl.searchParams.set('code', 'not-a-real-code');
    await expectRefusal(callbackUrl, jar, 'token_exchange_failed');
  });
});

describe('agent paths and methods', () => {
  test('unknown agent path is 404 JSON, wrong method is 405 with Allow', async () => {
    const nf = await w.fetch('/auth/nope');
    assert.equal(nf.status, 404);
    assert.equal((await json(nf)).error, 'not_found');
    const m = await w.fetch('/auth/logout');
    assert.equal(m.status, 405);
    assert.equal(m.headers.get('allow'), 'POST');
    assert.equal((await json(m)).error, 'method_not_allowed');
  });

  test('agent bodies over 16 KiB are 413', async () => {
    const res = await w.fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf': '1' }, body: 'x'.repeat(17 * 1024) });
    assert.equal(res.status, 413);
    assert.equal((await json(res)).error, 'payload_too_large');
  });

  test('POST /auth/login/start answers the authorization URL and sets the login cookie', async () => {
    const res = await w.fetch('/auth/login/start', {
      method: 'POST',
      headers: { 'x-csrf': '1', 'content-type': 'application/json', origin: BASE },
      body: JSON.stringify({ return_to: '/x', params: { login_hint: 'demo' } }),
    });
    assert.equal(res.status, 200);
    const url = new URL((await json(res)).authorization_url);
    assert.equal(url.searchParams.get('login_hint'), 'demo');
    assert.equal(res.headers.getSetCookie().map(parseSetCookie)[0].name, loginCookieName(url.searchParams.get('state')));
    const bad = await w.fetch('/auth/login/start', { method: 'POST', headers: { 'x-csrf': '1' }, body: JSON.stringify({ params: { redirect_uri: 'https://evil' } }) });
    assert.equal(bad.status, 400);
    const noCsrf = await w.fetch('/auth/login/start', { method: 'POST', body: '{}' });
    assert.equal(noCsrf.status, 403);
  });
});

test('no secret, key or token in any log line', async () => {
  const { jar } = await login(w);
  await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
  const logs = w.logs.join('\n');
  assert.ok(w.logs.length > 0, 'the Worker logged something');
  assert.ok(!logs.includes(SECRET), 'client secret');
  assert.ok(!logs.includes(keys.split(':')[1]), 'cookie key');
  assert.ok(!logs.includes(jar.get('__Host-bff-session').slice(3, 40)), 'sealed session');
  assert.ok(!/eyJ[\w-]{10,}/.test(logs), 'no JWT');
});
