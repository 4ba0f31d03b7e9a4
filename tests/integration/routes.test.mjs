// Route options (docs/api.md section 4, v2) against the built Worker: `require` (ID-token claim
// requirements, 403 `forbidden` before any upstream call), `websocket` (a real `ws`
// upstream behind Miniflare, a `ws` client) and `event_stream` (server-sent events), on
// the direct path (no KV) and the full path (SESSIONS bound), which must agree. The test
// provider puts the claims of each case into the ID token; a real upstream records what
// reaches it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestProvider } from '../support/test-idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort, BASE } from '../support/worker.mjs';
import WebSocket from 'ws';
import { loginOnce } from '../support/login.mjs';

describe('require (claim requirements per route)', () => {
  let idp;
  let up;
  const workers = {};
  before(async () => {
    idp = await startTestProvider({ redirectOrigin: BASE });
    up = await startUpstream();
    const routes = [
      { prefix: '/api/', upstream: `${up.base}/open/` },
      { prefix: '/admin/', upstream: `${up.base}/admin/`, require: { groups: 'admin' } },
      { prefix: '/staff/', upstream: `${up.base}/staff/`, require: { groups: ['staff', 'admin'], email_verified: true } },
      { prefix: '/tier/', upstream: `${up.base}/tier/`, require: { tier: 3, org: ['acme', 'globex'] } },
    ];
    const bindings = {
      OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify(routes),
    };
    workers.direct = await startWorker(bindings, { kv: false });
    workers.full = await startWorker(bindings, { kv: true });
  });
  after(async () => {
    for (const w of Object.values(workers)) await w.close();
    await up.close();
    await idp.close();
  });

  // [claims in the ID token, { route: expected status }]
  const cases = [
    ['admin in a groups array', { groups: ['staff', 'admin'], email_verified: true }, { '/admin/': 200, '/staff/': 200, '/tier/': 403 }],
    ['staff only', { groups: ['staff'], email_verified: true }, { '/admin/': 403, '/staff/': 200 }],
    ['groups as a single string', { groups: 'admin', email_verified: true }, { '/admin/': 200, '/staff/': 200 }],
    ['one requirement unmet (email_verified false)', { groups: ['admin'], email_verified: false }, { '/admin/': 200, '/staff/': 403 }],
    ['claims absent', {}, { '/admin/': 403, '/staff/': 403, '/tier/': 403, '/api/': 200 }],
    ['number and any-of', { tier: 3, org: 'globex' }, { '/tier/': 200 }],
    ['a number as a string does not match', { tier: '3', org: 'acme' }, { '/tier/': 403 }],
    ['a boolean as a string does not match', { groups: 'staff', email_verified: 'true' }, { '/staff/': 403 }],
    ['an object claim does not match', { groups: { admin: true } }, { '/admin/': 403 }],
  ];

  for (const [name, claims, expected] of cases) {
    test(name, async () => {
      idp.scenario.claims = claims;
      for (const [path, w] of Object.entries(workers)) {
        const { jar } = await loginOnce(w);
        for (const [prefix, status] of Object.entries(expected)) {
          const before = up.seen.length;
          const r = await w.fetch(`${prefix}things?x=1`, { headers: { cookie: jar.header(), 'x-csrf': '1' } });
          assert.equal(r.status, status, `${path} path, ${prefix}`);
          if (status === 403) {
            assert.deepEqual(await r.json(), { error: 'forbidden', error_description: 'The session may not use this route.' });
            assert.equal(up.seen.length, before, `${path} path, ${prefix}: the upstream was not called`);
          } else {
            assert.equal((await r.json()).path, `/${prefix.slice(1, -1) === 'api' ? 'open' : prefix.slice(1, -1)}/things`);
            assert.equal(up.seen.length, before + 1);
          }
        }
      }
      idp.scenario.claims = undefined;
    });
  }

  test('the checks run in order: CSRF, path, session, then require', async () => {
    idp.scenario.claims = {};
    const w = workers.direct;
    const { jar } = await loginOnce(w);
    const before = up.seen.length;
    const noCsrf = await w.fetch('/admin/x', { headers: { cookie: jar.header() } });
    assert.equal((await noCsrf.json()).error, 'csrf_check_failed');
    const badPath = await w.fetch('/admin/%252e%252e/x', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(badPath.status, 400);
    const noSession = await w.fetch('/admin/x', { headers: { 'x-csrf': '1' } });
    assert.equal((await noSession.json()).error, 'unauthorized');
    const forbidden = await w.fetch('/admin/x', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(forbidden.status, 403);
    assert.equal(up.seen.length, before, 'none reached the upstream');
    idp.scenario.claims = undefined;
  });

  test('a malformed require is a configuration error', async () => {
    for (const require of [{}, { groups: [] }, 'admin', { groups: { a: 1 } }]) {
      const w = await startWorker({
        OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE,
        COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/`, require }]),
      });
      try {
        const r = await w.fetch('/api/x', { headers: { 'x-csrf': '1' } });
        assert.equal(r.status, 500);
        assert.equal((await r.json()).error, 'configuration_error');
        assert.match(w.logs.join('\n'), /configuration error: API_ROUTES.*require/);
      } finally {
        await w.close();
      }
    }
  });
});

const HTTPS_ORIGIN = 'https://app.example.test';

describe('websocket and event_stream routes', () => {
  let idp;
  let up;
  const workers = {};
  const ports = {};
  before(async () => {
    idp = await startTestProvider({ redirectOrigin: BASE });
    up = await startUpstream();
    const routes = [
      { prefix: '/ws/', upstream: `${up.base}/socket/`, websocket: true, require: { name: 'Test User' } },
      { prefix: '/events/', upstream: `${up.base}/ev/`, event_stream: true },
      { prefix: '/api/', upstream: `${up.base}/open/` },
    ];
    const bindings = {
      OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify(routes),
    };
    for (const [path, kv] of [['direct', false], ['full', true]]) {
      ports[path] = await freePort();
      workers[path] = await startWorker(bindings, { kv, port: ports[path] });
    }
    // An https origin: HSTS is added to every answer, so the 101 is rebuilt around the
    // upstream's socket rather than passed through.
    ports.https = await freePort();
    workers.https = await startWorker({ ...bindings, PUBLIC_ORIGIN: HTTPS_ORIGIN }, { kv: false, port: ports.https });
  });
  after(async () => {
    for (const w of Object.values(workers)) await w.close();
    await up.close();
    await idp.close();
  });

  /** Open a WebSocket to the Worker; resolves to the socket, or rejects with the refusal's status. */
  const connect = (port, path, headers) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
      ws.once('upgrade', (res) => { ws.handshakeHeaders = res.headers; });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once('error', (e) => reject(e));
    });
  const next = (ws) => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));

  for (const path of ['direct', 'full', 'https']) {
    test(`${path}: text and binary frames echo both ways; the upstream sees the token and no edge-bff cookie; the close code passes`, async () => {
      const { jar } = await loginOnce(workers[path]);
      const handshakes = up.wsHandshakes.length;
      const origin = path === 'https' ? HTTPS_ORIGIN : BASE;
      const ws = await connect(ports[path], '/ws/chat?room=1', { origin, cookie: `${jar.header()}; theme=dark` });
      if (path === 'https') assert.ok(ws.handshakeHeaders['strict-transport-security'], 'the 101 carries edge-bff\'s HSTS');
      const hs = up.wsHandshakes[handshakes];
      assert.equal(hs.url, '/socket/chat?room=1');
      assert.match(hs.headers.authorization, /^Bearer at-/);
      assert.equal(hs.headers.cookie, 'theme=dark', 'edge-bff\'s cookies never go upstream');
      ws.send('hello');
      const text = await next(ws);
      assert.equal(text.isBinary, false);
      assert.equal(text.data.toString(), 'hello');
      const bytes = Buffer.from([0, 1, 2, 250, 255]);
      ws.send(bytes);
      const binary = await next(ws);
      assert.equal(binary.isBinary, true);
      assert.deepEqual(Buffer.from(binary.data), bytes);
      const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
      ws.send('close:4001');
      assert.equal(await closed, 4001, 'the upstream\'s close code reaches the browser');
    });
  }

  test('refused before the upstream is dialled: a foreign Origin, no Origin, no session, an unmet require, an upgrade on a plain route', async () => {
    const { jar } = await loginOnce(workers.direct);
    const handshakes = up.wsHandshakes.length;
    const refused = async (path, headers) => {
      const e = await connect(ports.direct, path, headers).then((ws) => { ws.close(); return null; }, (err) => err);
      assert.ok(e, `${path} must be refused`);
      return e;
    };
    assert.equal((await refused('/ws/x', { origin: 'https://evil.example', cookie: jar.header() })).status, 403);
    assert.equal((await refused('/ws/x', { cookie: jar.header() })).status, 403);
    assert.equal((await refused('/ws/x', { origin: BASE })).status, 401);
    const plain = await refused('/api/x', { origin: BASE, cookie: jar.header() });
    assert.equal(plain.status, 400);
    assert.equal(JSON.parse(plain.body).error, 'invalid_request');
    idp.scenario.claims = { name: 'Someone Else' };
    const { jar: other } = await loginOnce(workers.direct);
    idp.scenario.claims = undefined;
    assert.equal((await refused('/ws/x', { origin: BASE, cookie: other.header() })).status, 403, 'require holds for WebSockets');
    assert.equal(up.wsHandshakes.length, handshakes, 'the upstream was never dialled');
  });

  for (const path of ['direct', 'full']) {
    test(`${path} path: an EventSource request streams; the first event arrives before the upstream ends`, async () => {
      const { jar } = await loginOnce(workers[path]);
      const res = await fetch(`http://127.0.0.1:${ports[path]}/events/sse`, {
        headers: { cookie: jar.header(), accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!text.includes('data: first\n\n')) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the stream is still open');
        text += decoder.decode(value, { stream: true });
      }
      assert.ok(!text.includes('second'), 'the upstream has not written the second event yet');
      up.releaseSse();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      assert.equal(text, 'data: first\n\ndata: second\n\n');
    });
  }

  test('a due access token is refreshed before the stream starts', async () => {
    idp.scenario.accessTtl = 10; // inside the 30 s refresh margin at once
    const { jar } = await loginOnce(workers.direct);
    idp.scenario.accessTtl = 3600;
    const refreshes = idp.stats.refresh;
    const before = up.seen.length;
    const res = await fetch(`http://127.0.0.1:${ports.direct}/events/sse`, {
      headers: { cookie: jar.header(), accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(res.status, 200);
    assert.equal(idp.stats.refresh, refreshes + 1, 'refreshed first');
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session')), 'the new tokens go to the browser with the stream');
    const reader = res.body.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /data: first/);
    const sent = up.seen.slice(before).find((r) => r.path === '/ev/sse');
    assert.ok(sent, 'the stream was opened upstream');
    assert.match(sent.headers.authorization, /^Bearer at-/);
    up.releaseSse();
    await reader.cancel();
  });

  test('an event stream request that is not same-origin needs X-CSRF like any call', async () => {
    const { jar } = await loginOnce(workers.direct);
    const before = up.seen.length;
    for (const site of ['cross-site', 'same-site', null]) {
      const headers = { cookie: jar.header(), accept: 'text/event-stream', ...(site ? { 'sec-fetch-site': site } : {}) };
      const r = await workers.direct.fetch('/events/sse', { headers });
      assert.equal(r.status, 403, `Sec-Fetch-Site ${site}`);
      assert.equal((await r.json()).error, 'csrf_check_failed');
    }
    const plainRoute = await workers.direct.fetch('/api/sse', { headers: { cookie: jar.header(), accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' } });
    assert.equal(plainRoute.status, 403, 'only event_stream routes waive X-CSRF');
    assert.equal(up.seen.length, before, 'the upstream was not called');
  });
});
