import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProvider } from '../support/idp.mjs';
import { startWorker, newCookieKeys } from '../support/worker.mjs';

test('smoke', async () => {
  const idp = await startProvider({});
  const w = await startWorker({ OIDC_ISSUER: idp.issuer, CLIENT_ID: 'edge-bff', CLIENT_SECRET: 'edge-bff-local-secret', PUBLIC_ORIGIN: 'http://localhost:8787', COOKIE_KEYS: newCookieKeys() });
  try {
    const r = await w.fetch('/auth/login');
    console.log(r.status, [...r.headers]);
    console.log(await r.text());
    console.log(w.logs);
  } finally {
    await w.close();
    await idp.close();
  }
});
