// ID token defects from a provider that signs real, wrong JWTs over real HTTP: each is
// refused on the callback with invalid_id_token and no session; key rotation is accepted
// after exactly one JWKS re-fetch.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestProvider } from '../support/test-idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { loginOnce } from '../support/login.mjs';

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

function assertRefused({ callback, set }, code, label) {
  assert.equal(callback.status, 302, label);
  assert.equal(callback.headers.get('location'), `/?auth_error=${code}`, label);
  assert.ok(!set.some((c) => c.name.startsWith('__Host-bff-session') && c.value !== ''), `${label}: no session`);
}

describe('accepted', () => {
  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
    test(`${alg} signed ID token`, async () => {
      idp.scenario = { alg, defect: null, accessTtl: 3600, refresh: 'rotate' };
      const { callback, jar } = await loginOnce(w);
      assert.equal(callback.headers.get('location'), '/');
      const s = JSON.parse(await (await w.fetch('/auth/session', { headers: { cookie: jar.header() } })).text());
      assert.equal(s.authenticated, true, alg);
      assert.equal(s.user.sub, 'user-1');
    });
  }
});

describe('refused with invalid_id_token', () => {
  const defects = [
    // One bit of the signature flipped, for each algorithm (checked by WebCrypto).
    ['bad-signature', 'RS256'],
    ['bad-signature', 'PS256'],
    ['bad-signature', 'ES256'],
    ['bad-signature', 'EdDSA'],
    ['alg-none', 'RS256'],
    ['hs256-client-secret', 'RS256'],
    ['embedded-jwk', 'RS256'],
    ['wrong-iss', 'ES256'],
    ['wrong-aud', 'ES256'],
    ['wrong-azp', 'ES256'],
    ['multi-aud-no-azp', 'ES256'],
    ['wrong-nonce', 'EdDSA'],
    ['expired', 'PS256'],
    ['future-iat', 'PS256'],
    ['no-sub', 'RS256'],
    ['no-iat', 'RS256'],
    ['no-kid', 'RS256'],
  ];
  for (const [defect, alg] of defects) {
    test(`${defect} (${alg})`, async () => {
      idp.scenario = { alg, defect, accessTtl: 3600, refresh: 'rotate' };
      assertRefused(await loginOnce(w), 'invalid_id_token', defect);
    });
  }
});

describe('key rotation (OIDC Core 10.1.1)', () => {
  test('unknown kid: one JWKS re-fetch, then refused; within 10 s no further re-fetch', async () => {
    const fresh = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
    try {
      idp.scenario = { alg: 'RS256', defect: null, accessTtl: 3600, refresh: 'rotate' };
      assert.equal((await loginOnce(fresh)).callback.headers.get('location'), '/');
      const before = idp.stats.jwks;
      idp.scenario = { alg: 'RS256', defect: 'unknown-kid', accessTtl: 3600, refresh: 'rotate' };
      assertRefused(await loginOnce(fresh), 'invalid_id_token', 'unknown kid');
      assert.equal(idp.stats.jwks, before + 1, 'exactly one re-fetch');
      assertRefused(await loginOnce(fresh), 'invalid_id_token', 'unknown kid again');
      assert.equal(idp.stats.jwks, before + 1, 'rate-limited: no second re-fetch within 10 s');
    } finally {
      await fresh.close();
    }
  });

  test('the provider rotates its key: accepted after one re-fetch', async () => {
    const fresh = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() });
    try {
      idp.scenario = { alg: 'RS256', defect: null, accessTtl: 3600, refresh: 'rotate' };
      assert.equal((await loginOnce(fresh)).callback.headers.get('location'), '/');
      const before = idp.stats.jwks;
      idp.rotateKeys();
      const { callback } = await loginOnce(fresh);
      assert.equal(callback.headers.get('location'), '/', 'rotated key accepted');
      assert.equal(idp.stats.jwks, before + 1);
      assert.equal((await loginOnce(fresh)).callback.headers.get('location'), '/');
      assert.equal(idp.stats.jwks, before + 1, 'cached afterwards');
    } finally {
      await fresh.close();
    }
  });
});

test('PKCE: the verifier sent at the token endpoint matches the challenge (provider checks S256)', async () => {
  idp.scenario = { alg: 'ES256', defect: null, accessTtl: 3600, refresh: 'rotate' };
  const { callback, set } = await loginOnce(w);
  assert.equal(callback.headers.get('location'), '/');
  assert.ok(set.some((c) => c.name === '__Host-bff-session'));
});
