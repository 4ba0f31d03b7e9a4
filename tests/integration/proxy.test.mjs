// The API proxy against the built Worker, a real upstream HTTP server that records what
// it receives, and the real oidc-provider.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startProvider } from '../support/idp.mjs';
import { startUpstream, deterministicBytes } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { rawRequest } from '../support/http.mjs';

const TRUSTED = 'http://127.0.0.1:4444';
let idp;
let up;
let w;
let origin;
let jar;
let refreshes = 0;

/** A raw HTTP request (no URL normalisation, any header) to the Worker. */
const raw = (path, init) => rawRequest(new URL(origin).port, path, init);

// Both session paths run every test: without a KV binding a proxied call with a valid
// cookie session takes the direct path (src/proxy/direct.rs); with the SESSIONS binding the
// cookie session also needs the back-channel deny-list lookup, so the full path runs.
for (const kv of [false, true]) {
  describe(kv ? 'SESSIONS bound: the full path' : 'no KV binding: the direct path', () => {
    before(async () => {
      const port = await freePort();
      origin = `http://localhost:${port}`;
      idp = await startProvider({ redirectOrigin: origin });
      idp.provider.on('grant.success', (ctx) => {
        if (ctx.oidc.params.grant_type === 'refresh_token') refreshes++;
      });
      up = await startUpstream();
      const closed = await freePort();
      w = await startWorker(
        {
          OIDC_ISSUER: idp.issuer,
          CLIENT_ID: 'edge-bff',
          CLIENT_SECRET: 'edge-bff-local-secret',
          PUBLIC_ORIGIN: origin,
          COOKIE_KEYS: newCookieKeys(),
          TRUSTED_ORIGINS: TRUSTED,
          API_ROUTES: JSON.stringify([
            { prefix: '/api/', upstream: `${up.base}/v1/` },
            { prefix: '/public/', upstream: `${up.base}/pub/`, token: 'none' },
            { prefix: '/readonly/', upstream: `${up.base}/ro/`, methods: ['GET'] },
            { prefix: '/down/', upstream: `http://127.0.0.1:${closed}/` },
          ]),
        },
        { port, kv },
      );
      // The login helper dispatches to the fixed BASE; use the listening origin instead.
      ({ jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin }));
    });

    after(async () => {
      await w?.close();
      await up?.close();
      await idp?.close();
    });

    const withSession = (extra = {}) => ({ cookie: jar.header(), 'x-csrf': '1', ...extra });
    const lastSeen = () => up.seen[up.seen.length - 1];

    describe('forwarding', () => {
      test('the upstream gets the provider\'s access token as Bearer, the query, and forwarding headers', async () => {
        const res = await raw('/api/things/7?x=1&y=two%20words', { headers: withSession({ 'cf-connecting-ip': '203.0.113.5' }) });
        assert.equal(res.status, 200, res.body.toString());
        const got = lastSeen();
        assert.equal(got.path, '/v1/things/7');
        assert.equal(got.url, '/v1/things/7?x=1&y=two%20words');
        const bearer = /^Bearer (.+)$/.exec(got.headers.authorization)?.[1];
        assert.ok(bearer, 'Authorization: Bearer');
        // The provider itself accepts the token: it is the provider's access token.
        const userinfo = await fetch(`${idp.issuer}/me`, { headers: { authorization: `Bearer ${bearer}` } });
        assert.equal(userinfo.status, 200);
        assert.equal((await userinfo.json()).sub, 'demo-user-0001');
        assert.equal(got.headers['x-forwarded-proto'], 'http');
        assert.equal(got.headers['x-forwarded-host'], new URL(origin).host);
        assert.match(got.headers['x-forwarded-for'] ?? '', /203\.0\.113\.5/);
      });

      test('no edge-bff cookie, no browser Authorization, no hop-by-hop header reaches the upstream', async () => {
        const res = await raw('/api/echo', {
          headers: withSession({
            cookie: `${jar.header()}; theme=dark; __Host-bff-login=x; __Host-bff-session.3=y`,
            authorization: 'Basic YnJvd3NlcjpzZWNyZXQ=',
            connection: 'keep-alive, x-private-hop',
            'x-private-hop': 'secret',
            'keep-alive': 'timeout=5',
            te: 'trailers',
            'proxy-authorization': 'Basic eA==',
          }),
        });
        assert.equal(res.status, 200);
        const h = lastSeen().headers;
        assert.equal(h.cookie, 'theme=dark', 'only the app\'s own cookies pass');
        assert.match(h.authorization, /^Bearer /);
        assert.ok(!h.authorization.includes('YnJvd3Nlcjpzd'), 'browser Authorization replaced');
        for (const name of ['x-private-hop', 'keep-alive', 'te', 'proxy-authorization', 'upgrade']) {
          assert.equal(h[name], undefined, name);
        }
        assert.ok(!JSON.stringify(lastSeen().rawHeaders).includes('__Host-bff'), 'no edge-bff cookie in any header');
      });

      test('path traversal never leaves the upstream base path', async () => {
        const before = up.seen.length;
        const attempts = ['/api/../secret', '/api/%2e%2e/secret', '/api/a/%2e%2e/%2e%2e/secret', '/api/..%2fsecret', '/api/%2f%2fevil.example/x', '/api/a%5c..%5c..%5csecret', '/api/.%2e/secret', '/api/%2E%2E%2Fsecret'];
        for (const path of attempts) {
          const res = await raw(path, { headers: withSession() });
          assert.ok([400, 404].includes(res.status), `${path} → ${res.status}`);
          if (res.status === 400) assert.equal(JSON.parse(res.body).error, 'invalid_request');
        }
        for (const seen of up.seen.slice(before)) {
          assert.ok(seen.path.startsWith('/v1/'), `upstream saw ${seen.path}`);
        }
        assert.equal((await raw('/api/..%2fsecret', { headers: withSession() })).status, 400, 'encoded slash is refused by the proxy itself');
        const inside = await raw('/api/a/b/../c', { headers: withSession() });
        assert.equal(inside.status, 200);
        assert.equal(lastSeen().path, '/v1/a/c');
      });

      test('a 1 MB binary body arrives byte-identical in both directions', async () => {
        const payload = deterministicBytes(1024 * 1024);
        const sha = createHash('sha256').update(payload).digest('hex');
        const res = await raw('/api/upload', { method: 'POST', headers: withSession({ 'content-type': 'application/octet-stream' }), body: payload });
        assert.equal(res.status, 200);
        assert.equal(lastSeen().bodyLength, payload.length);
        assert.equal(lastSeen().bodySha256, sha, 'upstream received the exact bytes');
        assert.equal(createHash('sha256').update(res.body).digest('hex'), sha, 'browser received the exact bytes');
        const down = await raw(`/api/bytes?n=${1024 * 1024}`, { headers: withSession() });
        assert.equal(down.status, 200);
        assert.equal(down.body.length, 1024 * 1024);
        assert.equal(createHash('sha256').update(down.body).digest('hex'), sha);
      });

      test('upstream Set-Cookie is dropped; upstream errors stream back unchanged', async () => {
        const res = await raw('/api/set-cookie', { headers: withSession() });
        assert.equal(res.status, 200);
        assert.equal(res.headers['set-cookie'], undefined);
        const e = await raw('/api/status/503', { headers: withSession() });
        assert.equal(e.status, 503);
        assert.deepEqual(JSON.parse(e.body), { status: 503 });
      });

      test('upstream response headers pass unchanged but for Set-Cookie; the runtime never passes connection-level ones', async () => {
        const res = await raw('/api/hop-by-hop', { headers: withSession() });
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), 'hop');
        assert.equal(res.headers['x-kept'], 'yes');
        // `connection` and `keep-alive` may be the runtime's own for the browser's connection,
        // never the upstream's values.
        assert.ok(!/x-private-hop/.test(res.headers.connection ?? ''), res.headers.connection);
        assert.notEqual(res.headers['keep-alive'], 'timeout=5');
        for (const name of ['trailer', 'upgrade', 'te']) assert.equal(res.headers[name], undefined, name);
        // docs/api.md section 4: every other header streams back unchanged.
        assert.equal(res.headers['proxy-authenticate'], 'Basic realm="upstream"');
      });

      test('upstream unreachable: 502 upstream_unavailable', async () => {
        const res = await raw('/down/anything', { headers: withSession() });
        assert.equal(res.status, 502);
        assert.equal(JSON.parse(res.body).error, 'upstream_unavailable');
      });

      test('token: none routes need no session, add no token, still strip edge-bff cookies', async () => {
        const res = await raw('/public/info', { headers: { 'x-csrf': '1', cookie: `${jar.header()}; a=b` } });
        assert.equal(res.status, 200);
        assert.equal(lastSeen().path, '/pub/info');
        assert.equal(lastSeen().headers.authorization, undefined);
        assert.equal(lastSeen().headers.cookie, 'a=b');
      });

      test('methods outside a route\'s list: 405 with Allow, upstream not called', async () => {
        const before = up.seen.length;
        const res = await raw('/readonly/x', { method: 'DELETE', headers: withSession() });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'GET');
        assert.equal(up.seen.length, before);
      });
    });

    describe('refusals before the upstream', () => {
      test('CSRF, Origin and cross-site refusals: 403, upstream never called', async () => {
        // Through dispatchFetch: Miniflare's own listener resets connections that carry a
        // foreign localhost or null Origin (its protection for local dev servers).
        const before = up.seen.length;
        for (const headers of [
          { cookie: jar.header() },
          withSession({ origin: 'https://evil.example' }),
          withSession({ origin: 'null' }),
          withSession({ 'sec-fetch-site': 'cross-site' }),
          withSession({ 'sec-fetch-site': 'same-site', origin: 'http://localhost:1' }),
        ]) {
          for (const method of ['GET', 'POST']) {
            const res = await w.mf.dispatchFetch(new URL('/api/echo', origin), { method, headers, body: method === 'POST' ? 'x' : undefined });
            assert.equal(res.status, 403, `${method} ${JSON.stringify(headers).slice(0, 80)}`);
            assert.equal(JSON.parse(await res.text()).error, 'csrf_check_failed');
          }
        }
        assert.equal(up.seen.length, before, 'upstream never called');
      });

      test('no session: 401 unauthorized, upstream not called', async () => {
        const before = up.seen.length;
        const res = await raw('/api/echo', { headers: { 'x-csrf': '1' } });
        assert.equal(res.status, 401);
        assert.equal(JSON.parse(res.body).error, 'unauthorized');
        const tampered = await raw('/api/echo', { headers: { 'x-csrf': '1', cookie: '__Host-bff-session=k1.AAAA' } });
        assert.equal(tampered.status, 401);
        assert.equal(up.seen.length, before);
      });
    });

    describe('CORS', () => {
      test('a trusted origin gets credentials CORS and Vary: Origin; another origin gets none', async () => {
        const ok = await raw('/api/echo', { headers: withSession({ origin: TRUSTED }) });
        assert.equal(ok.status, 200);
        assert.equal(ok.headers['access-control-allow-origin'], TRUSTED);
        assert.equal(ok.headers['access-control-allow-credentials'], 'true');
        assert.match(ok.headers.vary ?? '', /Origin/);
        const own = await raw('/api/echo', { headers: withSession({ origin }) });
        assert.equal(own.headers['access-control-allow-origin'], undefined);
        assert.match(own.headers.vary ?? '', /Origin/);
        const evil = await raw('/api/echo', { headers: withSession({ origin: 'https://evil.example' }) });
        assert.equal(evil.headers['access-control-allow-origin'], undefined);
      });

      test('preflight: answered before the CSRF check for a trusted origin only', async () => {
        const before = up.seen.length;
        const pre = await raw('/readonly/x', { method: 'OPTIONS', headers: { origin: TRUSTED, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-csrf' } });
        assert.equal(pre.status, 204);
        assert.equal(pre.headers['access-control-allow-origin'], TRUSTED);
        assert.equal(pre.headers['access-control-allow-methods'], 'GET');
        assert.match(pre.headers['access-control-allow-headers'], /X-CSRF/);
        assert.equal(pre.headers['access-control-allow-credentials'], 'true');
        const agent = await raw('/auth/logout', { method: 'OPTIONS', headers: { origin: TRUSTED, 'access-control-request-method': 'POST' } });
        assert.equal(agent.status, 204);
        assert.equal(agent.headers['access-control-allow-methods'], 'GET, POST');
        const evil = await raw('/api/x', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
        assert.equal(evil.status, 403);
        assert.equal(evil.headers['access-control-allow-origin'], undefined);
        assert.equal(up.seen.length, before, 'preflights never reach the upstream');
      });
    });

    describe('upstream 401', () => {
      test('a safe method: one refresh and one retry', async () => {
        const before = refreshes;
        const calls = up.seen.length;
        const res = await raw('/api/unauthorized-once?id=a', { headers: withSession() });
        assert.equal(res.status, 200, res.body.toString());
        assert.equal(refreshes, before + 1, 'one refresh');
        assert.equal(up.seen.length, calls + 2, 'one retry');
        assert.notEqual(up.seen[calls].headers.authorization, up.seen[calls + 1].headers.authorization, 'retried with the new token');
        const set = [].concat(res.headers['set-cookie'] ?? []);
        assert.ok(set.some((c) => c.startsWith('__Host-bff-session=')), 'refreshed session written back');
        jar.set('__Host-bff-session', set.find((c) => c.startsWith('__Host-bff-session=')).split(';')[0].split('=').slice(1).join('='));
      });

      test('a second 401 becomes token_rejected; a POST is rejected at once', async () => {
        const calls = up.seen.length;
        const res = await raw('/api/always-401', { headers: withSession() });
        assert.equal(res.status, 401);
        assert.equal(JSON.parse(res.body).error, 'token_rejected');
        assert.equal(up.seen.length, calls + 2);
        const set = [].concat(res.headers['set-cookie'] ?? []);
        const fresh = set.find((c) => c.startsWith('__Host-bff-session='));
        if (fresh) jar.set('__Host-bff-session', fresh.split(';')[0].split('=').slice(1).join('='));
        const post = await raw('/api/always-401', { method: 'POST', headers: withSession(), body: 'payload' });
        assert.equal(post.status, 401);
        assert.equal(JSON.parse(post.body).error, 'token_rejected');
        assert.equal(up.seen.length, calls + 3, 'no retry for POST');
      });
    });

  });
}

test('without TRUSTED_ORIGINS: no CORS headers, no Vary: Origin, the upstream\'s headers as they are', async () => {
  const port = await freePort();
  const o = `http://localhost:${port}`;
  const p = await startProvider({ redirectOrigin: o });
  const up2 = await startUpstream({ record: false });
  const w2 = await startWorker(
    { OIDC_ISSUER: p.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: o, COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up2.base}/` }]) },
    { port, kv: false },
  );
  try {
    const { jar: j } = await login({ fetch: (path, init = {}) => fetch(new URL(path, o), { redirect: 'manual', ...init }) }, { base: o });
    for (const origin of [undefined, o]) {
      const res = await fetch(`${o}/api/hop-by-hop`, { headers: { cookie: j.header(), 'x-csrf': '1', ...(origin ? { origin } : {}) } });
      assert.equal(res.status, 200, String(origin));
      assert.equal(res.headers.get('x-kept'), 'yes');
      assert.equal(res.headers.get('vary'), null, `nothing varies on Origin (${origin})`);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      await res.arrayBuffer();
    }
  } finally {
    await w2.close();
    await up2.close();
    await p.close();
  }
});

test('an access token expiring within 30 s is refreshed before forwarding', async () => {
  const port = await freePort();
  const o = `http://localhost:${port}`;
  const p = await startProvider({ redirectOrigin: o, accessTokenTtl: 20 });
  const up2 = await startUpstream({ record: false });
  let n = 0;
  p.provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') n++;
  });
  const w2 = await startWorker(
    { OIDC_ISSUER: p.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: o, COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up2.base}/v1/` }]) },
    // No KV binding: the decision to refresh first is the direct path's to refuse.
    { port, kv: false },
  );
  try {
    const { jar: j } = await login({ fetch: (path, init = {}) => fetch(new URL(path, o), { redirect: 'manual', ...init }) }, { base: o });
    const res = await fetch(`${o}/api/echo`, { headers: { cookie: j.header(), 'x-csrf': '1' } });
    assert.equal(res.status, 200);
    assert.equal(n, 1, 'refreshed before the call');
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session=')));
  } finally {
    await w2.close();
    await up2.close();
    await p.close();
  }
});
