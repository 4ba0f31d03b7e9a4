// The demo SPA: everything goes through the Worker's agent under /auth with cookies only.
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
  const authError = new URLSearchParams(location.search).get('auth_error');
  if (authError) showError(`Login failed: ${authError}`);
  let session;
  try {
    const res = await fetch('/auth/session', { credentials: 'same-origin' });
    session = await res.json();
    if (!res.ok) throw new Error(session.error ?? res.status);
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
  }
  show('authenticated', session.authenticated);
  show('anonymous', !session.authenticated);
}

$('login').addEventListener('click', () => {
  location.assign(`/auth/login?return_to=${encodeURIComponent(location.pathname)}`);
});

$('logout').addEventListener('click', async () => {
  const res = await fetch('/auth/logout', { method: 'POST', headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
  const body = await res.json();
  if (!res.ok) return showError(`Logout failed: ${body.error}`);
  location.assign(body.logout_url);
});

$('call-api').addEventListener('click', async () => {
  const res = await fetch('/api/hello', { headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
  const text = await res.text();
  $('api-result').textContent = `${res.status}\n${text}`;
  show('api-result', true);
});

refresh();
