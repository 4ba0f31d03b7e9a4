// The SPA host: static assets from the ASSETS binding with security headers, the SPA
// fallback, the browser helper, and the route-only layout (no assets binding).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';

const bindings = { OIDC_ISSUER: 'http://localhost:9', CLIENT_ID: 'edge-bff', CLIENT_SECRET: 's', PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() };
let w;
before(async () => {
  w = await startWorker(bindings);
});
after(async () => w?.close());

test('index.html with a strict CSP, nosniff, Referrer-Policy and no framing', async () => {
  const res = await w.fetch('/', { headers: { accept: 'text/html' } });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /edge-bff demo/);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.ok(!csp.includes('unsafe-inline'));
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'same-origin');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
});

test('SPA fallback: an HTML navigation to an unknown path gets index.html; other misses stay 404', async () => {
  const deep = await w.fetch('/orders/42/details', { headers: { accept: 'text/html,application/xhtml+xml' } });
  assert.equal(deep.status, 200);
  assert.match(await deep.text(), /edge-bff demo/);
  assert.match(deep.headers.get('content-security-policy'), /default-src/);
  const missing = await w.fetch('/missing.js', { headers: { accept: '*/*' } });
  assert.equal(missing.status, 404);
});

test('non-HTML assets get nosniff but no CSP', async () => {
  const js = await w.fetch('/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(js.headers.get('content-security-policy'), null);
});

test('GET /auth/client.js: a small dependency-free ES module with the documented API', async () => {
  const res = await w.fetch('/auth/client.js');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/javascript/);
  const src = await res.text();
  assert.ok(src.length < 6000, `${src.length} bytes`);
  for (const name of ['session', 'login', 'logout', 'fetch', 'onUnauthenticated', 'onLogout']) {
    assert.match(src, new RegExp(`export (async )?function ${name}\\(`), name);
  }
  assert.ok(!/^\s*import /m.test(src), 'no imports');
  assert.match(src, /const AUTH = '\/auth';/);
  assert.match(src, /BroadcastChannel/);
});

test('CONTENT_SECURITY_POLICY overrides the default; off removes it', async () => {
  const custom = await startWorker({ ...bindings, CONTENT_SECURITY_POLICY: "default-src 'self' https://cdn.example.com" });
  try {
    const res = await custom.fetch('/', { headers: { accept: 'text/html' } });
    assert.equal(res.headers.get('content-security-policy'), "default-src 'self' https://cdn.example.com");
  } finally {
    await custom.close();
  }
  const off = await startWorker({ ...bindings, CONTENT_SECURITY_POLICY: 'off' });
  try {
    const res = await off.fetch('/', { headers: { accept: 'text/html' } });
    assert.equal(res.headers.get('content-security-policy'), null);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  } finally {
    await off.close();
  }
});

test('route-only layout: without an ASSETS binding the agent works and other paths are 404 JSON', async () => {
  const routeOnly = await startWorker(bindings, { assets: false });
  try {
    const s = await routeOnly.fetch('/auth/session');
    assert.equal(s.status, 200);
    assert.deepEqual(JSON.parse(await s.text()), { authenticated: false });
    const other = await routeOnly.fetch('/index.html');
    assert.equal(other.status, 404);
    assert.equal(JSON.parse(await other.text()).error, 'not_found');
  } finally {
    await routeOnly.close();
  }
});
