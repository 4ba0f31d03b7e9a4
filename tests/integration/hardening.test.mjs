// Hardening (docs/security.md group 12, docs/api.md sections 2, 4 and 9) against the built Worker,
// the real oidc-provider and a real upstream that records what reaches it: proxy paths
// as every server behind the proxy might read them, forwarding identity, upstream
// response headers, HSTS and nosniff, duplicate cookies, return_to and step-up claims.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider } from '../support/test-idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort, BASE } from '../support/worker.mjs';
import { CookieJar, rawRequest } from '../support/http.mjs';
import { login, authorizeAtProvider, loginCookieName } from '../support/login.mjs';

// An https origin, so that HSTS applies; requests reach Miniflare over plain HTTP.
const ORIGIN = 'https://app.example.test';
const TRUSTED = 'https://partner.example.test';
const HSTS = 'max-age=63072000';

/** A raw HTTP request (no URL normalisation, any header) to the Worker on `port`. */
const raw = rawRequest;

/** How many times header `name` occurs in a raw response. */
function count(res, name) {
  return res.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length;
}

/** `fetch(path)` against worker `w` as if at `origin`, redirects not followed. */
const at = (w, origin) => ({ fetch: (p, init = {}) => w.mf.dispatchFetch(new URL(p, origin), { redirect: 'manual', ...init }) });

for (const kv of [false, true]) {
  describe(kv ? 'proxy hardening, SESSIONS bound (full path)' : 'proxy hardening, no KV (direct path)', () => {
    let idp;
    let up;
    let w;
    let port;
    let jar;

    before(async () => {
      port = await freePort();
      idp = await startProvider({ redirectOrigin: ORIGIN });
      up = await startUpstream();
      w = await startWorker(
        {
          OIDC_ISSUER: idp.issuer,
          CLIENT_ID: 'edge-bff',
          CLIENT_SECRET: 'edge-bff-local-secret',
          PUBLIC_ORIGIN: ORIGIN,
          COOKIE_KEYS: newCookieKeys(),
          TRUSTED_ORIGINS: TRUSTED,
          API_ROUTES: JSON.stringify([
            { prefix: '/api/', upstream: `${up.base}/v1/` },
            { prefix: '/public/', upstream: `${up.base}/pub/`, token: 'none' },
          ]),
        },
        { port, kv },
      );
      ({ jar } = await login(at(w, ORIGIN), { base: ORIGIN }));
    });

    after(async () => {
      await w?.close();
      await up?.close();
      await idp?.close();
    });

    const withSession = (extra = {}) => ({ cookie: jar.header(), 'x-csrf': '1', ...extra });
    const lastSeen = () => up.seen[up.seen.length - 1];

    test('paths that servlet containers, double decoders or lenient UTF-8 decoders read as an escape: 400, upstream not called', async () => {
      const attacks = [
        '/api/..;/admin',
        '/api/a/..;/..;/admin',
        '/api/.;/x',
        '/api/..;jsessionid=1/x',
        '/api/%2e%2e;/x',
        '/api/..%3b/x',
        '/api/%252e%252e/admin',
        '/api/%252E%252E/admin',
        '/api/a%252fb',
        '/api/a%252Fb',
        '/api/a%255Cb',
        '/api/%25%32%65%25%32%65/x',
        '/api/%C0%AE%C0%AE/admin',
        '/api/%c0%af..%c0%afadmin',
        '/api/%E0%80%AE%E0%80%AE/x',
        '/api/a%01b',
        '/api/a%7Fb',
        '/api/a%2500',
      ];
      const before = up.seen.length;
      for (const path of attacks) {
        const res = await raw(port, path, { headers: withSession() });
        assert.equal(res.status, 400, `${path} → ${res.status}`);
        assert.equal(JSON.parse(res.body).error, 'invalid_request', path);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
        assert.equal(res.headers['strict-transport-security'], HSTS, path);
      }
      assert.equal(up.seen.length, before, `upstream saw ${up.seen.slice(before).map((s) => s.url).join(', ')}`);
    });

    test('ordinary ; parameters, %25 and UTF-8 in other segments pass as written', async () => {
      for (const [path, expected] of [
        ['/api/items;v=2/x', '/v1/items;v=2/x'],
        ['/api/a;jsessionid=1', '/v1/a;jsessionid=1'],
        ['/api/100%25', '/v1/100%25'],
        ['/api/%2541/b', '/v1/%2541/b'],
        ['/api/caf%C3%A9', '/v1/caf%C3%A9'],
        ['/api/...', '/v1/...'],
      ]) {
        const res = await raw(port, path, { headers: withSession() });
        assert.equal(res.status, 200, `${path} → ${res.status} ${res.body}`);
        assert.equal(lastSeen().url, expected, path);
      }
    });

    test('the client\'s own forwarding headers never reach the upstream; X-Forwarded-For is CF-Connecting-IP alone', async () => {
      const res = await raw(port, '/api/echo', {
        headers: withSession({
          'cf-connecting-ip': '203.0.113.7',
          'x-forwarded-for': '10.0.0.1, 10.0.0.9',
          'x-real-ip': '10.0.0.2',
          'true-client-ip': '10.0.0.3',
          forwarded: 'for=10.0.0.4;proto=http;host=evil.example',
          'x-forwarded-host': 'evil.example',
          'x-forwarded-proto': 'http',
          'proxy-connection': 'keep-alive',
        }),
      });
      assert.equal(res.status, 200);
      const h = lastSeen().headers;
      assert.equal(h['x-forwarded-for'], '203.0.113.7');
      assert.equal(h['x-forwarded-host'], 'app.example.test');
      assert.equal(h['x-forwarded-proto'], 'https');
      for (const name of ['x-real-ip', 'true-client-ip', 'forwarded', 'proxy-connection']) {
        assert.equal(h[name], undefined, name);
      }
      assert.ok(!JSON.stringify(lastSeen().rawHeaders).includes('10.0.0.'), 'no client-claimed address anywhere');
    });

    test('a Cookie header named in Connection is not rebuilt for the upstream', async () => {
      const control = await raw(port, '/public/echo', { headers: { 'x-csrf': '1', cookie: 'theme=dark' } });
      assert.equal(control.status, 200);
      assert.equal(lastSeen().headers.cookie, 'theme=dark', 'control: the app\'s cookie passes');
      const res = await raw(port, '/public/echo', { headers: { 'x-csrf': '1', cookie: 'theme=dark', connection: 'keep-alive, cookie' } });
      assert.equal(res.status, 200);
      assert.equal(lastSeen().headers.cookie, undefined);
    });

    test('upstream CORS, Clear-Site-Data, HSTS and Set-Cookie are replaced by edge-bff\'s own', async () => {
      const trusted = await raw(port, '/api/hostile-headers', { headers: withSession({ origin: TRUSTED }) });
      assert.equal(trusted.status, 200);
      assert.equal(count(trusted, 'access-control-allow-origin'), 1, 'exactly one Access-Control-Allow-Origin');
      assert.equal(trusted.headers['access-control-allow-origin'], TRUSTED);
      assert.equal(count(trusted, 'access-control-allow-credentials'), 1);
      assert.equal(trusted.headers['access-control-expose-headers'], undefined, 'the upstream\'s CORS headers are gone');
      assert.equal(trusted.headers['clear-site-data'], undefined, 'an upstream cannot wipe edge-bff\'s cookies');
      assert.equal(trusted.headers['set-cookie'], undefined);
      assert.equal(count(trusted, 'strict-transport-security'), 1);
      assert.equal(trusted.headers['strict-transport-security'], HSTS);
      assert.equal(trusted.headers['x-kept'], 'yes', 'other headers pass');
      assert.equal(JSON.parse(trusted.body).hostile, true);

      const own = await raw(port, '/api/hostile-headers', { headers: withSession() });
      assert.equal(own.status, 200);
      assert.equal(own.headers['access-control-allow-origin'], undefined, 'no CORS for a same-origin call');
      assert.equal(own.headers['clear-site-data'], undefined);
      assert.equal(own.headers['strict-transport-security'], HSTS);
    });

    test('two session cookies of one name are no session, whichever comes first; the upstream is not called', async () => {
      const value = jar.get('__Host-bff-session');
      assert.ok(value);
      const before = up.seen.length;
      for (const cookie of [
        `${jar.header()}; __Host-bff-session=${value}`,
        `__Host-bff-session=tossed-by-a-sibling; ${jar.header()}`,
        `${jar.header()}; __Host-bff-session=tossed-by-a-sibling`,
      ]) {
        const res = await raw(port, '/api/echo', { headers: { cookie, 'x-csrf': '1' } });
        assert.equal(res.status, 401, cookie.slice(0, 60));
        assert.equal(JSON.parse(res.body).error, 'unauthorized');
        const session = await raw(port, '/auth/session', { headers: { cookie } });
        assert.equal(JSON.parse(session.body).authenticated, false);
      }
      assert.equal(up.seen.length, before);
      const alone = await raw(port, '/api/echo', { headers: withSession() });
      assert.equal(alone.status, 200, 'the cookie alone still works');
    });
  });
}

describe('headers on edge-bff\'s own responses', () => {
  let idp;
  let w;
  let off;
  let local;

  before(async () => {
    idp = await startProvider({ redirectOrigin: ORIGIN });
    const common = { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', COOKIE_KEYS: newCookieKeys() };
    w = await startWorker({ ...common, PUBLIC_ORIGIN: ORIGIN, COOKIE_PREFIX: 'bff' });
    off = await startWorker({ ...common, PUBLIC_ORIGIN: ORIGIN, HSTS: 'off' });
    local = await startWorker({ ...common, PUBLIC_ORIGIN: BASE });
  });

  after(async () => {
    await w?.close();
    await off?.close();
    await local?.close();
    await idp?.close();
  });

  const paths = ['/auth/session', '/auth/login', '/auth/client.js', '/auth/nope', '/', '/index.html'];

  test('every response carries Strict-Transport-Security; JSON ones carry nosniff', async () => {
    const f = at(w, ORIGIN);
    for (const path of paths) {
      const res = await f.fetch(path);
      assert.equal(res.headers.get('strict-transport-security'), HSTS, path);
      if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      }
    }
    const refused = await f.fetch('/auth/logout', { method: 'POST' });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(refused.headers.get('strict-transport-security'), HSTS);
  });

  test('HSTS=off, and a plain-http development origin, send none', async () => {
    for (const [worker, origin] of [[off, ORIGIN], [local, BASE]]) {
      for (const path of paths) {
        const res = await at(worker, origin).fetch(path);
        assert.equal(res.headers.get('strict-transport-security'), null, `${origin}${path}`);
      }
    }
  });

  test('a COOKIE_PREFIX without __Host- on an https origin is warned about at start-up', async () => {
    const warned = () => w.logs.filter((l) => l.includes('COOKIE_PREFIX does not start with __Host-'));
    assert.equal(warned().length, 1, w.logs.join('\n'));
    assert.match(warned()[0], /"level":"warn"/);
    await at(off, ORIGIN).fetch('/auth/session');
    assert.equal(off.logs.filter((l) => l.includes('COOKIE_PREFIX')).length, 0);
  });
});

describe('login hardening with the real provider', () => {
  let idp;
  let w;

  before(async () => {
    idp = await startProvider();
    w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
  });

  after(async () => {
    await w?.close();
    await idp?.close();
  });

  test('a return_to that normalises to //host, or holds non-ASCII text, lands on /', async () => {
    for (const bad of ['/.//evil.example', '/a/..//evil.example', '/%2e//evil.example', '/a/%2E%2E//evil.example/x', '/café', '/\u2215\u2215evil.example', '/\uff0f\uff0fevil.example']) {
      const { callbackResponse } = await login(w, { returnTo: bad });
      assert.equal(callbackResponse.status, 302);
      assert.equal(callbackResponse.headers.get('location'), '/', `return_to ${JSON.stringify(bad)}`);
    }
    const { callbackResponse } = await login(w, { returnTo: '/a/./b/../c?x=1' });
    assert.equal(callbackResponse.headers.get('location'), '/a/c?x=1', 'an ordinary path is kept, normalised');
  });

  test('two login cookies of one attempt\'s name are no login cookie', async () => {
    const start = await w.fetch('/auth/login');
    const jar = new CookieJar();
    jar.update(start);
    const state = new URL(start.headers.get('location')).searchParams.get('state');
    const name = loginCookieName(state);
    const callbackUrl = await authorizeAtProvider(start.headers.get('location'));
    const doubled = `${jar.header()}; ${name}=${jar.get(name)}`;
    const res = await w.fetch(callbackUrl, { headers: { cookie: doubled } });
    assert.equal(res.headers.get('location'), '/?auth_error=login_expired');
  });

  test('acr_values and max_age: the provider\'s acr and auth_time are checked and shown in /auth/session', async () => {
    const start = await w.fetch('/auth/login?acr_values=urn:edge-bff:mfa&max_age=0');
    const authorization = new URL(start.headers.get('location'));
    assert.equal(authorization.searchParams.get('acr_values'), 'urn:edge-bff:mfa');
    assert.equal(authorization.searchParams.get('max_age'), '0');
    const jar = new CookieJar();
    jar.update(start);
    const callbackUrl = await authorizeAtProvider(start.headers.get('location'));
    const callback = await w.fetch(callbackUrl, { headers: { cookie: jar.header() } });
    assert.equal(callback.headers.get('location'), '/', callback.headers.get('location'));
    jar.update(callback);
    const session = await (await w.fetch('/auth/session', { headers: { cookie: jar.header() } })).json();
    assert.equal(session.authenticated, true);
    assert.equal(session.user.acr, 'urn:edge-bff:mfa');
    assert.equal(typeof session.user.auth_time, 'number');
    assert.ok(Math.abs(session.user.auth_time - Date.now() / 1000) < 60);
  });

  test('a max_age that is not a number of seconds is a 400, nothing set', async () => {
    const res = await w.fetch('/auth/login?max_age=soon');
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error, 'invalid_request');
    assert.equal(res.headers.getSetCookie().length, 0);
  });
});

describe('step-up claims a provider got wrong', () => {
  let idp;
  let w;

  before(async () => {
    idp = await startTestProvider({ redirectOrigin: BASE });
    w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
  });

  after(async () => {
    await w?.close();
    await idp?.close();
  });

  /** A login with `params` on /auth/login while the provider adds `claims` to the ID token. */
  async function loginWith(params, claims) {
    idp.scenario = { ...idp.scenario, claims };
    const start = await w.fetch(`/auth/login?${new URLSearchParams(params)}`);
    const jar = new CookieJar();
    jar.update(start);
    const authorize = await fetch(start.headers.get('location'), { redirect: 'manual' });
    const callback = await w.fetch(authorize.headers.get('location'), { headers: { cookie: jar.header() } });
    return callback.headers.get('location');
  }

  test('acr not among acr_values, auth_time missing or too old: invalid_id_token; matching claims log in', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      [{ acr_values: 'urn:mfa' }, { acr: 'urn:pwd' }, '/?auth_error=invalid_id_token'],
      [{ acr_values: 'urn:mfa' }, { acr: null }, '/?auth_error=invalid_id_token'],
      [{ acr_values: 'urn:mfa urn:hwk' }, { acr: 'urn:hwk' }, '/'],
      [{ max_age: '60' }, { auth_time: null }, '/?auth_error=invalid_id_token'],
      [{ max_age: '60' }, { auth_time: now - 3600 }, '/?auth_error=invalid_id_token'],
      [{ max_age: '60' }, { auth_time: now - 5 }, '/'],
      [{}, { acr: 'urn:anything', auth_time: now - 99999 }, '/'],
    ];
    for (const [params, claims, expected] of cases) {
      assert.equal(await loginWith(params, claims), expected, JSON.stringify({ params, claims }));
    }
  });
});
