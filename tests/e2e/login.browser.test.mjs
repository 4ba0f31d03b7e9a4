// A person's login in real Chromium: the demo SPA served by the built Worker (Miniflare on
// a real port), the real oidc-provider, clicks and typing only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { startProvider, DEMO_USER, ADMIN_USER, DEMO_REPORTS_RESOURCE } from '../support/idp.mjs';
import { startWorker, newCookieKeys, freePort, ROOT } from '../support/worker.mjs';
import { launchChromium } from '../support/browser.mjs';
import { startDemoApi } from '../support/demo-api.mjs';

const ARTIFACTS = path.join(ROOT, 'tests/.artifacts');
let idp;
let api;
let w;
let browser;
let origin;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const port = await freePort();
  origin = `http://localhost:${port}`;
  idp = await startProvider({
    redirectOrigin: origin,
    clientSecret: 'browser-test-secret',
    resourceServers: { [DEMO_REPORTS_RESOURCE]: 'reports:read' },
    clientCredentials: true,
    clientScope: 'openid profile email offline_access reports:read',
  });
  api = await startDemoApi({ tickMs: 300 });
  w = await startWorker(
    {
      OIDC_ISSUER: idp.issuer,
      CLIENT_ID: 'edge-bff',
      CLIENT_SECRET: 'browser-test-secret',
      PUBLIC_ORIGIN: origin,
      COOKIE_KEYS: newCookieKeys(),
      API_ROUTES: JSON.stringify([
        { prefix: '/api/', upstream: `http://127.0.0.1:${api.port}/api/` },
        { prefix: '/admin/', upstream: `http://127.0.0.1:${api.port}/admin/`, require: { groups: 'admin' } },
        { prefix: '/events/', upstream: `http://127.0.0.1:${api.port}/events/`, event_stream: true },
        { prefix: '/ws/', upstream: `http://127.0.0.1:${api.port}/ws/`, websocket: true },
        { prefix: '/reports/', upstream: `http://127.0.0.1:${api.port}/reports/`, token_request: { resource: DEMO_REPORTS_RESOURCE, scope: 'reports:read' } },
        { prefix: '/app-api/', upstream: `http://127.0.0.1:${api.port}/app/`, token: 'client', token_request: { resource: DEMO_REPORTS_RESOURCE, scope: 'reports:read' } },
      ]),
      SCOPES: 'openid profile email reports:read',
    },
    { port },
  );
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await w?.close();
  await api?.close();
  await idp?.close();
});

/** Click "Log in" in the demo SPA, sign in at the provider as `user`, and wait for the SPA to show the user. */
async function logIn(page, user) {
  await page.click('#login');
  await page.waitForURL(`${idp.issuer}/interaction/**`);
  await page.fill('#login', user.username);
  await page.fill('#password', user.password);
  await page.click('#submit');
  await page.waitForURL(`${origin}/`);
  await page.waitForSelector('#user-name:visible');
}

/** A fresh browser context with the demo SPA open; `errors` collects the page's script errors. */
async function openApp() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/`);
  return { context, page, errors };
}

test('log in through the demo SPA, see the user, call the API through the proxy, log out in one tab and the other notices', async () => {
  const { context, page, errors } = await openApp();
  try {
    await page.waitForSelector('#login:visible');
    assert.equal(await page.textContent('#status'), 'Not logged in.');

    await logIn(page, DEMO_USER);
    assert.equal(await page.textContent('#user-name'), 'Dana Demo');
    assert.equal(await page.textContent('#user-email'), `(${DEMO_USER.claims.email})`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'logged-in.png') });

    const cookies = await context.cookies(origin);
    const session = cookies.find((c) => c.name === '__Host-bff-session');
    assert.ok(session, 'session cookie stored by the browser');
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'JavaScript sees no cookie');

    await page.click('#call-api');
    await page.waitForSelector('#api-result:visible');
    const result = await page.textContent('#api-result');
    assert.match(result, /^200\n/);
    const body = JSON.parse(result.slice(4));
    assert.equal(body.message, 'Hello from the demo API');
    assert.equal(body.bearer_token_received, true, 'the proxy added the access token');
    assert.equal(body.token_aud, null, 'the login route gets the login\'s own (opaque) token');

    // Tokens for every API: the reports API gets a token for its resource, on behalf of the
    // user; the app route gets the application's own token.
    await page.click('#call-reports');
    await page.waitForSelector('#reports-result:visible');
    const reports = await page.textContent('#reports-result');
    assert.match(reports, /^200\n/, reports);
    assert.deepEqual([JSON.parse(reports.slice(4)).token_aud, JSON.parse(reports.slice(4)).token_sub], [DEMO_REPORTS_RESOURCE, DEMO_USER.claims.sub]);
    await page.click('#call-app');
    await page.waitForSelector('#app-result:visible');
    const app = await page.textContent('#app-result');
    assert.match(app, /^200\n/, app);
    assert.deepEqual([JSON.parse(app.slice(4)).token_aud, JSON.parse(app.slice(4)).token_sub], [DEMO_REPORTS_RESOURCE, 'edge-bff']);

    const other = await context.newPage();
    await other.goto(`${origin}/`);
    await other.waitForSelector('#user-name:visible');

    await page.click('#logout');
    await page.waitForURL(`${idp.issuer}/session/end**`);
    await page.click('button[autofocus], button:has-text("Yes")');
    await page.waitForURL(`${origin}/`);
    await page.waitForSelector('#login:visible');
    assert.equal(await page.textContent('#status'), 'Not logged in.');
    const after = await context.cookies(origin);
    assert.ok(!after.some((c) => c.name.startsWith('__Host-bff-session')), 'session cookies cleared');
    // The other tab heard about the logout over BroadcastChannel and updated itself.
    await other.waitForSelector('#login:visible', { timeout: 5000 });
    assert.equal(await other.textContent('#status'), 'Not logged in.');
    assert.deepEqual(errors, [], 'no script errors (CSP allows the app)');
  } finally {
    await context.close();
  }
});

test('a failed login shows the error code, not provider text', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${origin}/auth/callback?error=access_denied&error_description=%3Cb%3Ex%3C%2Fb%3E&state=x`);
    await page.waitForSelector('#error:visible');
    assert.equal(await page.textContent('#error'), 'Login failed: login_expired');
  } finally {
    await context.close();
  }
});

test('two logins in two tabs both succeed, whichever finishes first', async () => {
  for (const order of [['second', 'first'], ['first', 'second']]) {
    const context = await browser.newContext();
    try {
      const tabs = {};
      // Both tabs start a login before either finishes: each reaches the provider's form.
      for (const name of ['first', 'second']) {
        const page = await context.newPage();
        await page.goto(`${origin}/auth/login?return_to=${encodeURIComponent(`/?tab=${name}`)}`);
        await page.waitForURL(`${idp.issuer}/interaction/**`);
        tabs[name] = page;
      }
      const loginCookies = (await context.cookies(origin)).filter((c) => c.name.startsWith('__Host-bff-login'));
      assert.equal(loginCookies.length, 2, 'one login cookie per attempt');
      for (const name of order) {
        const page = tabs[name];
        await page.fill('#login', DEMO_USER.username);
        await page.fill('#password', DEMO_USER.password);
        await page.click('#submit');
        await page.waitForURL(`${origin}/?tab=${name}`);
        await page.waitForSelector('#user-name:visible');
        assert.equal(await page.textContent('#user-name'), 'Dana Demo', `${name} tab (order ${order.join(', ')})`);
        assert.ok(!page.url().includes('auth_error'), page.url());
      }
      const left = (await context.cookies(origin)).filter((c) => c.name.startsWith('__Host-bff-login'));
      assert.deepEqual(left, [], 'every login cookie cleared by its own callback');
    } finally {
      await context.close();
    }
  }
});

test('route options from the demo SPA: the admin-only call, a live EventSource and a WebSocket through the Worker', async () => {
  for (const [user, adminStatus] of [[DEMO_USER, 403], [ADMIN_USER, 200]]) {
    const { context, page, errors } = await openApp();
    try {
      await logIn(page, user);
      assert.equal(await page.textContent('#user-name'), user.claims.name);

      await page.click('#call-admin');
      await page.waitForSelector('#admin-result:visible');
      const admin = await page.textContent('#admin-result');
      assert.match(admin, new RegExp(`^${adminStatus}\n`), `${user.username}: ${admin}`);
      if (adminStatus === 403) assert.equal(JSON.parse(admin.slice(4)).error, 'forbidden');

      await page.click('#start-events');
      await page.waitForFunction(() => (document.querySelector('#events-result')?.textContent ?? '').split('\n').length >= 2, null, { timeout: 5000 });
      const events = (await page.textContent('#events-result')).split('\n').map((l) => JSON.parse(l));
      assert.ok(events[0].tick > events[1].tick, 'events arrive one by one, live');
      assert.equal(events[0].bearer_token_received, true, 'the stream carried the access token');

      await page.click('#open-socket');
      await page.waitForSelector('#socket-result:visible');
      const socket = await page.textContent('#socket-result');
      assert.ok(socket.startsWith('WebSocket: '), socket);
      const echo = JSON.parse(socket.slice('WebSocket: '.length));
      assert.equal(echo.echo, 'ping from the SPA');
      assert.equal(echo.bearer_token_received, true, 'the handshake carried the access token');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});
