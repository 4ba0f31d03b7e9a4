// Route tokens (docs/api.md section 4, "Route tokens") against the built Worker and the real
// oidc-provider with RFC 8707 resource indicators (two resource servers with their own
// scopes, JWT access tokens whose `aud` is the resource) and the client-credentials grant.
// The upstreams are resource servers that verify each token's signature and `aud`
// (tests/support/resource-api.mjs). Each case runs in both stores: cookies (the direct
// path serves a held route token) and KV (the full path).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startResourceApi } from '../support/resource-api.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, startFleet, newCookieKeys, BASE } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { CookieJar } from '../support/http.mjs';

const BILLING = 'https://billing.example/';
const REPORTS = 'urn:example:reports';
const PADDED = 'urn:example:padded';

describe('route tokens with the real oidc-provider (resource indicators, client credentials)', () => {
  let idp;
  let billing;
  let reports;
  let plain;
  const grants = [];
  const grantErrors = [];
  const workers = {};

  before(async () => {
    idp = await startProvider({
      redirectOrigin: BASE,
      resourceServers: { [BILLING]: 'billing:read billing:write', [REPORTS]: 'reports:read', [PADDED]: '' },
      paddedResource: PADDED,
      clientCredentials: true,
      clientScope: 'openid profile email offline_access billing:read reports:read',
    });
    idp.provider.on('grant.error', (_ctx, e) => grantErrors.push(e.error));
    // Every successful grant at the token endpoint, with the form it carried.
    idp.provider.on('grant.success', (ctx) => {
      const p = ctx.oidc.params;
      grants.push({ grant_type: p.grant_type, resource: p.resource, scope: p.scope, audience: ctx.oidc.body?.audience });
    });
    billing = await startResourceApi({ issuer: idp.issuer, resource: BILLING });
    reports = await startResourceApi({ issuer: idp.issuer, resource: REPORTS });
    plain = await startUpstream();
    const routes = [
      { prefix: '/api/', upstream: `${plain.base}/api/` },
      { prefix: '/billing/', upstream: `${billing.base}/b/`, token_request: { resource: BILLING } },
      { prefix: '/reports/', upstream: `${reports.base}/r/`, token_request: { resource: REPORTS, scope: 'reports:read' } },
      // The refresh token lacks this scope: the provider refuses (invalid_scope).
      { prefix: '/refused/', upstream: `${billing.base}/x/`, token_request: { resource: BILLING, scope: 'billing:admin' } },
      { prefix: '/padded/', upstream: `${billing.base}/p/`, token_request: { resource: PADDED } },
      { prefix: '/ws/', upstream: `${plain.base}/ws/`, websocket: true, token_request: { resource: BILLING } },
      { prefix: '/events/', upstream: `${plain.base}/ev/`, event_stream: true, token: 'client', token_request: { resource: REPORTS, scope: 'reports:read' } },
      { prefix: '/app/', upstream: `${billing.base}/app/`, token: 'client', token_request: { resource: BILLING, scope: 'billing:read' } },
      { prefix: '/either/', upstream: `${reports.base}/either/`, token: 'access_or_client', token_request: { resource: REPORTS } },
    ];
    const bindings = {
      OIDC_ISSUER: idp.issuer,
      CLIENT_ID: idp.client.client_id,
      CLIENT_SECRET: idp.client.client_secret,
      PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(),
      SCOPES: 'openid profile email billing:read reports:read',
      API_ROUTES: JSON.stringify(routes),
    };
    workers.cookie = await startWorker(bindings, { kv: false });
    workers.kv = await startWorker({ ...bindings, SESSION_STORE: 'kv' }, { kv: true });
  });

  after(async () => {
    for (const w of Object.values(workers)) await w.close();
    await Promise.all([billing.close(), reports.close(), plain.close()]);
    await idp.close();
  });

  const call = (w, jar, path, init = {}) =>
    w.fetch(path, { ...init, headers: { 'x-csrf': '1', cookie: jar.header(), ...(init.headers ?? {}) } });
  const routeGrants = () => grants.filter((g) => g.grant_type === 'refresh_token' && g.resource);

  for (const store of ['cookie', 'kv']) {
    test(`${store}: each upstream gets only its own token; the login route keeps the login's; one grant each, then reuse`, async () => {
      const w = workers[store];
      const { jar, loginResponse } = await login(w);
      // The authorization request names every route resource (RFC 8707 section 2.1).
      const authorize = new URL(loginResponse.headers.get('location'));
      assert.deepEqual(authorize.searchParams.getAll('resource'), [BILLING, REPORTS, PADDED]);

      const before = routeGrants().length;
      const [seenB, seenR] = [billing.seen.length, reports.seen.length];
      const b1 = await call(w, jar, '/billing/invoices');
      jar.update(b1);
      assert.equal(b1.status, 200, await b1.clone().text());
      assert.equal((await b1.json()).aud, BILLING);
      const r1 = await call(w, jar, '/reports/monthly');
      jar.update(r1);
      assert.equal(r1.status, 200);
      const r1body = await r1.json();
      assert.equal(r1body.aud, REPORTS);
      assert.equal(r1body.scope, 'reports:read');
      assert.equal(routeGrants().length - before, 2, 'one grant per route token');

      // Reuse: no grant for the next calls.
      for (const path of ['/billing/again', '/reports/again', '/billing/third']) {
        const r = await call(w, jar, path);
        jar.update(r);
        assert.equal(r.status, 200, path);
      }
      assert.equal(routeGrants().length - before, 2, 'held route tokens are reused');

      // Never another route's token: the billing API saw only billing tokens, and so on.
      const billingSeen = billing.seen.slice(seenB);
      const reportsSeen = reports.seen.slice(seenR);
      assert.equal(billingSeen.length, 3);
      assert.equal(reportsSeen.length, 2);
      const billingTokens = new Set(billingSeen.map((s) => s.token));
      const reportsTokens = new Set(reportsSeen.map((s) => s.token));
      assert.equal(billingTokens.size, 1, 'one billing token, reused');
      for (const t of billingTokens) assert.ok(!reportsTokens.has(t));
      assert.ok(billingSeen.every((s) => s.ok && s.aud === BILLING), JSON.stringify(billingSeen.map((s) => s.why)));
      assert.ok(reportsSeen.every((s) => s.ok && s.aud === REPORTS));

      // The login route: the login's own (opaque) token, neither route token.
      const a = await call(w, jar, '/api/echo');
      assert.equal(a.status, 200);
      const sent = (await a.json()).headers.authorization.replace(/^Bearer /, '');
      assert.ok(!billingTokens.has(sent) && !reportsTokens.has(sent));
      assert.equal(sent.split('.').length, 1, 'the login token is the opaque UserInfo token');
    });

    test(`${store}: 8 concurrent first uses make one grant`, async () => {
      const w = workers[store];
      const { jar } = await login(w);
      const before = routeGrants().length;
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => call(w, jar, `/reports/c${i}`)));
      for (const r of answers) assert.equal(r.status, 200);
      assert.equal(routeGrants().length - before, 1);
    });

    test(`${store}: a refused route request is 403 token_unavailable, the session kept`, async () => {
      const w = workers[store];
      const { jar } = await login(w);
      const refusedBefore = grants.length;
      const errorsBefore = grantErrors.length;
      const refused = await call(w, jar, '/refused/x');
      assert.equal(refused.status, 403);
      assert.equal((await refused.json()).error, 'token_unavailable');
      assert.deepEqual(grantErrors.slice(errorsBefore), ['invalid_scope'], 'one request, never retried');
      assert.equal(grants.length, refusedBefore);
      assert.ok(w.logs.some((l) => /"path":"\/refused\/x".*"outcome":"token_unavailable"/.test(l)), 'the access line\'s outcome');
      assert.ok(!(refused.headers.getSetCookie?.() ?? []).some((c) => /Max-Age=0/.test(c)), 'no cookie cleared');
      jar.update(refused);
      assert.ok(w.logs.some((l) => /route \/refused\/.*invalid_scope/.test(l)), 'a warn line names the route and the code');
      assert.ok(!w.logs.some((l) => l.includes(jar.header().split('=')[1]?.slice(0, 20) ?? '\u0000')));
      const after = await call(w, jar, '/billing/still-works');
      assert.equal(after.status, 200, 'the session goes on');
    });

    test(`${store}: an upstream 401 renews the route token and retries once`, async () => {
      const w = workers[store];
      const { jar } = await login(w);
      const first = await call(w, jar, '/billing/one');
      jar.update(first);
      assert.equal(first.status, 200);
      const held = billing.seen.at(-1).token;
      billing.reject(held);
      const before = routeGrants().length;
      const second = await call(w, jar, '/billing/two');
      jar.update(second);
      assert.equal(second.status, 200);
      assert.equal(routeGrants().length - before, 1, 'one new grant');
      assert.notEqual(billing.seen.at(-1).token, held);
    });
  }

  test('cookie: a route token too large for the session cookie is refused (403), the session and its rotated refresh token kept', async () => {
    const w = workers.cookie;
    const { jar } = await login(w);
    const before = billing.seen.length;
    const padded = await call(w, jar, '/padded/x');
    assert.equal(padded.status, 403);
    assert.equal((await padded.json()).error, 'token_unavailable');
    jar.update(padded);
    assert.equal(billing.seen.length, before, 'the upstream was not called');
    assert.ok(w.logs.some((l) => /route \/padded\/.*past 10 chunks; use SESSION_STORE=kv/.test(l)));
    // The grant spent the refresh token: its successor was stored, so the next grant works.
    const next = await call(w, jar, '/billing/after-padded');
    assert.equal(next.status, 200);
    const session = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal((await session.json()).authenticated, true);
  });

  test('WebSocket and event-stream routes carry route and app-only tokens', async () => {
    const w = workers.kv;
    const { jar } = await login(w);
    const payload = (authorization) => JSON.parse(Buffer.from(authorization.split(' ')[1].split('.')[1], 'base64url'));
    // A WebSocket handshake (Origin instead of X-CSRF) on a route with its own token.
    const handshakes = plain.wsHandshakes.length;
    const ws = await w.fetch('/ws/echo', {
      headers: { upgrade: 'websocket', connection: 'Upgrade', origin: BASE, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', cookie: jar.header() },
    });
    assert.equal(ws.status, 101);
    ws.webSocket?.accept?.();
    ws.webSocket?.close?.();
    const shake = plain.wsHandshakes.slice(handshakes)[0];
    assert.equal(payload(shake.headers.authorization).aud, BILLING, 'the route token went with the handshake');
    // An EventSource request (same-origin, no X-CSRF) on an app-only route.
    const seen = plain.seen.length;
    const events = await w.fetch('/events/sse', { headers: { accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' } });
    assert.equal(events.status, 200);
    plain.releaseSse();
    await events.text();
    const request = plain.seen.slice(seen).find((r) => r.path === '/ev/sse');
    assert.deepEqual([payload(request.headers.authorization).aud, payload(request.headers.authorization).sub], [REPORTS, idp.client.client_id]);
  });

  test('kv: logout ends the route tokens with the session', async () => {
    const w = workers.kv;
    const { jar } = await login(w);
    const kept = jar.header();
    assert.equal((await call(w, jar, '/billing/before-logout')).status, 200);
    const out = await w.fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf': '1', cookie: kept } });
    assert.equal(out.status, 200);
    const before = billing.seen.length;
    const after = await w.fetch('/billing/after-logout', { headers: { 'x-csrf': '1', cookie: kept } });
    assert.equal(after.status, 401, 'a kept copy of the cookie gets nothing');
    assert.equal(billing.seen.length, before, 'the upstream is not called');
  });

  test('client routes: no session read, one cached grant, a 401 leads to one new grant', async () => {
    const w = workers.cookie;
    const ccGrants = () => grants.filter((g) => g.grant_type === 'client_credentials').length;
    const before = ccGrants();
    // A cookie that opens nothing is not even looked at.
    const jar = new CookieJar();
    const r1 = await w.fetch('/app/one', { headers: { 'x-csrf': '1', cookie: '__Host-bff=garbage' } });
    assert.equal(r1.status, 200);
    const body = await r1.json();
    assert.equal(body.aud, BILLING);
    assert.equal(body.sub, idp.client.client_id, 'an app-only token');
    assert.equal(body.scope, 'billing:read');
    assert.ok(!(r1.headers.getSetCookie?.() ?? []).length, 'no cookie set or cleared');
    const r2 = await call(w, jar, '/app/two');
    assert.equal(r2.status, 200);
    assert.equal(ccGrants() - before, 1, 'the grant is cached');
    billing.reject(billing.seen.at(-1).token);
    const r3 = await call(w, jar, '/app/three');
    assert.equal(r3.status, 200);
    assert.equal(ccGrants() - before, 2, 'a refused token is granted anew');
    // CSRF rules are those of every proxied call.
    const noCsrf = await w.fetch('/app/four');
    assert.equal(noCsrf.status, 403);
  });

  test('access_or_client: the user token with a session, the app token without', async () => {
    const w = workers.cookie;
    const anonymous = await w.fetch('/either/x', { headers: { 'x-csrf': '1' } });
    assert.equal(anonymous.status, 200);
    assert.equal((await anonymous.json()).sub, idp.client.client_id);
    const { jar } = await login(w);
    const user = await call(w, jar, '/either/y');
    assert.equal(user.status, 200);
    const body = await user.json();
    assert.equal(body.aud, REPORTS);
    assert.notEqual(body.sub, idp.client.client_id);
  });
});

describe('route tokens over time and over a fleet (real oidc-provider, rotation with grant revocation on reuse)', () => {
  const cleanup = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const CSRF = { 'x-csrf': '1' };

  /** A provider with the billing resource, and a fleet of `isolates` test builds. */
  async function setup({ store, coordinator, isolates, routes, resourceTokenTtl = 3600 }) {
    const idp = await startProvider({ redirectOrigin: BASE, resourceServers: { [BILLING]: 'billing:read' }, resourceTokenTtl });
    const api = await startResourceApi({ issuer: idp.issuer, resource: BILLING });
    const echo = await startUpstream();
    const counts = { route: 0, login: 0, refused: [] };
    idp.provider.on('grant.success', (ctx) => {
      const p = ctx.oidc.params;
      if (p.grant_type !== 'refresh_token') return;
      if (p.resource || ctx.oidc.body?.audience || p.scope) counts.route++;
      else counts.login++;
    });
    idp.provider.on('grant.error', (ctx, e) => counts.refused.push(e.error));
    const fleet = await startFleet({
      OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.client.client_id, CLIENT_SECRET: idp.client.client_secret,
      PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys(), SESSION_STORE: store, SCOPES: 'openid profile email billing:read',
      API_ROUTES: JSON.stringify(routes(api, echo)),
    }, { isolates, coordinator, buildDir: 'build-test' });
    cleanup.push(() => idp.close(), () => api.close(), () => echo.close(), () => fleet.close());
    return { idp, api, echo, counts, fleet };
  }
  const clock = async (fleet, offset) => {
    for (let i = 0; i < fleet.isolates; i++) {
      assert.equal((await fleet.on(i).fetch(`/__edge-bff-test/clock?offset=${offset}`)).status, 200);
    }
  };
  const billingRoute = (api) => ({ prefix: '/billing/', upstream: `${api.base}/b/`, token_request: { resource: BILLING } });

  for (const store of ['cookie', 'kv']) {
    test(`${store}: 16 concurrent first uses over 4 isolates with COORDINATOR make one grant; an earlier cookie later gets the newest tokens`, async () => {
      const { counts, fleet, api } = await setup({ store, coordinator: true, isolates: 4, routes: (a) => [billingRoute(a)] });
      const { jar } = await login(fleet.on(0));
      const earlier = jar.header();
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) => fleet.on(i).fetch(`/billing/c${i}`, { headers: { ...CSRF, cookie: earlier } })),
      );
      for (const r of answers) {
        assert.equal(r.status, 200, await r.clone().text());
        jar.update(r);
      }
      assert.equal(counts.route, 1, 'one grant in all');
      assert.deepEqual(counts.refused, []);
      const granted = new Set(api.seen.map((s) => s.token));
      assert.equal(granted.size, 1, 'every isolate sent the one token');
      // Past every isolate's reuse window, the earlier cookie (without the route token, and
      // with the refresh token the grant spent) is handed the newest tokens by the object.
      await clock(fleet, 40);
      const late = await fleet.on(3).fetch('/billing/late', { headers: { ...CSRF, cookie: earlier } });
      assert.equal(late.status, 200, await late.clone().text());
      assert.equal(counts.route, 1, 'no second grant');
      assert.deepEqual(counts.refused, [], 'the spent refresh token was never sent again');
    });

    test(`${store}: a route token due is granted anew on its own; grants and login refreshes interleave with nothing refused`, async () => {
      const { counts, fleet } = await setup({ store, coordinator: false, isolates: 1, resourceTokenTtl: 60, routes: (a) => [billingRoute(a)] });
      const w = fleet.on(0);
      const { jar } = await login(w);
      const use = async (path) => {
        const r = await w.fetch(path, { headers: { ...CSRF, cookie: jar.header() } });
        jar.update(r);
        return r;
      };
      assert.equal((await use('/billing/1')).status, 200);
      assert.equal(counts.route, 1);
      // 60 s route tokens: 35 s later this one is due; the login's token (1 h) is not.
      await clock(fleet, 35);
      assert.equal((await use('/billing/2')).status, 200);
      assert.deepEqual([counts.route, counts.login], [2, 0], 'the route token alone was granted anew');
      // A login refresh between route grants: every one spends the newest refresh token.
      const refreshed = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
      jar.update(refreshed);
      assert.equal(refreshed.status, 200);
      await clock(fleet, 70);
      assert.equal((await use('/billing/3')).status, 200);
      await clock(fleet, 105);
      assert.equal((await use('/billing/4')).status, 200);
      assert.deepEqual([counts.route, counts.login], [4, 1]);
      assert.deepEqual(counts.refused, [], 'no grant was refused');
    });
  }

  for (const store of ['cookie', 'kv']) {
    test(`${store}: a login refresh and two route grants at once in one isolate: one grant at a time, each on the newest refresh token`, async () => {
      const { counts, fleet } = await setup({
        store, coordinator: false, isolates: 1,
        routes: (a) => [billingRoute(a), { prefix: '/billing-read/', upstream: `${a.base}/br/`, token_request: { resource: BILLING, scope: 'billing:read' } }],
      });
      const w = fleet.on(0);
      const { jar } = await login(w);
      const cookie = jar.header();
      const [refresh, first, second] = await Promise.all([
        w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie } }),
        w.fetch('/billing/x', { headers: { ...CSRF, cookie } }),
        w.fetch('/billing-read/y', { headers: { ...CSRF, cookie } }),
      ]);
      assert.deepEqual([refresh.status, first.status, second.status], [200, 200, 200]);
      assert.deepEqual(counts.refused, [], 'no refresh token was spent twice');
      assert.deepEqual([counts.login, counts.route], [1, 2]);
    });
  }

  test('cookie: a route grant with a spent refresh token (invalid_grant) ends the session: 401 session_expired, cookies cleared', async () => {
    const { counts, fleet } = await setup({ store: 'cookie', coordinator: false, isolates: 1, routes: (a) => [billingRoute(a)] });
    const w = fleet.on(0);
    const { jar } = await login(w);
    const earlier = jar.header();
    const first = await w.fetch('/billing/1', { headers: { ...CSRF, cookie: earlier } });
    assert.equal(first.status, 200);
    // The earlier cookie still holds the refresh token the grant spent; past the reuse window
    // it is sent again, and the provider revokes the grant.
    await clock(fleet, 40);
    const again = await w.fetch('/billing/2', { headers: { ...CSRF, cookie: earlier } });
    assert.equal(again.status, 401);
    assert.equal((await again.json()).error, 'session_expired');
    const cleared = again.headers.getSetCookie();
    assert.ok(cleared.some((c) => /^__Host-bff-session=;/.test(c) && /Max-Age=0/.test(c)), `the session cookie is cleared: ${cleared}`);
    assert.deepEqual(counts.refused, ['invalid_grant']);
  });

  test('the provider unreachable during a route grant: 502 idp_unavailable, the session kept', async () => {
    const { fleet, idp } = await setup({ store: 'cookie', coordinator: false, isolates: 1, routes: (a) => [billingRoute(a)] });
    const w = fleet.on(0);
    const { jar } = await login(w);
    const port = idp.port;
    await idp.close();
    const down = await w.fetch('/billing/1', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(down.status, 502);
    assert.equal((await down.json()).error, 'idp_unavailable');
    assert.ok(!down.headers.getSetCookie().some((c) => /Max-Age=0/.test(c)), 'no cookie cleared');
    jar.update(down);
    await new Promise((resolve) => idp.server.listen(port, '127.0.0.1', resolve));
    const back = await w.fetch('/billing/2', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(back.status, 200, 'the same session gets its token once the provider is back');
  });

  test('a session without a refresh token gets no route token: 403 token_unavailable, the session kept', async () => {
    const idp = await startProvider({ redirectOrigin: BASE, resourceServers: { [BILLING]: 'billing:read' }, noRefreshToken: true });
    const api = await startResourceApi({ issuer: idp.issuer, resource: BILLING });
    const w = await startWorker({
      OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.client.client_id, CLIENT_SECRET: idp.client.client_secret,
      PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([billingRoute(api)]),
    }, { kv: false });
    cleanup.push(() => idp.close(), () => api.close(), () => w.close());
    const { jar } = await login(w);
    const r = await w.fetch('/billing/x', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, 'token_unavailable');
    assert.equal(api.seen.length, 0);
    const session = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal((await session.json()).authenticated, true);
  });

  test('scope-only and params-only requests: the form carries exactly the route\'s parameters', async () => {
    const forms = [];
    const { fleet, idp } = await setup({
      store: 'cookie', coordinator: false, isolates: 1,
      routes: (a, echo) => [
        { prefix: '/scoped/', upstream: `${echo.base}/s/`, token_request: { scope: 'billing:read' } },
        { prefix: '/aud/', upstream: `${echo.base}/a/`, token_request: { params: 'audience=https%3A%2F%2Forders.example&x=1' } },
      ],
    });
    idp.provider.on('grant.success', (ctx) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') forms.push({ ...ctx.oidc.body });
    });
    const w = fleet.on(0);
    const { jar } = await login(w);
    for (const path of ['/scoped/x', '/aud/y']) {
      const r = await w.fetch(path, { headers: { ...CSRF, cookie: jar.header() } });
      jar.update(r);
      assert.equal(r.status, 200, path);
    }
    const strip = ({ refresh_token: _rt, ...rest }) => rest;
    assert.deepEqual(forms.map(strip), [
      { grant_type: 'refresh_token', scope: 'billing:read' },
      { grant_type: 'refresh_token', audience: 'https://orders.example', x: '1' },
    ]);
  });
});
