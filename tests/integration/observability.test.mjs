// The access line and the metrics data point (docs/api.md section 9, issue 15): the built
// Worker with the real oidc-provider and a real upstream, `METRICS` bound to a recording
// dataset (tests/support/worker.mjs) or to Miniflare's own Analytics Engine simulator.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { startWorker, newCookieKeys, freePort, metricsPoints } from '../support/worker.mjs';
import { login } from '../support/login.mjs';

/** The access lines (`msg: request`) among `logs`. */
const accessLines = (logs) =>
  logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.level === 'info');

/** Wait until `count(logs)` reaches `n` (log lines arrive through the runtime's stdout). */
async function waitFor(logs, count, n) {
  for (let i = 0; i < 100 && count(logs) < n; i++) await new Promise((r) => setTimeout(r, 20));
  // A little longer: one line too many must show as well.
  await new Promise((r) => setTimeout(r, 100));
  return count(logs);
}

describe('LOG_LEVEL=info with METRICS bound', () => {
  let idp;
  let up;
  let w;
  let origin;
  let jar;

  before(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    idp = await startProvider({ redirectOrigin: origin });
    up = await startUpstream();
    w = await startWorker(
      {
        OIDC_ISSUER: idp.issuer,
        CLIENT_ID: 'edge-bff',
        CLIENT_SECRET: 'edge-bff-local-secret',
        PUBLIC_ORIGIN: origin,
        COOKIE_KEYS: newCookieKeys(),
        LOG_LEVEL: 'info',
        API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/v1/` }]),
      },
      // No KV binding: a call with a valid cookie session takes the direct path.
      { port, kv: false, metrics: 'record' },
    );
    ({ jar } = await login({ fetch: (p, init = {}) => fetch(new URL(p, origin), { redirect: 'manual', ...init }) }, { base: origin }));
  });

  after(async () => {
    await w?.close();
    await up?.close();
    await idp?.close();
  });

  /**
   * Send `init` to `path` and return the response with the access line and the data point
   * it produced (exactly one of each, else the test fails).
   */
  async function observe(path, init = {}) {
    const lines = accessLines(w.logs).length;
    const points = metricsPoints(w.logs).length;
    const res = await fetch(new URL(path, origin), { redirect: 'manual', ...init });
    await res.arrayBuffer();
    assert.equal(await waitFor(w.logs, (l) => accessLines(l).length, lines + 1), lines + 1, `one access line for ${path}`);
    assert.equal(await waitFor(w.logs, (l) => metricsPoints(l).length, points + 1), points + 1, `one data point for ${path}`);
    return { res, line: accessLines(w.logs)[lines], point: metricsPoints(w.logs)[points] };
  }

  test('the login itself was observed: login_started, then logged_in at the callback', () => {
    const lines = accessLines(w.logs);
    const start = lines.find((l) => l.path === '/auth/login');
    assert.equal(start?.outcome, 'login_started');
    assert.equal(start.status, 302);
    assert.equal(start.kind, 'agent');
    const callback = lines.find((l) => l.path === '/auth/callback');
    assert.equal(callback?.outcome, 'logged_in');
    // The callback's code and state stay out of the line: the path only.
    assert.ok(lines.every((l) => !l.path.includes('?')), 'no query in any path');
    const points = metricsPoints(w.logs);
    assert.ok(points.some((p) => p.blobs.join() === 'agent,login_started,3xx'));
    assert.ok(points.some((p) => p.blobs.join() === 'agent,logged_in,3xx'));
  });

  test('a direct-path API call: kind proxy, no outcome, the CF-Ray, the path without its query', async () => {
    const { res, line, point } = await observe('/api/things/7?secret=query-value-123', {
      headers: { cookie: jar.header(), 'x-csrf': '1', 'cf-ray': '8f1e2d3c4b5a6978-AMS' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(
      { level: line.level, method: line.method, path: line.path, status: line.status, kind: line.kind, ray: line.ray },
      { level: 'info', method: 'GET', path: '/api/things/7', status: 200, kind: 'proxy', ray: '8f1e2d3c4b5a6978-AMS' },
    );
    assert.equal(line.outcome, undefined, 'no outcome applies');
    assert.equal(typeof line.ms, 'number');
    assert.ok(line.ms >= 0 && line.ms < 10_000, `ms ${line.ms}`);
    assert.deepEqual(point.blobs, ['proxy', '', '2xx']);
    assert.equal(point.doubles.length, 1);
    assert.equal(point.doubles[0], line.ms, 'the data point carries the same duration');
    assert.ok(!w.logs.some((l) => l.includes('query-value-123')), 'the query string is in no log line');
  });

  test('an upstream 401 resumed in the full path: refreshed, noted on the one access line', async () => {
    const { res, line, point } = await observe('/api/unauthorized-once?id=observe-1', { headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(res.status, 200);
    jar.update(res);
    assert.equal(line.kind, 'proxy');
    assert.equal(line.outcome, 'refreshed');
    assert.deepEqual(point.blobs, ['proxy', 'refreshed', '2xx']);
  });

  test('errors: csrf_refused, unauthorized; an asset; no ray header, no ray field', async () => {
    const csrf = await observe('/auth/refresh', { method: 'POST', headers: { cookie: jar.header() } });
    assert.equal(csrf.res.status, 403);
    assert.equal(csrf.line.outcome, 'csrf_refused');
    assert.equal(csrf.line.kind, 'agent');
    assert.equal(csrf.line.method, 'POST');
    assert.equal(csrf.line.ray, undefined);
    assert.deepEqual(csrf.point.blobs, ['agent', 'csrf_refused', '4xx']);

    const anonymous = await observe('/api/things/1', { headers: { 'x-csrf': '1' } });
    assert.equal(anonymous.res.status, 401);
    assert.equal(anonymous.line.outcome, 'unauthorized');
    assert.deepEqual(anonymous.point.blobs, ['proxy', 'unauthorized', '4xx']);

    const asset = await observe('/');
    assert.equal(asset.res.status, 200);
    assert.equal(asset.line.kind, 'assets');
    assert.deepEqual(asset.point.blobs, ['assets', '', '2xx']);
  });

  test('a refresh asked for, then a logout: refreshed, logged_out', async () => {
    const refreshed = await observe('/auth/refresh', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(refreshed.res.status, 200);
    jar.update(refreshed.res);
    assert.equal(refreshed.line.outcome, 'refreshed');
    const out = await observe('/auth/logout', { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
    assert.equal(out.res.status, 200);
    assert.equal(out.line.outcome, 'logged_out');
  });

  test('no cookie value, token or secret in any access line', () => {
    const lines = w.logs.filter((l) => l.includes('"msg":"request"'));
    assert.ok(lines.length >= 8);
    for (const line of lines) {
      assert.ok(!/__Host-bff|eyJ|edge-bff-local-secret|Bearer|code=|state=/.test(line), line);
    }
  });
});

describe('levels and bindings', () => {
  let idp;
  before(async () => {
    idp = await startProvider({ redirectOrigin: 'http://localhost:8787' });
  });
  after(async () => {
    await idp?.close();
  });
  const vars = () => ({
    OIDC_ISSUER: idp.issuer,
    CLIENT_ID: 'edge-bff',
    CLIENT_SECRET: 'edge-bff-local-secret',
    PUBLIC_ORIGIN: 'http://localhost:8787',
    COOKIE_KEYS: newCookieKeys(),
  });

  test('the default level (warn): no access line; METRICS still gets one data point per request', async () => {
    const w = await startWorker({ ...vars(), LOG_LEVEL: '' }, { kv: false, metrics: 'record' });
    try {
      for (const p of ['/auth/nope', '/', '/auth/session']) await (await w.fetch(p)).arrayBuffer();
      assert.equal(await waitFor(w.logs, (l) => metricsPoints(l).length, 3), 3);
      assert.deepEqual(
        metricsPoints(w.logs).map((p) => p.blobs),
        [['agent', 'not_found', '4xx'], ['assets', '', '2xx'], ['agent', '', '2xx']],
      );
      assert.equal(accessLines(w.logs).length, 0, 'no access line at warn');
    } finally {
      await w.close();
    }
  });

  test('LOG_LEVEL=debug writes access lines too; no METRICS binding, no data point', async () => {
    const w = await startWorker({ ...vars(), LOG_LEVEL: 'debug' }, { kv: false });
    try {
      await (await w.fetch('/auth/session')).arrayBuffer();
      assert.equal(await waitFor(w.logs, (l) => accessLines(l).length, 1), 1);
      assert.equal(metricsPoints(w.logs).length, 0);
    } finally {
      await w.close();
    }
  });

  test('an invalid configuration: the data point says unknown, configuration_error, 5xx', async () => {
    const { CLIENT_ID, ...missing } = vars();
    const w = await startWorker({ ...missing, LOG_LEVEL: 'info' }, { kv: false, metrics: 'record' });
    try {
      const res = await w.fetch('/api/x');
      assert.equal(res.status, 500);
      assert.equal(await waitFor(w.logs, (l) => metricsPoints(l).length, 1), 1);
      assert.deepEqual(metricsPoints(w.logs)[0].blobs, ['unknown', 'configuration_error', '5xx']);
    } finally {
      await w.close();
    }
  });

  test("Miniflare's Analytics Engine simulator as METRICS: requests answer as before, no METRICS warning", async () => {
    const w = await startWorker({ ...vars(), LOG_LEVEL: 'info' }, { kv: false, metrics: 'simulator' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await w.fetch('/auth/nope')).status, 404);
      assert.equal(await waitFor(w.logs, (l) => accessLines(l).length, 3), 3);
      assert.ok(!w.logs.some((l) => l.includes('METRICS: data point not written')), w.logs.join('\n'));
      assert.ok(w.logs.some((l) => l.includes('METRICS bound')));
    } finally {
      await w.close();
    }
  });
});
