// Configuration: validated once per isolate; anything wrong answers every request with
// 500 configuration_error, names the setting in the log only, never the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { startProvider } from '../support/idp.mjs';
import { startTestProvider } from '../support/test-idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { login } from '../support/login.mjs';

const SECRET = 'config-test-client-secret';

function good(issuer) {
  return { OIDC_ISSUER: issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: SECRET, PUBLIC_ORIGIN: BASE, COOKIE_KEYS: newCookieKeys() };
}

async function expectConfigurationError(bindings, setting, secretText, reason) {
  const w = await startWorker(bindings);
  try {
    for (const [path, init] of [['/'], ['/auth/session'], ['/auth/login'], ['/auth/logout', { method: 'POST', headers: { 'x-csrf': '1' } }], ['/index.html']]) {
      const res = await w.fetch(path, init);
      assert.equal(res.status, 500, `${setting}: ${path}`);
      const body = JSON.parse(await res.text());
      assert.equal(body.error, 'configuration_error');
      assert.equal(body.error_description, 'The server is misconfigured.');
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    const logs = w.logs.join('\n');
    assert.match(logs, new RegExp(`configuration error: ${setting}`), `log names ${setting}: ${logs}`);
    if (secretText) assert.ok(!logs.includes(secretText), 'log does not echo the value');
    if (reason) assert.match(logs, new RegExp(`configuration error: ${setting}: .*${reason}`), `log gives the reason: ${logs}`);
  } finally {
    await w.close();
  }
}

test('missing required settings', async () => {
  for (const name of ['OIDC_ISSUER', 'CLIENT_ID', 'CLIENT_SECRET', 'PUBLIC_ORIGIN', 'COOKIE_KEYS']) {
    const b = good('http://localhost:9');
    delete b[name];
    await expectConfigurationError(b, name);
  }
});

test('malformed settings', async () => {
  const shortKey = 'k1:c2hvcnQta2V5LXZhbHVl';
  await expectConfigurationError({ ...good('http://localhost:9'), COOKIE_KEYS: shortKey }, 'COOKIE_KEYS', 'c2hvcnQta2V5LXZhbHVl');
  await expectConfigurationError({ ...good('http://idp.example.com'), CLIENT_SECRET: SECRET }, 'OIDC_ISSUER', SECRET);
  await expectConfigurationError({ ...good('http://localhost:9'), API_ROUTES: '[{"prefix":"/api/","upstream":"http://api.example.com/"}]' }, 'API_ROUTES');
  await expectConfigurationError({ ...good('http://localhost:9'), API_ROUTES: 'not json' }, 'API_ROUTES');
  await expectConfigurationError({ ...good('http://localhost:9'), SESSION_MAX_AGE: 'eight hours' }, 'SESSION_MAX_AGE');
  await expectConfigurationError({ ...good('http://localhost:9'), CLIENT_AUTH: 'private_key_jwt' }, 'CLIENT_PRIVATE_KEY');
  await expectConfigurationError({ ...good('http://localhost:9'), CLIENT_AUTH: 'client_secret_jwt' }, 'CLIENT_AUTH');
  // v2: a logout redirect over plain http outside localhost, and a malformed HSTS value.
  await expectConfigurationError({ ...good('http://localhost:9'), POST_LOGOUT_REDIRECT_URI: 'http://app.example.com/bye' }, 'POST_LOGOUT_REDIRECT_URI');
  await expectConfigurationError({ ...good('http://localhost:9'), POST_LOGOUT_REDIRECT_URI: 'javascript:alert(1)' }, 'POST_LOGOUT_REDIRECT_URI');
  await expectConfigurationError({ ...good('http://localhost:9'), HSTS: 'max-age=soon' }, 'HSTS');
  // A percent-encoded host is refused before the URL parser sees it (the IDNA stand-in
  // the build carries must not), in the issuer and in an upstream alike.
  await expectConfigurationError(good('https://A%C3%A9.example'), 'OIDC_ISSUER', undefined, 'percent-encoded host');
  await expectConfigurationError({ ...good('http://localhost:9'), API_ROUTES: '[{"prefix":"/api/","upstream":"https://ex%41mple.com/"}]' }, 'API_ROUTES', undefined, 'percent-encoded host');
  // DPoP is not wired yet: refused rather than silently ignored.
  await expectConfigurationError({ ...good('http://localhost:9'), DPOP_KEY: '{"kty":"OKP"}' }, 'DPOP_KEY', '{"kty":"OKP"}');
});

test('a route with require whose upstream another route reaches is a configuration error naming both prefixes', async () => {
  // /api/admin/… would reach https://x.example/admin/… past /admin/'s require.
  const routes = [
    { prefix: '/api/', upstream: 'https://x.example/' },
    { prefix: '/admin/', upstream: 'https://x.example/admin/', require: { groups: 'admin' } },
  ];
  await expectConfigurationError({ ...good('http://localhost:9'), API_ROUTES: JSON.stringify(routes) }, 'API_ROUTES', undefined, 'the upstream of /admin/ lies within the upstream of /api/');
});

test('CLIENT_PRIVATE_KEY: an RSA key whose public members are another key\'s is a configuration error', async () => {
  const rsaJwk = () => ({ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' });
  const [a, b] = [rsaJwk(), rsaJwk()];
  // Every member present and well-formed, but n and e belong to one key, the rest to another.
  const mismatched = { ...b, n: a.n, e: a.e };
  await expectConfigurationError({ ...good('http://localhost:9'), CLIENT_AUTH: 'private_key_jwt', CLIENT_PRIVATE_KEY: JSON.stringify(mismatched) }, 'CLIENT_PRIVATE_KEY', b.d, 'not one key pair');
});

test('DPOP_KEY: a key whose public members are another key\'s is a configuration error, on the proxy\'s direct path too', async () => {
  const keyOf = (alg) => {
    const [type, options] = alg === 'ES256' ? ['ec', { namedCurve: 'P-256' }] : ['ed25519', {}];
    return { ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }), kid: 'd1', alg };
  };
  for (const alg of ['ES256', 'EdDSA']) {
    const [a, b] = [keyOf(alg), keyOf(alg)];
    // Well-formed, a valid public point, but another key's: only a signature shows it.
    const mismatched = { ...b, x: a.x, ...(a.y ? { y: a.y } : {}) };
    const bindings = { ...good('http://localhost:9'), DPOP_KEY: JSON.stringify(mismatched), API_ROUTES: '[{"prefix":"/api/","upstream":"http://127.0.0.1:9/"}]' };
    await expectConfigurationError(bindings, 'DPOP_KEY', b.d, 'not one key pair');
    // The requests the direct path answers or sends (the session query, a proxied call) as
    // an isolate's first requests: they wait for the test and are refused like the rest.
    const w = await startWorker(bindings);
    try {
      for (const path of ['/auth/session', '/api/things', '/auth/session']) {
        const res = await w.fetch(path, { headers: { 'x-csrf': '1' } });
        assert.equal(res.status, 500, `${alg} ${path}`);
        assert.equal(JSON.parse(await res.text()).error, 'configuration_error');
      }
      assert.equal(w.logs.filter((l) => /(?<!refused, )configuration error: DPOP_KEY/.test(l)).length, 1, 'the failed test is logged once');
    } finally {
      await w.close();
    }
    // The key itself, unmixed, is accepted: the proxied call without a session is a 401.
    const fine = await startWorker({ ...bindings, DPOP_KEY: JSON.stringify(b) });
    try {
      const res = await fine.fetch('/api/things', { headers: { 'x-csrf': '1' } });
      assert.equal(res.status, 401, alg);
    } finally {
      await fine.close();
    }
  }
});

test('a failed key test holds back the direct path: a session made by a sound Worker is refused on an isolate\'s first request', async () => {
  const idp = await startProvider({ clientSecret: SECRET });
  const keyOf = () => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'd1', alg: 'ES256' });
  const [a, b] = [keyOf(), keyOf()];
  // Cookie sessions without KV: the direct path's conditions (it answers GET /auth/session
  // and sends proxied calls without entering async Rust).
  const base = { ...good(idp.issuer), API_ROUTES: '[{"prefix":"/api/","upstream":"http://127.0.0.1:9/"}]' };
  let jar;
  const sound = await startWorker({ ...base, DPOP_KEY: JSON.stringify(b) }, { kv: false });
  try {
    ({ jar } = await login(sound));
  } finally {
    await sound.close();
  }
  const session = (w) => w.fetch('/auth/session', { headers: { cookie: jar.header() } });
  // The same cookie keys and a sound key: the session is good on a fresh isolate.
  const again = await startWorker({ ...base, DPOP_KEY: JSON.stringify(b) }, { kv: false });
  try {
    const res = await session(again);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(await res.text()).authenticated, true);
  } finally {
    await again.close();
  }
  // A mixed key: the first request, and every one after it, is refused.
  const mixed = await startWorker({ ...base, DPOP_KEY: JSON.stringify({ ...b, x: a.x, y: a.y }) }, { kv: false });
  try {
    for (const round of [1, 2]) {
      const res = await session(mixed);
      assert.equal(res.status, 500, `round ${round}`);
      assert.equal(JSON.parse(await res.text()).error, 'configuration_error');
    }
  } finally {
    await mixed.close();
    await idp.close();
  }
});

test('client authentication parameters can be neither fixed nor allowed to callers', async () => {
  await expectConfigurationError({ ...good('http://localhost:9'), AUTH_PARAMS: 'client_secret=not-the-secret' }, 'AUTH_PARAMS', 'not-the-secret', 'client_secret is set by edge-bff');
  await expectConfigurationError({ ...good('http://localhost:9'), AUTH_PARAMS: 'client_assertion_type=x' }, 'AUTH_PARAMS', undefined, 'client_assertion_type is set by edge-bff');
  await expectConfigurationError({ ...good('http://localhost:9'), ALLOWED_AUTH_PARAMS: 'prompt client_assertion' }, 'ALLOWED_AUTH_PARAMS', undefined, 'client_assertion is set by edge-bff');
});

test('TOML-typed values (numbers, arrays) are accepted', async () => {
  const idp = await startProvider({ clientSecret: SECRET });
  const w = await startWorker({ ...good(idp.issuer), SESSION_MAX_AGE: 3600, SCOPES: ['openid', 'email'], API_ROUTES: [{ prefix: '/api/', upstream: 'http://127.0.0.1:9/' }] });
  try {
    const res = await w.fetch('/auth/login');
    assert.equal(res.status, 302);
    assert.equal(new URL(res.headers.get('location')).searchParams.get('scope'), 'openid email');
    const { setCookies } = await login(w);
    const session = setCookies.find((c) => c.name === '__Host-bff-session');
    assert.ok(Number(session.attrs['max-age']) <= 3600 && Number(session.attrs['max-age']) > 3500, 'SESSION_MAX_AGE from a TOML number');
  } finally {
    await w.close();
    await idp.close();
  }
});

test('a discovery document that names another issuer is a configuration error from then on', async () => {
  // The real provider will not lie about its issuer; this one does, over real HTTP.
  const server = http.createServer((req, res) => {
    const port = server.address().port;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      issuer: 'https://someone-else.example.com',
      authorization_endpoint: `http://localhost:${port}/auth`,
      token_endpoint: `http://localhost:${port}/token`,
      jwks_uri: `http://localhost:${port}/jwks`,
    }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const w = await startWorker(good(`http://localhost:${server.address().port}`));
  try {
    for (let i = 0; i < 2; i++) {
      const res = await w.fetch('/auth/login');
      assert.equal(res.status, 500);
      assert.equal(JSON.parse(await res.text()).error, 'configuration_error');
    }
    assert.match(w.logs.join('\n'), /OIDC_ISSUER: discovery document names another issuer/);
    // Requests that do not need the provider still work.
    assert.deepEqual(JSON.parse(await (await w.fetch('/auth/session')).text()), { authenticated: false });
  } finally {
    await w.close();
    server.close();
  }
});

test('provider unreachable: login answers 502 idp_unavailable', async () => {
  const w = await startWorker(good('http://127.0.0.1:9'));
  try {
    const res = await w.fetch('/auth/login');
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(await res.text()).error, 'idp_unavailable');
  } finally {
    await w.close();
  }
});

test('wrangler.toml, as wrangler reads it, deploys the built entry with the coordinator the Worker exports', async () => {
  const { unstable_readConfig: readConfig } = await import('wrangler');
  const config = readConfig({ config: new URL('../../wrangler.toml', import.meta.url).pathname });
  assert.match(config.main, /build\/entry\.mjs$/);
  const binding = config.durable_objects.bindings.find((b) => b.name === 'COORDINATOR');
  assert.equal(binding?.class_name, 'EdgeBffCoordinator');
  assert.ok(config.migrations.some((m) => m.new_sqlite_classes?.includes(binding.class_name)), 'a SQLite migration for the class');
  assert.ok(config.kv_namespaces.some((k) => k.binding === 'SESSIONS'));
  // The class that binding names is the one the built Worker exports, and refreshes reach it.
  const idp = await startProvider({});
  const w = await startWorker({ ...good(idp.issuer), CLIENT_SECRET: 'edge-bff-local-secret' }, { coordinator: { binding: binding.name, className: binding.class_name } });
  try {
    const { jar } = await login(w);
    const res = await w.fetch('/auth/refresh', { method: 'POST', headers: { 'x-csrf': '1', cookie: jar.header() } });
    assert.equal(res.status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(w.logs.some((l) => l.includes('coordinator request: refresh')), 'the refresh went through the coordinator');
  } finally {
    await w.close();
    await idp.close();
  }
});

test('LOG_LEVEL: warn by default (no info lines), info adds them, error drops warnings; a bad value is a configuration error', async () => {
  const idp = await startTestProvider({ redirectOrigin: 'https://app.example.test' });
  try {
    // An https origin with a prefix lacking __Host-: a warn line at start-up.
    const base = { OIDC_ISSUER: idp.issuer, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, PUBLIC_ORIGIN: 'https://app.example.test', COOKIE_KEYS: newCookieKeys(), COOKIE_PREFIX: 'bff' };
    const linesAt = async (level) => {
      const w = await startWorker({ ...base, LOG_LEVEL: level });
      try {
        await w.fetch('/auth/session'); // logs "no valid session" at info
        return w.logs.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
      } finally {
        await w.close();
      }
    };
    const byDefault = await linesAt('');
    assert.ok(byDefault.some((l) => l.level === 'warn' && /COOKIE_PREFIX/.test(l.msg)), 'warnings by default');
    assert.deepEqual(byDefault.filter((l) => l.level === 'info'), [], 'no info line by default');
    const info = await linesAt('info');
    assert.ok(info.some((l) => l.level === 'info' && /configuration loaded/.test(l.msg)), 'info adds them');
    const errorOnly = await linesAt('error');
    assert.deepEqual(errorOnly.filter((l) => l.level !== 'error'), [], 'error drops warnings');
    await expectConfigurationError({ ...base, LOG_LEVEL: 'verbose' }, 'LOG_LEVEL');
  } finally {
    await idp.close();
  }
});
