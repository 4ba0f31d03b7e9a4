// Provider interop (docs/api.md section 2 CLIENT_AUTH, CLIENT_PRIVATE_KEY, AUTH_PARAMS, PAR;
// section 3 /jwks; docs/security.md group 13) against the built Worker and the real
// oidc-provider: private_key_jwt client assertions (RFC 7523) for the code exchange,
// refresh and revocation, the Worker's /auth/jwks as the client's jwks_uri, pushed
// authorization requests (RFC 9126), fixed authorization parameters, and DPoP (RFC 9449)
// against the provider requiring bound tokens and nonces and a resource server that
// verifies proofs (tests/support/dpop-api.mjs).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider, TENANT_A, TENANT_B } from '../support/test-idp.mjs';
import { loginOnce } from '../support/login.mjs';
import { startWorker, newCookieKeys, freePort } from '../support/worker.mjs';
import { CookieJar } from '../support/http.mjs';
import { login, authorizeAtProvider } from '../support/login.mjs';
import { startDpopApi } from '../support/dpop-api.mjs';
import { calculateJwkThumbprint } from 'jose';

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
async function workerAt(port, idp, bindings, options = {}) {
  return startWorker(
    { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', PUBLIC_ORIGIN: `http://localhost:${port}`, COOKIE_KEYS: newCookieKeys(), ...bindings },
    { port, ...options },
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

describe('DPoP (RFC 9449)', () => {
  /**
   * The provider requiring DPoP-bound tokens and nonces, a resource server verifying
   * proofs against the provider's record of each token's key, and the Worker with
   * `DPOP_KEY` (and the `SESSIONS` KV binding when `kv`: then every proxied call takes
   * the full path; without it cookie sessions take the direct path).
   */
  async function dpopStack({ alg = 'ES256', kv = false, api: apiOptions = { nonce: true }, bindings = {}, idpOptions = () => ({}), routes = (api) => [{ prefix: '/api/', upstream: `${api.url}/v1/` }] } = {}) {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const idp = await startProvider({ redirectOrigin: origin, dpopRequired: true, dpopNonce: true, ...idpOptions(origin) });
    // A JWT access token (a route's or the app's, for a resource) names its key in
    // `cnf.jkt`; an opaque one is looked up at the provider.
    const tokenJkt = async (token) =>
      token.split('.').length === 3
        ? JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).cnf?.jkt
        : (await idp.provider.AccessToken.find(token))?.jkt;
    const api = await startDpopApi({ tokenJkt, ...apiOptions });
    const key = privateJwk(alg, `dpop-${alg}`);
    const common = {
      CLIENT_SECRET: 'edge-bff-local-secret',
      API_ROUTES: JSON.stringify(routes(api)),
      COOKIE_KEYS: newCookieKeys(),
    };
    const w = await workerAt(port, idp, { ...common, DPOP_KEY: JSON.stringify(key), ...bindings }, { kv });
    const call = (path, init = {}, jar) =>
      at(w, origin).fetch(path, { ...init, headers: { cookie: jar.header(), 'x-csrf': '1', ...(init.headers ?? {}) } });
    return {
      port, origin, idp, api, key, w, common, call,
      jkt: await calculateJwkThumbprint(publicOf(key)),
      close: async () => {
        await w.close();
        await api.close();
        await idp.close();
      },
    };
  }

  const verdicts = (api, from = 0) => api.seen.slice(from).map((r) => r.verdict);

  for (const kv of [false, true]) {
    test(`${kv ? 'full' : 'direct'} path: DPoP-bound route and app-only tokens (resource indicators, client credentials)`, async () => {
      const billing = 'https://billing.example/';
      const s = await dpopStack({
        kv,
        idpOptions: () => ({
          resourceServers: { [billing]: 'billing:read' },
          clientCredentials: true,
          clientScope: 'openid profile email offline_access billing:read',
        }),
        bindings: { SCOPES: 'openid profile email billing:read' },
        routes: (api) => [
          { prefix: '/billing/', upstream: `${api.url}/b/`, token_request: { resource: billing } },
          { prefix: '/app/', upstream: `${api.url}/app/`, token: 'client', token_request: { resource: billing, scope: 'billing:read' } },
        ],
      });
      try {
        const { jar } = await login(at(s.w, s.origin), { base: s.origin });
        for (const path of ['/billing/1', '/billing/2', '/app/1', '/app/2']) {
          const r = await s.call(path, {}, jar);
          jar.update(r);
          assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
          assert.equal((await r.json()).jkt, s.jkt, `${path}: the token is bound to DPOP_KEY`);
        }
        const accepted = s.api.seen.filter((r) => r.verdict === 'accepted');
        assert.equal(accepted.length, 4, 'every call was sent once more at most (a nonce), then accepted');
        for (const r of accepted) assert.match(r.authorization, /^DPoP ey/, 'a DPoP-bound JWT');
        const aud = (r) => JSON.parse(Buffer.from(r.authorization.split(' ')[1].split('.')[1], 'base64url')).aud;
        assert.ok(accepted.every((r) => aud(r) === billing), 'both tokens are the resource\'s');
      } finally {
        await s.close();
      }
    });
  }

  for (const [alg, kv] of [['ES256', false], ['EdDSA', false], ['ES256', true]]) {
    test(`${alg}, ${kv ? 'full' : 'direct'} path: bound code, proofs with nonces at the token endpoint, upstream and UserInfo, refresh`, async () => {
      const s = await dpopStack({ alg, kv });
      const tokenErrors = [];
      s.idp.provider.on('grant.error', (_ctx, err) => tokenErrors.push(err.error));
      try {
        const { jar, loginResponse, callbackResponse } = await login(at(s.w, s.origin), { base: s.origin });
        assert.deepEqual(tokenErrors, ['use_dpop_nonce'], 'the code exchange met the provider\'s nonce once');
        assert.equal(new URL(loginResponse.headers.get('location')).searchParams.get('dpop_jkt'), s.jkt, 'the code is bound to DPOP_KEY');
        assert.equal(callbackResponse.headers.get('location'), '/', 'a provider that requires DPoP and nonces issued tokens');

        // First call: the API asks for its nonce, the safe method is sent again with it.
        const first = await s.call('/api/things/1?x=1', { headers: { dpop: 'forged-by-the-browser' } }, jar);
        assert.equal(first.status, 200, await first.clone().text());
        assert.equal((await first.json()).jkt, s.jkt, 'the token is bound to DPOP_KEY');
        assert.deepEqual(verdicts(s.api), ['no nonce', 'accepted']);
        const [challenged, accepted] = s.api.seen;
        assert.match(challenged.authorization, /^DPoP /);
        assert.notEqual(challenged.dpop, 'forged-by-the-browser');
        assert.equal(accepted.claims.htu, `${s.api.url}/v1/things/1`);
        assert.equal(accepted.claims.htm, 'GET');
        assert.ok(accepted.claims.nonce);

        // The nonce is remembered: the next call needs one request.
        const second = await s.call('/api/things/2', {}, jar);
        assert.equal(second.status, 200);
        assert.deepEqual(verdicts(s.api, 2), ['accepted']);

        // A new nonce on an unsafe method: not resent (token_rejected), but remembered.
        s.api.rotateNonce();
        const post = await s.call('/api/things', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }, jar);
        assert.equal(post.status, 401);
        assert.equal((await post.json()).error, 'token_rejected');
        const again = await s.call('/api/things', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }, jar);
        assert.equal(again.status, 200, 'the remembered nonce serves the next call');
        assert.deepEqual(verdicts(s.api, 3), ['stale nonce', 'accepted']);

        // UserInfo with a proof (the provider requires its nonce there too).
        const userinfo = await s.call('/auth/userinfo', {}, jar);
        assert.equal(userinfo.status, 200, await userinfo.clone().text());
        assert.equal((await userinfo.json()).sub, 'demo-user-0001');

        // Refresh with a proof: the new token is bound to the same key and works upstream.
        const before = s.api.seen.at(-1).authorization;
        const refreshed = await s.call('/auth/refresh', { method: 'POST' }, jar);
        assert.equal(refreshed.status, 200, await refreshed.clone().text());
        jar.update(refreshed);
        assert.deepEqual(tokenErrors, ['use_dpop_nonce'], 'the refresh used the nonce the isolate kept: no second challenge');
        const after = await s.call('/api/things/3', {}, jar);
        assert.equal(after.status, 200);
        assert.equal((await after.json()).jkt, s.jkt);
        assert.notEqual(s.api.seen.at(-1).authorization, before, 'the refreshed token');

        const jtis = s.api.seen.filter((r) => r.claims).map((r) => r.claims.jti);
        assert.equal(new Set(jtis).size, jtis.length, 'a fresh jti per proof');
        const logs = s.w.logs.join('\n');
        assert.ok(!logs.includes(s.key.d), 'the DPoP key never appears in a log line');
        for (const r of s.api.seen) assert.ok(!logs.includes(r.authorization.split(' ')[1]), 'no access token in the logs');
      } finally {
        await s.close();
      }
    });
  }

  test('a strict provider (the dev stack\'s --strict): PAR required, DPoP with nonces, private_key_jwt only', async () => {
    const clientKey = privateJwk('ES256', 'client-1');
    const s = await dpopStack({
      idpOptions: (origin) => ({ parRequired: true, tokenEndpointAuthMethod: 'private_key_jwt', clientJwksUri: `${origin}/auth/jwks` }),
      bindings: { CLIENT_AUTH: 'private_key_jwt', CLIENT_PRIVATE_KEY: JSON.stringify(clientKey), CLIENT_SECRET: '' },
    });
    const grants = [];
    s.idp.provider.on('grant.success', (ctx) => grants.push(ctx.oidc.params.grant_type));
    const revoked = [];
    s.idp.provider.on('grant.revoked', () => revoked.push(true));
    try {
      const { jar, loginResponse, callbackResponse } = await login(at(s.w, s.origin), { base: s.origin });
      assert.deepEqual([...new URL(loginResponse.headers.get('location')).searchParams.keys()].sort(), ['client_id', 'request_uri']);
      assert.equal(callbackResponse.headers.get('location'), '/', 'the nonce resend carried a fresh client assertion');
      const api = await s.call('/api/x', {}, jar);
      assert.equal(api.status, 200);
      const refreshed = await s.call('/auth/refresh', { method: 'POST' }, jar);
      assert.equal(refreshed.status, 200, await refreshed.clone().text());
      jar.update(refreshed);
      assert.deepEqual(grants, ['authorization_code', 'refresh_token']);
      const out = await s.call('/auth/logout', { method: 'POST' }, jar);
      assert.equal(out.status, 200);
      assert.equal(revoked.length, 1, 'revoked with a client assertion');
      assert.ok(!s.w.logs.join('\n').includes(clientKey.d));
    } finally {
      await s.close();
    }
  });

  test('an API whose nonce never settles: one resend, then token_rejected; the session stays', async () => {
    const s = await dpopStack({ api: { freshNonceEveryTime: true } });
    try {
      const { jar } = await login(at(s.w, s.origin), { base: s.origin });
      const r = await s.call('/api/things/1', {}, jar);
      assert.equal(r.status, 401);
      assert.equal((await r.json()).error, 'token_rejected');
      assert.deepEqual(verdicts(s.api), ['no nonce', 'stale nonce'], 'exactly one resend, with the nonce given');
      assert.ok(s.api.seen[1].claims.nonce);
      const session = await s.call('/auth/session', {}, jar);
      assert.equal(session.status, 200, 'an API refusing one call does not end the session');
    } finally {
      await s.close();
    }
  });

  test('a wrong key: the provider refuses a code bound to another key; an upstream refuses a proof by another key, and a refresh rebinds', async () => {
    const s = await dpopStack();
    const otherKey = privateJwk('ES256', 'dpop-other');
    // Same cookie keys and origin, another DPOP_KEY (as a deployment that rotated it).
    const other = await startWorker(
      { OIDC_ISSUER: s.idp.issuer, CLIENT_ID: 'edge-bff', PUBLIC_ORIGIN: s.origin, ...s.common, DPOP_KEY: JSON.stringify(otherKey) },
      { kv: false },
    );
    const callOther = (path, init, jar) =>
      at(other, s.origin).fetch(path, { ...init, headers: { cookie: jar.header(), 'x-csrf': '1', ...(init?.headers ?? {}) } });
    try {
      // The login starts with DPOP_KEY's dpop_jkt; the code is redeemed with the other key.
      const jar = new CookieJar();
      const start = await at(s.w, s.origin).fetch('/auth/login');
      jar.update(start);
      const callbackUrl = await authorizeAtProvider(start.headers.get('location'), { base: s.origin });
      const callback = await at(other, s.origin).fetch(callbackUrl, { headers: { cookie: jar.header() } });
      assert.equal(callback.status, 302);
      assert.match(callback.headers.get('location'), /auth_error=token_exchange_failed/, 'the code is bound to the first key');

      // A session whose token is bound to the first key, used by the Worker with the other.
      const { jar: session } = await login(at(s.w, s.origin), { base: s.origin });
      const r = await callOther('/api/things/1', {}, session);
      assert.equal(r.status, 200, await r.clone().text());
      assert.ok(verdicts(s.api).includes('proof key is not the token\'s'), 'the API refused the proof by another key');
      assert.equal((await r.json()).jkt, await calculateJwkThumbprint(publicOf(otherKey)), 'refreshed and bound to the new key');
    } finally {
      await other.close();
      await s.close();
    }
  });

  test('without DPOP_KEY a provider that requires DPoP issues no tokens', async () => {
    const s = await dpopStack();
    const plain = await startWorker(
      { OIDC_ISSUER: s.idp.issuer, CLIENT_ID: 'edge-bff', PUBLIC_ORIGIN: s.origin, ...s.common },
      { kv: false },
    );
    try {
      const jar = new CookieJar();
      const start = await at(plain, s.origin).fetch('/auth/login');
      jar.update(start);
      assert.equal(new URL(start.headers.get('location')).searchParams.get('dpop_jkt'), null);
      const callbackUrl = await authorizeAtProvider(start.headers.get('location'), { base: s.origin });
      const callback = await at(plain, s.origin).fetch(callbackUrl, { headers: { cookie: jar.header() } });
      assert.match(callback.headers.get('location'), /auth_error=token_exchange_failed/);
    } finally {
      await plain.close();
      await s.close();
    }
  });

  test('DPOP_KEY must be one ES256 or EdDSA private JWK; the log names the setting, never the key', async () => {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787' });
    try {
      const two = { keys: [privateJwk('ES256', 'a'), privateJwk('EdDSA', 'b')] };
      const rsa = privateJwk('RS256', 'r');
      for (const [bad, secret] of [[rsa, rsa.d], [publicOf(privateJwk('ES256', 'p'))], [two, two.keys[0].d]]) {
        const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(), DPOP_KEY: JSON.stringify(bad) });
        try {
          const r = await w.fetch('/auth/session');
          assert.equal(r.status, 500);
          assert.equal((await r.json()).error, 'configuration_error');
          const logs = w.logs.join('\n');
          assert.match(logs, /configuration error: DPOP_KEY/);
          if (secret) assert.ok(!logs.includes(secret), 'the key is not echoed');
        } finally {
          await w.close();
        }
      }
    } finally {
      await idp.close();
    }
  });
});

describe('multi-tenant issuers (ALLOWED_TENANTS, Entra ID /organizations)', () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function stack(allowedTenants) {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787', multiTenant: true });
    const w = await startWorker({
      OIDC_ISSUER: idp.multiTenantIssuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret,
      PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(),
      ...(allowedTenants ? { ALLOWED_TENANTS: allowedTenants } : {}),
    });
    return { idp, w, close: async () => { await w.close(); await idp.close(); } };
  }
  const errorOf = (callback) => new URL(callback.headers.get('location'), 'http://x').searchParams.get('auth_error');

  test('without ALLOWED_TENANTS a template issuer is a configuration error (the exact rule of docs/api.md)', async () => {
    const s = await stack(null);
    try {
      const r = await s.w.fetch('/auth/login');
      assert.equal(r.status, 500);
      assert.equal((await r.json()).error, 'configuration_error');
      assert.match(s.w.logs.join('\n'), /another issuer/);
    } finally {
      await s.close();
    }
  });

  test('ALLOWED_TENANTS=*: a user of any tenant logs in; refresh and back-channel logout check the tenant\'s issuer', async () => {
    const s = await stack('*');
    try {
      for (const tid of [TENANT_A, TENANT_B]) {
        s.idp.scenario.tid = tid;
        const { callback, jar } = await loginOnce(s.w);
        assert.equal(callback.headers.get('location'), '/', `tenant ${tid}`);
        const session = await (await s.w.fetch('/auth/session', { headers: { cookie: jar.header() } })).json();
        assert.equal(session.user.tid, tid);
        assert.equal(session.user.iss, `${s.idp.issuer}/${tid}/v2.0`);
      }
      s.idp.scenario.tid = TENANT_A;
      const { jar } = await loginOnce(s.w);
      s.idp.scenario.refreshIdToken = {};
      const refreshed = await s.w.fetch('/auth/refresh', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
      assert.equal(refreshed.status, 200, 'a refreshed ID token of the same tenant');
      jar.update(refreshed);
      // Another (also accepted) tenant's ID token for the same sub: not the login's issuer.
      const { jar: other } = await loginOnce(s.w);
      s.idp.scenario.tid = TENANT_B;
      const moved = await s.w.fetch('/auth/refresh', { method: 'POST', headers: { cookie: other.header(), 'x-csrf': '1' } });
      assert.equal(moved.status, 401, 'a refreshed ID token of another tenant ends the session');
      assert.equal((await moved.json()).error, 'session_expired');
      s.idp.scenario.tid = TENANT_A;
      await sleep(1100);
      const token = await s.idp.logoutToken({ sub: 'user-1', sid: null });
      const out = await s.w.fetch('/auth/backchannel-logout', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `logout_token=${token}` });
      assert.equal(out.status, 200, await out.clone().text());
      assert.deepEqual(await (await s.w.fetch('/auth/session', { headers: { cookie: jar.header() } })).json(), { authenticated: false });
    } finally {
      await s.close();
    }
  });

  test('a listed tenant only; a token whose iss is not its own tid\'s issuer is refused', async () => {
    const s = await stack(TENANT_A);
    try {
      s.idp.scenario.tid = TENANT_A;
      assert.equal((await loginOnce(s.w)).callback.headers.get('location'), '/');

      s.idp.scenario.tid = TENANT_B;
      assert.equal(errorOf((await loginOnce(s.w)).callback), 'issuer_mismatch', 'the response iss names an unlisted tenant');
      s.idp.scenario.responseIss = null; // as Entra ID: no iss parameter
      assert.equal(errorOf((await loginOnce(s.w)).callback), 'invalid_id_token', 'the ID token\'s tenant is not listed');

      // Tenant A's token claiming tenant B's issuer (or none): refused.
      s.idp.scenario.tid = TENANT_A;
      s.idp.scenario.claims = { iss: `${s.idp.issuer}/${TENANT_B}/v2.0` };
      assert.equal(errorOf((await loginOnce(s.w)).callback), 'invalid_id_token');
      s.idp.scenario.claims = { tid: null };
      assert.equal(errorOf((await loginOnce(s.w)).callback), 'invalid_id_token', 'no tid');
      // The response's iss must be the ID token's issuer.
      s.idp.scenario.claims = {};
      s.idp.scenario.responseIss = `${s.idp.issuer}/${TENANT_A}/v2.0`;
      assert.equal((await loginOnce(s.w)).callback.headers.get('location'), '/');
    } finally {
      await s.close();
    }
  });

  test('ALLOWED_TENANTS must be * or tenant ids', async () => {
    const idp = await startTestProvider({ redirectOrigin: 'http://localhost:8787', multiTenant: true });
    const w = await startWorker({ OIDC_ISSUER: idp.multiTenantIssuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys(), ALLOWED_TENANTS: 'organizations' });
    try {
      const r = await w.fetch('/auth/session');
      assert.equal(r.status, 500);
      assert.match(w.logs.join('\n'), /configuration error: ALLOWED_TENANTS/);
    } finally {
      await w.close();
      await idp.close();
    }
  });
});
