// Unseen session cookies are opened by the glue's WebCrypto before the Rust module runs
// (src/runtime/cookie_opener.js, docs/performance.md "Unseen cookies"), and the answers
// stay exactly what the core gives: the test-hooks build counts who opened each cookie
// (`/__edge-bff-test/memory`), so a glue that silently stopped opening, or opened what
// the core would refuse, fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startWorker, newCookieKeys, BASE } from '../support/worker.mjs';
import { login } from '../support/login.mjs';
import { startUpstream } from '../support/upstream.mjs';

const SESSION = '__Host-bff-session';

function vars(idp, up, extra = {}) {
  return {
    OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: BASE,
    API_ROUTES: JSON.stringify([{ prefix: '/api/', upstream: `${up.base}/` }]), ...extra,
  };
}

/** Who opened how many cookies so far in `w`'s isolate. */
async function opened(w) {
  const usage = await (await w.fetch('/__edge-bff-test/memory')).json();
  return { core: usage.cookies_opened_by_core, glue: usage.cookies_opened_by_glue };
}

/** `/auth/session` with `cookie`: its status and whether it is a session. */
async function sessionWith(w, cookie) {
  const res = await w.fetch('/auth/session', { headers: { cookie } });
  const body = await res.json();
  return { status: res.status, authenticated: body.authenticated, setCookie: res.headers.getSetCookie() };
}

test('unseen cookies are opened once by the glue and then remembered; the core opens none', async () => {
  const idp = await startProvider({});
  const up = await startUpstream({});
  // No KV binding: the proxied call is decided on the direct path.
  const w = await startWorker(vars(idp, up, { COOKIE_KEYS: newCookieKeys() }), { buildDir: 'build-test', kv: false });
  try {
    const first = await login(w);
    const second = await login(w);
    const start = await opened(w);

    // `/auth/session`: the glue opens the cookie the isolate has not seen, once.
    assert.deepEqual(await sessionWith(w, first.jar.header()), { status: 200, authenticated: true, setCookie: [] });
    assert.deepEqual(await opened(w), { core: start.core, glue: start.glue + 1 });
    assert.equal((await sessionWith(w, first.jar.header())).authenticated, true);
    assert.deepEqual(await opened(w), { core: start.core, glue: start.glue + 1 }, 'remembered: not opened again');

    // A proxied call with another unseen cookie: opened by the glue, and the upstream gets
    // the session's own token on the direct path.
    const res = await w.fetch('/api/echo', { headers: { cookie: second.jar.header(), 'x-csrf': '1' } });
    assert.equal(res.status, 200);
    const echoed = await res.json();
    assert.match(echoed.headers.authorization, /^Bearer .+/);
    assert.deepEqual(await opened(w), { core: start.core, glue: start.glue + 2 });
    // The two sessions' tokens differ: each cookie opened to its own session.
    const again = await w.fetch('/api/echo', { headers: { cookie: first.jar.header(), 'x-csrf': '1' } });
    assert.notEqual((await again.json()).headers.authorization, echoed.headers.authorization);

    // What does not open is refused as before, by the core, with nothing remembered.
    const value = first.jar.get(SESSION);
    const middle = Math.floor(value.length / 2);
    const tampered = `${value.slice(0, middle)}${value[middle] === 'A' ? 'B' : 'A'}${value.slice(middle + 1)}`;
    for (const cookie of [
      `${SESSION}=${tampered}`,
      `${SESSION}=${value}=`, // padding: not the core's base64url
      `${SESSION}=k9${value.slice(value.indexOf('.'))}`, // a kid the ring does not hold
      `${SESSION}=${value}; ${SESSION}=${value}`, // a second cookie of the name
    ]) {
      assert.deepEqual(await sessionWith(w, cookie), { status: 200, authenticated: false, setCookie: [`${SESSION}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict`] }, cookie.slice(0, 40));
    }
    assert.deepEqual(await opened(w), { core: start.core, glue: start.glue + 2 }, 'nothing opened');
  } finally {
    await w.close();
    await up.close();
    await idp.close();
  }
});

test('the glue opens with every key of the ring and the name as associated data', async () => {
  const idp = await startProvider({});
  const up = await startUpstream({ record: false });
  const oldKey = newCookieKeys('k1');
  const sealing = await startWorker(vars(idp, up, { COOKIE_KEYS: oldKey }), { buildDir: 'build-test', kv: false });
  let cookie;
  try {
    cookie = (await login(sealing)).jar.get(SESSION);
  } finally {
    await sealing.close();
  }
  // Another prefix seals under another name: the same keys, other associated data.
  const prefixed = await startWorker(vars(idp, up, { COOKIE_KEYS: oldKey, COOKIE_PREFIX: '__Host-other' }), { buildDir: 'build-test', kv: false });
  let otherName;
  try {
    otherName = (await login(prefixed)).jar.get('__Host-other-session');
    assert.ok(otherName);
  } finally {
    await prefixed.close();
  }

  const rotated = await startWorker(vars(idp, up, { COOKIE_KEYS: `${newCookieKeys('k2')} ${oldKey}` }), { buildDir: 'build-test', kv: false });
  try {
    const start = await opened(rotated);
    // Sealed under k1, which the ring still holds: opened by the glue, re-sealed under k2.
    const old = await sessionWith(rotated, `${SESSION}=${cookie}`);
    assert.equal(old.authenticated, true);
    assert.equal(old.setCookie.length, 1);
    assert.match(old.setCookie[0], new RegExp(`^${SESSION}=k2\\.`));
    assert.deepEqual(await opened(rotated), { core: start.core, glue: start.glue + 1 });

    // A value sealed for another cookie name does not open under this one.
    const moved = await sessionWith(rotated, `${SESSION}=${otherName}`);
    assert.equal(moved.authenticated, false);
    assert.deepEqual(await opened(rotated), { core: start.core, glue: start.glue + 1 });
  } finally {
    await rotated.close();
    await up.close();
    await idp.close();
  }
});
