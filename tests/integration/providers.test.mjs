// Provider interop (API.md section 2 CLIENT_AUTH, CLIENT_PRIVATE_KEY, AUTH_PARAMS, PAR;
// section 3 /jwks; SECURITY.md group 13) against the built Worker and the real
// oidc-provider: private_key_jwt client assertions (RFC 7523) for the code exchange,
// refresh and revocation, the Worker's /auth/jwks as the client's jwks_uri, pushed
// authorization requests (RFC 9126), and fixed authorization parameters.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider } from '../support/test-idp.mjs';
import { startWorker, newCookieKeys, freePort } from '../support/worker.mjs';
import { CookieJar } from '../support/http.mjs';
import { login, authorizeAtProvider } from '../support/login.mjs';

/** A private JWK for `alg` with `kid` (node's crypto, as an operator would make one). */
function privateJwk(alg, kid) {
  const [type, options] = {
    RS256: ['rsa', { modulusLength: 2048 }],
    PS256: ['rsa', { modulusLength: 2048 }],
    ES256: ['ec', { namedCurve: 'P-256' }],
    EdDSA: ['ed25519', {}],
  }[alg];
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg };
}

const publicOf = ({ d, p, q, dp, dq, qi, ...rest }) => rest;

/** A Worker at a real port (the provider fetches its /auth/jwks) with `bindings`. */
async function workerAt(port, idp, bindings) {
  return startWorker(
    { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', PUBLIC_ORIGIN: `http://localhost:${port}`, COOKIE_KEYS: newCookieKeys(), ...bindings },
    { port },
  );
}

/** `fetch(path)` against the Worker's own origin. */
const at = (w, origin) => ({ fetch: (p, init = {}) => w.mf.dispatchFetch(new URL(p, origin), { redirect: 'manual', ...init }) });

describe('private_key_jwt (RFC 7523)', () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256']) {
    test(`${alg}: login, refresh and revocation authenticate with a client assertion; the provider reads the keys from /auth/jwks`, async () => {
      const port = await freePort();
      const origin = `http://localhost:${port}`;
      const idp = await startProvider({ redirectOrigin: origin, tokenEndpointAuthMethod: 'private_key_jwt', clientJwksUri: `${origin}/auth/jwks` });
      const assertions = [];
      idp.provider.on('grant.success', (ctx) => assertions.push(ctx.oidc.params.grant_type));
      const revoked = [];
      idp.provider.on('grant.revoked', () => revoked.push(true));
      const key = privateJwk(alg, `k-${alg}`);
      const w = await workerAt(port, idp, { CLIENT_AUTH: 'private_key_jwt', CLIENT_PRIVATE_KEY: JSON.stringify(key) });
      try {
        const jwks = await at(w, origin).fetch('/auth/jwks');
        assert.equal(jwks.status, 200);
        const published = await jwks.json();
        assert.equal(published.keys.length, 1);
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(published.keys[0][member], undefined, member);
        assert.equal(published.keys[0].kid, `k-${alg}`);

        const { jar, callbackResponse } = await login(at(w, origin), { base: origin });
        assert.equal(callbackResponse.headers.get('location'), '/', 'logged in');
        const refreshed = await at(w, origin).fetch('/auth/refresh', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
        assert.equal(refreshed.status, 200, await refreshed.clone().text());
        jar.update(refreshed);
        assert.deepEqual(assertions, ['authorization_code', 'refresh_token']);
        const logout = await at(w, origin).fetch('/auth/logout', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
        assert.equal(logout.status, 200);
        assert.equal(revoked.length, 1, 'the refresh token was revoked with a client assertion');
        const logs = w.logs.join('\n');
        assert.ok(!logs.includes(key.d), 'the private key never appears in a log line');
      } finally {
        await w.close();
        await idp.close();
      }
    });
  }

  test('a key set signs with its first key; CLIENT_ASSERTION_AUDIENCE=endpoint is accepted', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const current = privateJwk('ES256', 'current');
    const previous = privateJwk('RS256', 'previous');
    // The provider knows only the current key: a login works only if it signs.
    const idp = await startProvider({ redirectOrigin: origin, tokenEndpointAuthMethod: 'private_key_jwt', clientJwks: { keys: [publicOf(current)] } });
    const w = await workerAt(port, idp, {
      CLIENT_AUTH: 'private_key_jwt',
      CLIENT_PRIVATE_KEY: JSON.stringify({ keys: [current, previous] }),
      CLIENT_ASSERTION_AUDIENCE: 'endpoint',
    });
    try {
      const published = await (await at(w, origin).fetch('/auth/jwks')).json();
      assert.deepEqual(published.keys.map((k) => k.kid), ['current', 'previous'], 'both published, for rotation');
      const { callbackResponse } = await login(at(w, origin), { base: origin });
      assert.equal(callbackResponse.headers.get('location'), '/');
    } finally {
      await w.close();
      await idp.close();
    }
  });

  test('a key the provider does not know: token_exchange_failed, no session', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin, tokenEndpointAuthMethod: 'private_key_jwt', clientJwks: { keys: [publicOf(privateJwk('ES256', 'registered'))] } });
    const w = await workerAt(port, idp, { CLIENT_AUTH: 'private_key_jwt', CLIENT_PRIVATE_KEY: JSON.stringify(privateJwk('ES256', 'registered')) });
    try {
      const { callbackResponse, jar } = await login(at(w, origin), { base: origin });
      assert.equal(callbackResponse.headers.get('location'), '/?auth_error=token_exchange_failed');
      assert.equal(jar.get('__Host-bff-session'), undefined);
    } finally {
      await w.close();
      await idp.close();
    }
  });

  test('a provider that refuses the issuer as the assertion\'s audience: token_exchange_failed, and CLIENT_ASSERTION_AUDIENCE=endpoint fixes it', async () => {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787' });
    const key = privateJwk('EdDSA', 'ed-1');
    idp.assertionKeys = { keys: [publicOf(key)] };
    idp.assertionAudience = 'endpoint';
    try {
      for (const [audience, expected] of [[undefined, '/?auth_error=token_exchange_failed'], ['endpoint', '/']]) {
        const w = await startWorker({
          OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(),
          CLIENT_AUTH: 'private_key_jwt', CLIENT_PRIVATE_KEY: JSON.stringify(key), ...(audience ? { CLIENT_ASSERTION_AUDIENCE: audience } : {}),
        });
        try {
          const jar = new CookieJar();
          const start = await w.fetch('/auth/login');
          jar.update(start);
          const authorize = await fetch(start.headers.get('location'), { redirect: 'manual' });
          const callback = await w.fetch(authorize.headers.get('location'), { headers: { cookie: jar.header() } });
          assert.equal(callback.headers.get('location'), expected, `CLIENT_ASSERTION_AUDIENCE=${audience ?? '(issuer)'}`);
        } finally {
          await w.close();
        }
      }
    } finally {
      await idp.close();
    }
  });

  test('without CLIENT_PRIVATE_KEY /auth/jwks is 404 not_found', async () => {
    const idp = await startProvider();
    const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys() });
    try {
      const res = await w.fetch('/auth/jwks');
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error, 'not_found');
    } finally {
      await w.close();
      await idp.close();
    }
  });
});

describe('pushed authorization requests (RFC 9126)', () => {
  test('a provider that requires PAR: /auth/login and /auth/login/start push, the browser carries only request_uri, AUTH_PARAMS go inside', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin, parRequired: true });
    const pushed = [];
    idp.provider.on('pushed_authorization_request.success', (ctx) => pushed.push({ ...ctx.oidc.params }));
    const w = await workerAt(port, idp, { CLIENT_SECRET: 'edge-bff-local-secret', ALLOWED_AUTH_PARAMS: 'prompt', AUTH_PARAMS: 'ui_locales=de-CH' });
    try {
      const start = await at(w, origin).fetch('/auth/login');
      assert.equal(start.status, 302);
      const url = new URL(start.headers.get('location'));
      assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
      assert.match(url.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
      assert.equal(pushed.length, 1);
      assert.equal(pushed[0].ui_locales, 'de-CH', 'AUTH_PARAMS are pushed');
      assert.equal(pushed[0].code_challenge_method, 'S256');

      const { callbackResponse } = await login(at(w, origin), { base: origin });
      assert.equal(callbackResponse.headers.get('location'), '/', 'a whole login through PAR');

      const json = await at(w, origin).fetch('/auth/login/start', { method: 'POST', headers: { 'x-csrf': '1' } });
      assert.equal(json.status, 200);
      assert.ok(new URL((await json.json()).authorization_url).searchParams.get('request_uri'));
    } finally {
      await w.close();
      await idp.close();
    }
  });

  test('PAR=on pushes with a provider that does not require it; PAR=off never does', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin });
    try {
      for (const [par, pushes] of [['on', true], ['off', false]]) {
        const w = await workerAt(port, idp, { CLIENT_SECRET: 'edge-bff-local-secret', PAR: par });
        try {
          const res = await at(w, origin).fetch('/auth/login');
          assert.equal(res.status, 302);
          const url = new URL(res.headers.get('location'));
          assert.equal(Boolean(url.searchParams.get('request_uri')), pushes, `PAR=${par}`);
          assert.equal(Boolean(url.searchParams.get('state')), !pushes, `PAR=${par}`);
        } finally {
          await w.close();
        }
      }
    } finally {
      await idp.close();
    }
  });

  test('a failing PAR endpoint: /login redirects to the error page, /login/start is 502 idp_unavailable', async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin, parRequired: true });
    // A wrong secret: the PAR endpoint answers 401 invalid_client.
    const w = await workerAt(port, idp, { CLIENT_SECRET: 'not-the-secret', LOGIN_ERROR_PATH: '/oops' });
    try {
      const nav = await at(w, origin).fetch('/auth/login');
      assert.equal(nav.status, 302);
      assert.equal(nav.headers.get('location'), '/oops?auth_error=idp_unavailable');
      assert.equal(nav.headers.getSetCookie().length, 0, 'no login cookie for a login that did not start');
      const json = await at(w, origin).fetch('/auth/login/start', { method: 'POST', headers: { 'x-csrf': '1' } });
      assert.equal(json.status, 502);
      assert.equal((await json.json()).error, 'idp_unavailable');
      assert.ok(!w.logs.join('\n').includes('not-the-secret'));
    } finally {
      await w.close();
      await idp.close();
    }
  });

  test('PAR=on with a provider that has no PAR endpoint is a configuration error', async () => {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787' });
    const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(), PAR: 'on' });
    try {
      const res = await w.fetch('/auth/login');
      assert.equal(res.status, 500);
      assert.equal((await res.json()).error, 'configuration_error');
      assert.match(w.logs.join('\n'), /PAR=on/);
    } finally {
      await w.close();
      await idp.close();
    }
  });
});

describe('AUTH_PARAMS', () => {
  test('fixed parameters ride on every authorization request; a caller cannot override them', async () => {
    const idp = await startProvider();
    const w = await startWorker({
      OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(),
      AUTH_PARAMS: 'audience=https%3A%2F%2Fapi.example.com&organization=org_123',
    });
    try {
      const res = await w.fetch('/auth/login?audience=https://evil.example&prompt=login');
      const q = new URL(res.headers.get('location')).searchParams;
      assert.deepEqual(q.getAll('audience'), ['https://api.example.com']);
      assert.equal(q.get('organization'), 'org_123');
      assert.equal(q.get('prompt'), 'login');
      const jar = new CookieJar();
      jar.update(res);
      const callbackUrl = await authorizeAtProvider(res.headers.get('location'));
      const callback = await w.fetch(callbackUrl, { headers: { cookie: jar.header() } });
      assert.equal(callback.headers.get('location'), '/', 'the provider accepts the login');
    } finally {
      await w.close();
      await idp.close();
    }
  });
});

describe('END_SESSION_URL', () => {
  test('a provider without end_session_endpoint: logout_url is the configured URL with its placeholders filled', async () => {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787' });
    const w = await startWorker({
      OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(),
      END_SESSION_URL: 'https://auth.example.com/logout?client_id={client_id}&logout_uri={post_logout_redirect_uri}&id_token_hint={id_token_hint}',
    });
    try {
      const jar = new CookieJar();
      const start = await w.fetch('/auth/login');
      jar.update(start);
      const authorize = await fetch(start.headers.get('location'), { redirect: 'manual' });
      jar.update(await w.fetch(authorize.headers.get('location'), { headers: { cookie: jar.header() } }));
      const out = await w.fetch('/auth/logout', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
      assert.equal(out.status, 200);
      const url = new URL((await out.json()).logout_url);
      assert.equal(url.origin + url.pathname, 'https://auth.example.com/logout');
      assert.equal(url.searchParams.get('client_id'), idp.clientId);
      assert.equal(url.searchParams.get('logout_uri'), 'http://localhost:8787/');
      assert.equal(url.searchParams.get('id_token_hint').split('.').length, 3, 'the session\'s ID token');
      const anonymous = await w.fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf': '1' } });
      const bare = new URL((await anonymous.json()).logout_url);
      assert.equal(bare.searchParams.get('id_token_hint'), null, 'no session, no hint');
      assert.equal(bare.searchParams.get('client_id'), idp.clientId);
    } finally {
      await w.close();
      await idp.close();
    }
  });
});
