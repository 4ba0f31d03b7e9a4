// Reliability round 3 (issue 24) against the built Worker: refresh refusals as real
// providers send them (Glewlwyd's empty 400, invalid_client) in both stores, with and
// without the coordinator; refresh answers with a failing ID token, likewise; provider
// bodies bounded as they stream; padding cookies beside a second session cookie under a
// prefix without __Host-; `require` after a refresh that drops a group. (The hung and
// busy coordinator are in fleet.test.mjs, a refreshed ID token of another tenant in
// providers.test.mjs.)
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestProvider } from '../support/test-idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { parseSetCookie } from '../support/http.mjs';
import { loginOnce } from '../support/login.mjs';

const CSRF = { 'x-csrf': '1', origin: BASE };
const json = async (res) => JSON.parse(await res.text());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const logLines = (logs) => logs.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);

function sessionCleared(res, prefix = '__Host-bff') {
  const set = res.headers.getSetCookie().map(parseSetCookie);
  return set.some((c) => c.name === `${prefix}-session` && c.attrs['max-age'] === '0');
}

/** The test provider and one Worker (test build: clock and coordinator hooks). */
async function stack(extra = {}, { coordinator = false } = {}) {
  const idp = await startTestProvider({ redirectOrigin: BASE });
  const w = await startWorker({
    OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE,
    COOKIE_KEYS: newCookieKeys(), ...extra,
  }, { coordinator, buildDir: 'build-test' });
  cleanup.push(() => idp.close(), () => w.close());
  return { idp, w };
}

async function sessionRecords(w) {
  const kv = await w.mf.getKVNamespace('SESSIONS');
  return (await kv.list({ prefix: 'session:' })).keys.length;
}

describe('a refused refresh ends the session, whatever form the refusal takes (docs/api.md section 5)', () => {
  for (const store of ['cookie', 'kv']) {
    for (const coordinator of [false, true]) {
      for (const mode of ['empty-400', 'invalid-client']) {
        test(`${store}, ${coordinator ? 'with' : 'without'} COORDINATOR: ${mode}`, async () => {
          const { idp, w } = await stack({ SESSION_STORE: store }, { coordinator });
          const { jar } = await loginOnce(w);
          if (store === 'kv') assert.equal(await sessionRecords(w), 1);
          idp.scenario.refresh = mode;
          const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
          assert.equal(res.status, 401, 'not 502: a refusal, not an outage');
          assert.equal((await json(res)).error, 'session_expired');
          assert.ok(sessionCleared(res), 'session cookies cleared');
          if (store === 'kv') assert.equal(await sessionRecords(w), 0, 'KV record deleted');
          assert.equal(idp.stats.refresh, 1);
          // The browser is no longer stuck: it is logged out, and its old cookie (if it
          // kept it) does not reach the provider again in KV mode.
          jar.update(res);
          assert.deepEqual(await json(await w.fetch('/auth/session', { headers: { cookie: jar.header() } })), { authenticated: false });
          const errors = logLines(w.logs).filter((l) => l.level === 'error' && /invalid_client/.test(l.msg));
          if (mode === 'invalid-client') assert.ok(errors.length >= 1, `an error line names invalid_client:\n${w.logs.join('\n')}`);
          else assert.equal(errors.length, 0);
          assert.ok(!w.logs.some((l) => /at-[A-Za-z0-9_-]{10}|test-idp-secret/.test(l)), 'no token or secret in the log');
        });
      }
    }
  }

  test('a 5xx is still an outage: 502, session kept', async () => {
    const { idp, w } = await stack({ SESSION_STORE: 'kv' }, { coordinator: true });
    const { jar } = await loginOnce(w);
    idp.scenario.refresh = 'down';
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 502);
    assert.equal(await sessionRecords(w), 1);
  });
});

describe('a refresh answer with an ID token that fails its checks ends the session, none of its tokens used', () => {
  const defects = [
    ['another sub', { refreshIdToken: { sub: 'user-2' } }],
    ['a bad signature', { refreshIdToken: {}, defect: 'bad-signature' }],
    ['another iss', { refreshIdToken: {}, defect: 'wrong-iss' }],
  ];
  for (const store of ['cookie', 'kv']) {
    for (const coordinator of [false, true]) {
      for (const [name, scenario] of defects) {
        test(`${store}, ${coordinator ? 'through the coordinator' : 'without COORDINATOR'}: ${name}`, async () => {
          const { idp, w } = await stack({ SESSION_STORE: store }, { coordinator });
          const { jar } = await loginOnce(w);
          const kept = jar.clone();
          Object.assign(idp.scenario, scenario);
          const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: jar.header() } });
          assert.equal(res.status, 401);
          assert.equal((await json(res)).error, 'session_expired');
          assert.ok(sessionCleared(res));
          assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session=') && !c.includes('Max-Age=0')), 'no session cookie with the answer\'s tokens');
          assert.ok(logLines(w.logs).some((l) => l.level === 'error' && /refreshed ID token refused/.test(l.msg)), 'an error line says why');
          assert.equal(w.logs.some((l) => l.includes('coordinator request: refresh')), coordinator);
          if (store === 'kv') assert.equal(await sessionRecords(w), 0, 'KV record deleted');
          // Nothing of the answer was kept anywhere (the coordinator included): a kept
          // copy of the cookie is never handed its tokens; it refreshes from its own,
          // spent, refresh token and is refused.
          idp.scenario.refreshIdToken = null;
          idp.scenario.defect = null;
          const again = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie: kept.header() } });
          assert.equal(again.status, 401, 'never the refused answer\'s tokens');
        });
      }
    }
  }
});

describe('provider bodies are bounded as they stream in', () => {
  test('an endless UserInfo body: 502 idp_unavailable at the 1 MiB limit, not at the time limit', async () => {
    const { idp, w } = await stack();
    const { jar } = await loginOnce(w);
    idp.scenario.userinfo = 'endless';
    const started = performance.now();
    const res = await w.fetch('/auth/userinfo', { headers: { ...CSRF, cookie: jar.header() } });
    const took = Math.round(performance.now() - started);
    assert.equal(res.status, 502);
    assert.equal((await json(res)).error, 'idp_unavailable');
    await sleep(200);
    const sent = idp.state.stats.userinfoBytes;
    console.log(`# endless UserInfo body: refused after ${took} ms; the provider got ${(sent / 1048576).toFixed(1)} MiB out before the read stopped`);
    assert.ok(took < 3000, `stopped at the size limit, not the 5 s time limit (${took} ms)`);
    assert.ok(logLines(w.logs).some((l) => /larger than 1048576 bytes/.test(l.msg)), w.logs.join('\n'));
  });
});

describe('padding cookies (COOKIE_PREFIX without __Host-)', () => {
  test('eleven chunk-like cookies do not hide a second session cookie', async () => {
    const { idp, w } = await stack({ COOKIE_PREFIX: 'bff' });
    idp.scenario.sub = 'attacker';
    const attacker = (await loginOnce(w)).jar.get('bff-session');
    idp.scenario.sub = '1';
    const { jar } = await loginOnce(w);
    const user = jar.get('bff-session');
    assert.ok(attacker && user && attacker !== user);
    // As a sibling subdomain plants them (Domain cookies, set earlier: sent first).
    const padding = Array.from({ length: 11 }, (_, i) => `bff-session.${'0'.repeat(i + 1)}1=x`);
    const cookie = [...padding, `bff-session=${attacker}`, `bff-session=${user}`].join('; ');
    const session = await json(await w.fetch('/auth/session', { headers: { cookie } }));
    assert.deepEqual(session, { authenticated: false }, 'two session cookies: no session, never the attacker\'s');
    const refresh = await w.fetch('/auth/refresh', { method: 'POST', headers: { ...CSRF, cookie } });
    assert.equal(refresh.status, 401);
    // The padding alone changes nothing for the user.
    const own = await json(await w.fetch('/auth/session', { headers: { cookie: [...padding, `bff-session=${user}`].join('; ') } }));
    assert.equal(own.authenticated, true);
    assert.equal(own.user.sub, 'user-1');
  });
});

describe('require after a refresh', () => {
  async function adminStack() {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const s = await stack({
      API_ROUTES: JSON.stringify([{ prefix: '/admin/', upstream: `${up.base}/admin/`, require: { groups: 'admin' } }]),
    });
    s.idp.scenario.claims = { groups: ['admin', 'staff'] };
    s.idp.scenario.accessTtl = 40; // inside the 30 s refresh margin 15 s after login
    const { jar } = await loginOnce(s.w);
    assert.equal((await s.w.fetch('/admin/echo', { headers: { ...CSRF, cookie: jar.header() } })).status, 200);
    // The provider removes the group; the next refresh brings an ID token without it.
    s.idp.scenario.claims = { groups: ['staff'] };
    s.idp.scenario.refreshIdToken = {};
    return { ...s, up, jar };
  }

  test('a refresh due before the call: 403 forbidden, the refreshed tokens still stored', async () => {
    const { w, up, jar } = await adminStack();
    const before = up.seen.length;
    assert.equal((await w.fetch('/__edge-bff-test/clock?offset=15')).status, 200);
    const res = await w.fetch('/admin/echo', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 403);
    assert.equal((await json(res)).error, 'forbidden');
    assert.equal(up.seen.length, before, 'not forwarded');
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-bff-session=') && !c.includes('Max-Age=0')), 'the refreshed session goes out');
  });

  test('a refresh after an upstream 401: the call is not sent again', async () => {
    const { w, up, jar } = await adminStack();
    const res = await w.fetch('/admin/unauthorized-once?id=r1', { headers: { ...CSRF, cookie: jar.header() } });
    assert.equal(res.status, 403);
    assert.equal((await json(res)).error, 'forbidden');
    assert.equal(up.seen.filter((r) => r.url.includes('unauthorized-once')).length, 1, 'sent once, not retried with the new token');
  });
});
