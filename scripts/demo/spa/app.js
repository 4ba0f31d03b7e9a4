// The demo SPA: everything goes through the Worker's browser helper, /auth/client.js.
import * as bff from '/auth/client.js';

const $ = (id) => document.getElementById(id);

function show(id, on) {
  $(id).hidden = !on;
}

function showError(text) {
  $('error').textContent = text;
  show('error', Boolean(text));
}

async function refresh() {
  $('js-cookies').textContent = JSON.stringify(document.cookie);
  let session;
  try {
    session = await bff.session();
  } catch (e) {
    $('status').textContent = `Could not reach the agent (${e.message}).`;
    return;
  }
  if (session.authenticated) {
    $('status').textContent = 'Logged in.';
    $('user-name').textContent = session.user.name ?? session.user.sub;
    $('user-email').textContent = session.user.email ? `(${session.user.email})` : '';
    $('expires-at').textContent = new Date(session.expires_at * 1000).toLocaleString();
  } else {
    $('status').textContent = 'Not logged in.';
    show('api-result', false);
  }
  show('authenticated', session.authenticated);
  show('anonymous', !session.authenticated);
}

const authError = new URLSearchParams(location.search).get('auth_error');
if (authError) showError(`Login failed: ${authError}`);

$('login').addEventListener('click', () => bff.login(location.pathname));

$('logout').addEventListener('click', async () => {
  try {
    await bff.logout();
  } catch (e) {
    showError(e.message);
  }
});

$('call-api').addEventListener('click', async () => {
  const res = await bff.fetch('/api/hello');
  $('api-result').textContent = `${res.status}\n${await res.text()}`;
  show('api-result', true);
});

$('call-admin').addEventListener('click', async () => {
  const res = await bff.fetch('/admin/hello');
  $('admin-result').textContent = `${res.status}\n${await res.text()}`;
  show('admin-result', true);
});

// Route tokens: the Worker picks each route's token; the page only calls its own origin.
for (const [button, path, out] of [['call-reports', '/reports/hello', 'reports-result'], ['call-app', '/app-api/hello', 'app-result']]) {
  $(button).addEventListener('click', async () => {
    const res = await bff.fetch(path);
    $(out).textContent = `${res.status}\n${await res.text()}`;
    show(out, true);
  });
}

// Server-sent events: a plain EventSource. It is same-origin, so the browser sends the
// session cookie and `Sec-Fetch-Site: same-origin`, which is what the Worker asks of
// an event stream instead of `X-CSRF`.
let events;
$('start-events').addEventListener('click', () => {
  events?.close();
  const lines = [];
  events = new EventSource('/events/ticks');
  events.onmessage = (e) => {
    lines.unshift(e.data);
    $('events-result').textContent = lines.slice(0, 5).join('\n');
    show('events-result', true);
  };
  events.onerror = () => {
    // 401 or 403 (no session, logged out) also land here: EventSource shows no status.
    $('events-result').textContent = 'event stream closed';
    events.close();
  };
});

// A WebSocket: the browser sends the session cookie and its Origin, which the Worker
// checks instead of `X-CSRF`.
$('open-socket').addEventListener('click', () => {
  const url = new URL('/ws/echo', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url);
  socket.onopen = () => socket.send('ping from the SPA');
  socket.onmessage = (e) => {
    $('socket-result').textContent = `WebSocket: ${e.data}`;
    show('socket-result', true);
    socket.close();
  };
  socket.onerror = () => {
    $('socket-result').textContent = 'WebSocket refused';
    show('socket-result', true);
  };
});

// Another tab logged out: show it here too.
bff.onLogout(() => refresh());
// A 401 from the API: show the login button instead of navigating away.
bff.onUnauthenticated(() => refresh());

refresh();
