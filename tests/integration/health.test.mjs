// GET {AUTH_PATH}/health (docs/api.md section 3, v2) against the built Worker: 200 when the
// configuration is valid and the provider's discovery can be had; 503 with the reason
// (`configuration`, `provider`) otherwise, never the provider's text. An isolate fetches
// discovery for it at most once per 10 s (HEALTH_INTERVAL_MS), however many checks
// arrive: a provider that goes down, or comes back, is reported within that interval.
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

/** The interval within which an isolate answers checks from one discovery fetch. */
const INTERVAL_MS = 10_000;
const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

test('a burst of checks costs the provider one discovery fetch, and the interval none more', async () => {
  const idp = await startTestProvider({ redirectOrigin: BASE });
  // Each discovery answer takes a while: the burst's checks are in flight together.
  idp.scenario.discoveryDelayMs = 300;
  const w = await startWorker(bindings(idp.issuer, { CLIENT_ID: idp.clientId }));
  try {
    const ok = { status: 200, body: { status: 'ok' } };
    assert.deepEqual(await Promise.all(Array.from({ length: 20 }, () => health(w))), Array(20).fill(ok));
    assert.equal(idp.stats.discovery, 1, 'one fetch for 20 concurrent checks');
    assert.deepEqual(await Promise.all(Array.from({ length: 20 }, () => health(w))), Array(20).fill(ok));
    assert.equal(idp.stats.discovery, 1, 'none more within the interval');
    // The check's document serves the login too.
    assert.equal((await w.fetch('/auth/login')).status, 302);
    assert.equal(idp.stats.discovery, 1);
  } finally {
    await w.close();
    await idp.close();
  }
});

test('a provider that goes down is reported within the interval, and one that comes back likewise', async () => {
  const port = await freePort();
  let idp = await startTestProvider({ port, redirectOrigin: BASE });
  const w = await startWorker(bindings(idp.issuer, { CLIENT_ID: idp.clientId }));
  try {
    const checked = Date.now();
    assert.equal((await health(w)).status, 200);
    // A login caches the provider's metadata (kept through an outage); health does not
    // answer from it.
    assert.equal((await w.fetch('/auth/login')).status, 302);
    await idp.close();
    assert.equal((await health(w)).status, 200, 'within the interval the last fetch answers');
    await sleepUntil(checked + INTERVAL_MS + 300);
    const failed = Date.now();
    assert.deepEqual(await health(w), { status: 503, body: { status: 'unavailable', reason: 'provider' } });
    assert.match(w.logs.join('\n'), /health: provider discovery unavailable/);
    idp = await startTestProvider({ port, redirectOrigin: BASE });
    assert.equal((await health(w)).status, 503, 'within the interval the failed fetch answers');
    assert.equal(idp.stats.discovery, 0, 'and the provider is not asked');
    await sleepUntil(failed + INTERVAL_MS + 300);
    assert.deepEqual(await health(w), { status: 200, body: { status: 'ok' } }, 'back after the interval');
    assert.equal(idp.stats.discovery, 1);
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
