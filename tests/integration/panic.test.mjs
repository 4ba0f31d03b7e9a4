// A panic inside the Worker (forced through the test-only hook of the build-test/ variant)
// answers 500 JSON server_error without the panic text, and the next request works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { login } from '../support/login.mjs';

test('panic → 500 server_error JSON, then the Worker recovers', async () => {
  const idp = await startProvider({});
  const w = await startWorker(
    { OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() },
    { buildDir: 'build-test' },
  );
  try {
    const { jar } = await login(w);
    const res = await w.fetch('/__edge-bff-test/panic');
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), { error: 'server_error', error_description: 'Internal server error.' });
    assert.ok(!/panic|test hook|\.rs/.test(text), 'no panic text in the response');

    const after = await w.fetch('/auth/session', { headers: { cookie: jar.header() } });
    assert.equal(after.status, 200);
    assert.equal(JSON.parse(await after.text()).authenticated, true, 'the session still opens after re-initialisation');
    const again = await login(w);
    assert.equal(again.callbackResponse.status, 302);
    assert.equal(again.callbackResponse.headers.get('location'), '/');
  } finally {
    await w.close();
    await idp.close();
  }
});
