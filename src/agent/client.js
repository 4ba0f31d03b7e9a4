// edge-bff browser helper (docs/api.md section 6). An ES module without dependencies:
//   import * as bff from '/auth/client.js';
//   const s = await bff.session();            // {authenticated, user?, expires_at?, …}
//   bff.login('/return/here');                // top-level navigation to the provider
//   await bff.logout();                       // ends the session, tells other tabs, leaves
//   const res = await bff.fetch('/api/x');    // adds X-CSRF and same-origin credentials
//   bff.onUnauthenticated((error) => …);      // instead of login() on a 401
//   bff.onLogout(() => …);                    // another tab logged out
// WebSockets and server-sent events need no helper: on routes with `websocket` or
// `event_stream` (docs/configuration.md), `new WebSocket('/ws/…')` and
// `new EventSource('/events/…')` work as they are (the browser sends the cookies, and
// `Origin` or `Sec-Fetch-Site: same-origin`, which the Worker checks instead of X-CSRF).
// The tokens never reach JavaScript; the Worker keeps them in HttpOnly cookies.
const AUTH = '__AUTH_PATH__';
const CHANNEL = 'edge-bff';
let unauthenticated = null;
let channel = null;
const logoutListeners = new Set();

function bus() {
  if (!channel && typeof BroadcastChannel === 'function') {
    channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (event) => {
      if (event.data === 'logout') for (const listener of logoutListeners) listener();
    };
  }
  return channel;
}

/** The current session: `{authenticated:false}` or `{authenticated:true, user, expires_at, access_token_expires_at}`. */
export async function session() {
  const res = await globalThis.fetch(`${AUTH}/session`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`edge-bff: /session answered ${res.status}`);
  return res.json();
}

/** Navigate to the provider's login; afterwards the browser returns to `returnTo` (a same-origin path). */
export function login(returnTo) {
  const target = returnTo ?? `${location.pathname}${location.search}${location.hash}`;
  location.assign(`${AUTH}/login?return_to=${encodeURIComponent(target)}`);
}

/** End the session here and at the provider; other tabs are told at once. */
export async function logout() {
  const res = await globalThis.fetch(`${AUTH}/logout`, { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF': '1' } });
  const body = await res.json().catch(() => ({}));
  bus()?.postMessage('logout');
  if (!res.ok) throw new Error(`edge-bff: logout failed (${body.error ?? res.status})`);
  location.assign(body.logout_url);
}

/** `fetch` for the app's APIs: adds `X-CSRF: 1` and same-origin credentials; a 401
 * `unauthorized` or `session_expired` calls the onUnauthenticated callback, or login(). */
export async function fetch(input, init = {}) {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set('X-CSRF', '1');
  const res = await globalThis.fetch(input, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401) {
    const error = await res.clone().json().then((b) => b.error, () => undefined);
    if (error === 'unauthorized' || error === 'session_expired') {
      if (unauthenticated) unauthenticated(error);
      else login();
    }
  }
  return res;
}

/** Handle "not logged in" yourself instead of the automatic login(); `null` restores it. */
export function onUnauthenticated(callback) {
  unauthenticated = callback;
}

/** Run `callback` when another tab logs out. Returns a function that removes it. */
export function onLogout(callback) {
  bus();
  logoutListeners.add(callback);
  return () => logoutListeners.delete(callback);
}
