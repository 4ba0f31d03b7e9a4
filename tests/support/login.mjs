import { createHash } from 'node:crypto';
// Logs in through the Worker over plain HTTP, following the real provider's pages:
// /auth/login → provider /auth → login form → (auto consent) → /auth/callback.
import assert from 'node:assert/strict';
import { CookieJar } from './http.mjs';
import { DEMO_USER } from './idp.mjs';
import { BASE } from './worker.mjs';

/**
 * Drive the provider from `authorizationUrl` until it redirects back to the Worker.
 * Returns the callback URL (path + query on BASE).
 */
export async function authorizeAtProvider(authorizationUrl, { user = DEMO_USER, idpJar = new CookieJar(), base = BASE } = {}) {
  let url = authorizationUrl;
  for (let step = 0; step < 12; step++) {
    if (url.startsWith(base)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: idpJar.header() } });
    idpJar.update(res);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).toString();
      continue;
    }
    const html = await res.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html);
    assert.ok(res.status === 200 && action, `provider page without login form (status ${res.status}): ${html.slice(0, 300)}`);
    const post = await fetch(new URL(action[1], url), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: idpJar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login: user.username, password: user.password }).toString(),
    });
    idpJar.update(post);
    assert.ok(post.status >= 300 && post.status < 400, `login form answered ${post.status}`);
    url = new URL(post.headers.get('location'), url).toString();
  }
  throw new Error('provider did not redirect back to the Worker');
}

/**
 * Full login against worker `w` (from startWorker, or any object with a `fetch(path, init)`
 * that does not follow redirects; `base` is the Worker's origin). Returns
 * { jar, loginResponse, callbackResponse, callbackUrl } where `jar` holds the Worker's cookies.
 */
export async function login(w, { returnTo = '/', jar = new CookieJar(), idpJar, base = BASE } = {}) {
  const loginResponse = await w.fetch(`/auth/login?return_to=${encodeURIComponent(returnTo)}`, {
    headers: { cookie: jar.header() },
  });
  assert.equal(loginResponse.status, 302, 'login redirects to the provider');
  jar.update(loginResponse);
  const callbackUrl = await authorizeAtProvider(loginResponse.headers.get('location'), { idpJar, base });
  const callbackResponse = await w.fetch(callbackUrl, { headers: { cookie: jar.header() } });
  const setCookies = jar.update(callbackResponse);
  return { jar, loginResponse, callbackResponse, callbackUrl, setCookies };
}

/**
 * Login against a provider that authorizes at once (tests/support/test-idp.mjs).
 * Returns { callback, jar, set } (set: the parsed Set-Cookie lines of the callback).
 */
export async function loginOnce(w, jar = new CookieJar()) {
  const start = await w.fetch('/auth/login', { headers: { cookie: jar.header() } });
  jar.update(start);
  const authorize = await fetch(start.headers.get('location'), { redirect: 'manual' });
  assert.equal(authorize.status, 302, 'provider redirects back');
  const callback = await w.fetch(authorize.headers.get('location'), { headers: { cookie: jar.header() } });
  const set = jar.update(callback);
  return { callback, jar, set };
}

/**
 * The name of the login cookie of the attempt with `state` (src/agent/login_cookie.rs):
 * `{prefix}-login.` and the first 16 characters of base64url(SHA-256(state)).
 */
export function loginCookieName(state, prefix = '__Host-bff') {
  return `${prefix}-login.${createHash('sha256').update(state).digest('base64url').slice(0, 16)}`;
}
