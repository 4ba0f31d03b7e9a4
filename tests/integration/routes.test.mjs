// Route options (API.md section 4, v2) against the built Worker: `require` (ID-token claim
// requirements, 403 `forbidden` before any upstream call), on the direct path (no KV) and
// the full path (SESSIONS bound), which must agree. The test provider puts the claims
// of each case into the ID token; a real upstream records what reaches it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestProvider } from '../support/test-idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
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
