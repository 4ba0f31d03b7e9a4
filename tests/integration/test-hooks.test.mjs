// Behaviour that needs the build-test/ variant (Cargo feature test-hooks): a forced panic
// answers 500 JSON server_error without the panic text and the next request works; the
// upstream timeout (2 s there instead of 30 s) answers 502 upstream_unavailable, on the
// direct proxy path and on the full one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startWorker, newCookieKeys, freePort, BASE } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { startUpstream } from '../support/upstream.mjs';

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

    // The logs say so in JSON lines (the tests run at LOG_LEVEL=debug): the failure, the
    // re-initialisation, and the access line of the request that failed.
    const lines = w.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.level === 'error' && /^request failed inside the Wasm module \(RuntimeError\)/.test(l.msg)), w.logs.join('\n'));
    assert.ok(lines.some((l) => l.level === 'warn' && l.msg === 'reinitialising the Wasm module after a failure'));
    const access = lines.find((l) => l.msg === 'request' && l.path === '/__edge-bff-test/panic');
    assert.deepEqual({ status: access?.status, kind: access?.kind, outcome: access?.outcome }, { status: 500, kind: 'unknown', outcome: 'server_error' });
    assert.ok(!w.logs.some((l) => l.includes('edge-bff error:')), 'no plain-text error line');
  } finally {
    await w.close();
    await idp.close();
  }
});

test('a panic on the direct proxy path → 500 server_error JSON, then the next call works', async () => {
  const idp = await startProvider({});
  const up = await startUpstream({ record: false });
  const w = await startWorker(
    {
      OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]),
    },
    // No KV binding, so a call with a cookie session is decided without I/O (direct).
    { buildDir: 'build-test', kv: false },
  );
  try {
    const { jar } = await login(w);
    const headers = { cookie: jar.header(), 'x-csrf': '1' };
    // The hook panics only once the direct path has decided the call: a 500 here shows
    // the direct path ran, and that its synchronous trap is answered.
    const res = await w.fetch('/api/__edge-bff-test/direct-panic', { headers });
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), { error: 'server_error', error_description: 'Internal server error.' });
    assert.ok(!/panic|test hook|\.rs/.test(text), 'no panic text in the response');
    const after = await w.fetch('/api/status/200', { headers });
    assert.equal(after.status, 200, 'the re-initialised instance answers');
  } finally {
    await w.close();
    await up.close();
    await idp.close();
  }
});

for (const kv of [false, true]) {
  test(`an upstream slower than the timeout: 502 upstream_unavailable, bounded wait (${kv ? 'full' : 'direct'} path)`, async () => {
    const idp = await startProvider({});
    const up = await startUpstream({ record: false });
    const w = await startWorker(
      {
        OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
        COOKIE_KEYS: newCookieKeys(), API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]),
      },
      { buildDir: 'build-test', kv },
    );
    try {
      const { jar } = await login(w);
      const fast = await w.fetch('/api/slow?ms=100', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
      assert.equal(fast.status, 200);
      const started = Date.now();
      const slow = await w.fetch('/api/slow?ms=6000', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
      const took = Date.now() - started;
      assert.equal(slow.status, 502);
      assert.equal(JSON.parse(await slow.text()).error, 'upstream_unavailable');
      assert.ok(took >= 1800 && took < 5000, `answered after ${took} ms`);
    } finally {
      await w.close();
      await up.close();
      await idp.close();
    }
  });
}

test('no per-request leak: Wasm memory and the JS values Rust holds stay flat over hundreds of requests', async () => {
  const idp = await startProvider({});
  const up = await startUpstream({ record: false });
  const closed = await freePort();
  const w = await startWorker(
    {
      OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
      COOKIE_KEYS: newCookieKeys(),
      API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }, { prefix: '/down/', upstream: `http://127.0.0.1:${closed}/` }]),
    },
    { buildDir: 'build-test', kv: false },
  );
  try {
    const { jar } = await login(w);
    const headers = { cookie: jar.header(), 'x-csrf': '1' };
    // Every kind of request: the agent (async path), a direct proxy call, a direct call
    // resumed in the full path (upstream failure), a refusal.
    const round = async () => {
      for (const [path, status, h] of [['/auth/session', 200, headers], ['/api/status/200', 200, headers], ['/api/status/404', 404, headers], ['/api/x', 403, { cookie: jar.header() }]]) {
        const res = await w.fetch(path, { headers: h });
        assert.equal(res.status, status, path);
        await res.arrayBuffer();
      }
      const down = await w.fetch('/down/x', { headers });
      assert.equal(down.status, 502, 'a failed direct call resumes in the full path');
      await down.arrayBuffer();
    };
    const usage = async () => (await w.fetch('/__edge-bff-test/memory')).json();
    for (let i = 0; i < 3; i++) await round();
    const before = await usage();
    for (let i = 0; i < 60; i++) await round();
    const after = await usage();
    assert.equal(after.js_values_held, before.js_values_held, 'every JS value handed to Rust is released');
    assert.equal(after.wasm_memory_bytes, before.wasm_memory_bytes, 'Wasm memory does not grow');
  } finally {
    await w.close();
    await up.close();
    await idp.close();
  }
});
