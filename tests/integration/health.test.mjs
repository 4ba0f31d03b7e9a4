// GET {AUTH_PATH}/health (API.md section 3, v2) against the built Worker: 200 when the
// configuration is valid and the provider's discovery can be had; 503 with the reason
// (`configuration`, `provider`) otherwise, never the provider's text; a provider that
// comes back is reported at the next check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestProvider } from '../support/test-idp.mjs';
import { startProvider } from '../support/idp.mjs';
import { startWorker, newCookieKeys, freePort, BASE } from '../support/worker.mjs';

const bindings = (issuer, extra = {}) => ({
  OIDC_ISSUER: issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
  COOKIE_KEYS: newCookieKeys(), ...extra,
});

async function health(w, path = '/auth/health') {
  const r = await w.fetch(path);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return { status: r.status, body: await r.json() };
}

test('ok with the real provider; POST is 405', async () => {
  const idp = await startProvider();
  const w = await startWorker(bindings(idp.issuer));
  try {
    assert.deepEqual(await health(w), { status: 200, body: { status: 'ok' } });
    const post = await w.fetch('/auth/health', { method: 'POST', headers: { 'x-csrf': '1' } });
    assert.equal(post.status, 405);
  } finally {
    await w.close();
    await idp.close();
  }
});

test('a provider that goes down is reported at once, and one that comes back at the next check', async () => {
  const port = await freePort();
  let idp = await startTestProvider({ port, redirectOrigin: BASE });
  const w = await startWorker(bindings(idp.issuer, { CLIENT_ID: idp.clientId }));
  try {
    assert.equal((await health(w)).status, 200);
    // A login caches the provider's metadata; the health check does not rely on it.
    assert.equal((await w.fetch('/auth/login')).status, 302);
    await idp.close();
    assert.deepEqual(await health(w), { status: 503, body: { status: 'unavailable', reason: 'provider' } });
    assert.match(w.logs.join('\n'), /health: provider discovery unavailable/);
    idp = await startTestProvider({ port, redirectOrigin: BASE });
    assert.deepEqual(await health(w), { status: 200, body: { status: 'ok' } }, 'no negative cache');
  } finally {
    await w.close();
    await idp.close();
  }
});

test('a provider answering an error: 503 provider, without its text', async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('internal provider detail: db=prod-7 password=hunter2');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const w = await startWorker(bindings(`http://localhost:${server.address().port}`));
  try {
    const { status, body } = await health(w);
    assert.equal(status, 503);
    assert.deepEqual(body, { status: 'unavailable', reason: 'provider' });
  } finally {
    await w.close();
    await new Promise((r) => server.close(r));
  }
});

test('an invalid configuration: 503 configuration at the health path (AUTH_PATH honoured), 500 configuration_error elsewhere', async () => {
  const idp = await startTestProvider({ redirectOrigin: BASE });
  try {
    for (const [extra, path] of [
      [{ CLIENT_ID: '' }, '/auth/health'],
      [{ CLIENT_ID: '', AUTH_PATH: '/bff' }, '/bff/health'],
      [{ SESSION_STORE: 'kv' }, '/auth/health'], // no SESSIONS binding (kv: false below)
    ]) {
      const w = await startWorker(bindings(idp.issuer, extra), { kv: false });
      try {
        assert.deepEqual(await health(w, path), { status: 503, body: { status: 'unavailable', reason: 'configuration' } }, JSON.stringify(extra));
        const other = await w.fetch('/auth/session');
        assert.equal(other.status, 500);
        assert.equal((await other.json()).error, 'configuration_error');
      } finally {
        await w.close();
      }
    }
  } finally {
    await idp.close();
  }
});
