// A JavaScript peer of edge-bff for scripts/bench.sh (issue 16): a Hono Worker with
// @hono/oidc-auth, the ready-made OIDC middleware Workers users pick, doing the same jobs
// as the bench rows measure: its own login against the local provider (authorization code
// with PKCE, session in a signed JWT cookie), "who is logged in" at GET /auth/session, and
// a proxied GET under /api/ that adds the access token. Bundled and minified by esbuild
// as `wrangler deploy --minify` would (scripts/bench.sh).
//
// @hono/oidc-auth keeps the refresh token and the claims the claims hook returns in its
// session cookie; the access token is added here through that hook (the package's way
// to keep more of the token response), so the proxy can send it.
import { Hono } from 'hono';
import { getAuth, oidcAuthMiddleware, processOAuthCallback } from '@hono/oidc-auth';

/** The session's claims: who, plus the access token the proxy sends. */
async function claimsHook(orig, claims, response) {
  return {
    sub: claims?.sub ?? orig?.sub ?? '',
    email: claims?.email ?? orig?.email,
    name: claims?.name ?? orig?.name,
    atk: response.access_token ?? orig?.atk,
  };
}

const app = new Hono();

app.get('/auth/callback', (c) => {
  c.set('oidcClaimsHook', claimsHook);
  return processOAuthCallback(c);
});

app.use('*', async (c, next) => {
  c.set('oidcClaimsHook', claimsHook);
  return next();
});
app.use('*', oidcAuthMiddleware());

app.get('/auth/session', async (c) => {
  const auth = await getAuth(c);
  return c.json({ authenticated: true, user: { sub: auth.sub, email: auth.email, name: auth.name } });
});

app.all('/api/*', async (c) => {
  const auth = await getAuth(c);
  const url = new URL(c.req.url);
  const target = `${c.env.UPSTREAM}${url.pathname.slice('/api'.length)}${url.search}`;
  const headers = new Headers(c.req.raw.headers);
  headers.delete('cookie');
  headers.set('authorization', `Bearer ${auth.atk}`);
  const bodiless = c.req.method === 'GET' || c.req.method === 'HEAD';
  const upstream = await fetch(target, { method: c.req.method, headers, body: bodiless ? null : c.req.raw.body, redirect: 'manual' });
  // A copy with mutable headers: the middleware may set the session cookie on the way
  // out (the package's README does the same).
  return new Response(upstream.body, upstream);
});

export default app;
