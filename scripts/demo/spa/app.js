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

// Another tab logged out: show it here too.
bff.onLogout(() => refresh());
// A 401 from the API: show the login button instead of navigating away.
bff.onUnauthenticated(() => refresh());

refresh();
