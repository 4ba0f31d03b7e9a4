// A real OpenID Provider for tests and the dev stack: npm `oidc-provider` (a certified
// OP) with one confidential client, a demo user with a password, and a small login page.
// Usage as a program: node tests/support/idp.mjs  (env IDP_PORT, IDP_CLIENT_*, IDP_REDIRECT_ORIGIN,
// IDP_STRICT=1: PAR required, DPoP-bound tokens with nonces, and a private_key_jwt client
// whose keys are at IDP_CLIENT_JWKS_URI)
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

export const DEMO_USER = {
  username: 'demo',
  password: 'demo-password',
  claims: {
    sub: 'demo-user-0001',
    name: 'Dana Demo',
    given_name: 'Dana',
    family_name: 'Demo',
    email: 'dana.demo@example.com',
    email_verified: true,
  },
};

/** A second demo user, member of the `admin` group (the demo's `require` route). */
export const ADMIN_USER = {
  username: 'admin',
  password: 'admin-password',
  claims: {
    sub: 'demo-admin-0002',
    name: 'Ada Admin',
    given_name: 'Ada',
    family_name: 'Admin',
    email: 'ada.admin@example.com',
    email_verified: true,
    groups: ['staff', 'admin'],
  },
};
const USERS = [DEMO_USER, ADMIN_USER];

/** The demo's second API, known to the provider by this resource indicator (RFC 8707). */
export const DEMO_REPORTS_RESOURCE = 'urn:edge-bff:demo-reports';

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign in — local OpenID provider</title>
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}label{display:block;margin:.6rem 0}
input{width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1.2rem}.err{color:#b00}</style></head><body>
<h1>Local OpenID provider</h1><p>Sign in as <code>${DEMO_USER.username}</code> / <code>${DEMO_USER.password}</code>,
or as <code>${ADMIN_USER.username}</code> / <code>${ADMIN_USER.password}</code> (member of <code>admin</code>).</p>
${error ? `<p class="err" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Username <input name="login" id="login" autofocus></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="submit">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) break;
  }
  return new URLSearchParams(body);
}

/**
 * Start the provider. Options: port, clientId, clientSecret, redirectOrigin (the BFF's
 * PUBLIC_ORIGIN), authPath, tokenEndpointAuthMethod, backchannelLogoutUri, ttl overrides;
 * for private_key_jwt clients `clientJwksUri` (the Worker's /auth/jwks) or `clientJwks`;
 * `parRequired` makes pushed authorization requests (RFC 9126) mandatory; `dpopRequired`
 * registers the client with `dpop_bound_access_tokens` (RFC 9449: no token without a
 * proof) and `dpopNonce` makes every proof carry the provider's nonce.
 * `resourceServers` ({ "<resource URI>": "<space-separated scopes>" }) turns on RFC 8707
 * resource indicators: each resource gets JWT access tokens whose `aud` is the resource,
 * any other resource is `invalid_target`. `clientCredentials` allows the client the
 * `client_credentials` grant (with `clientScope`, the scopes it may ask for).
 * Resolves to { issuer, provider, server, close() }.
 */
export async function startProvider(opts = {}) {
  const port = opts.port ?? 0;
  const server = http.createServer();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = server.address().port;
  const issuer = `http://localhost:${actualPort}`;
  const origin = opts.redirectOrigin ?? 'http://localhost:8787';
  const authPath = opts.authPath ?? '/auth';
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'idp-rs256-1', use: 'sig', alg: 'RS256' };

  const client = {
    client_id: opts.clientId ?? 'edge-bff',
    client_secret: opts.clientSecret ?? 'edge-bff-local-secret',
    redirect_uris: [`${origin}${authPath}/callback`],
    post_logout_redirect_uris: [`${origin}/`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: opts.tokenEndpointAuthMethod ?? 'client_secret_basic',
  };
  if (opts.clientCredentials) {
    client.grant_types.push('client_credentials');
    if (opts.clientScope) client.scope = opts.clientScope;
  }
  if (opts.clientJwksUri) client.jwks_uri = opts.clientJwksUri;
  if (opts.dpopRequired) client.dpop_bound_access_tokens = true;
  if (opts.clientJwks) client.jwks = opts.clientJwks;
  if (opts.backchannelLogoutUri) {
    client.backchannel_logout_uri = opts.backchannelLogoutUri;
    client.backchannel_logout_session_required = true;
  }

  const resourceScopes = Object.values(opts.resourceServers ?? {}).flatMap((s) => s.split(' '));
  const provider = new Provider(issuer, {
    clients: [client],
    ...(resourceScopes.length ? { scopes: ['openid', 'offline_access', ...new Set(resourceScopes)] } : {}),
    acrValues: ['urn:edge-bff:pwd', 'urn:edge-bff:mfa'],
    jwks: { keys: [jwk] },
    cookies: { keys: ['local-oidc-provider-cookie-key'] },
    claims: {
      openid: ['sub'],
      // `groups` rides on `profile` so the demo's `require` route needs no extra scope.
      profile: ['name', 'given_name', 'family_name', 'groups'],
      email: ['email', 'email_verified'],
    },
    // Put the scope claims into the ID token too, as most providers do.
    conformIdTokenClaims: false,
    // `paddedResource`: that resource's access tokens carry 40 KB of padding (a token too
    // large for the session cookie).
    extraTokenClaims: (_ctx, token) =>
      opts.paddedResource && token.resourceServer?.audience === opts.paddedResource ? { pad: 'x'.repeat(40_000) } : undefined,
    findAccount: async (_ctx, id) => {
      const user = USERS.find((u) => u.claims.sub === id);
      return user ? { accountId: id, claims: async () => ({ ...user.claims }) } : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: Boolean(opts.backchannelLogoutUri) },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: Boolean(opts.parRequired) },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => Boolean(opts.dpopNonce) },
      clientCredentials: { enabled: Boolean(opts.clientCredentials) },
      resourceIndicators: {
        enabled: Boolean(opts.resourceServers),
        // The login's own token stays the opaque UserInfo token; a resource is used only
        // when the request names one.
        useGrantedResource: () => false,
        defaultResource: (_ctx, _client, oneOf) => (oneOf ? undefined : undefined),
        getResourceServerInfo: (_ctx, resource) => {
          const scope = opts.resourceServers?.[resource];
          if (scope === undefined) throw new errors.InvalidTarget();
          return {
            scope,
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: opts.resourceTokenTtl ?? 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    pkce: { required: () => true },
    // A first-party client: refresh tokens without asking for offline_access.
    // `noRefreshToken`: a provider that issues none (a login without offline access).
    issueRefreshToken: async (_ctx, c) => !opts.noRefreshToken && c.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      // A resource server's own lifetime for its tokens (route tokens), else the login's.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? opts.accessTokenTtl ?? 3600,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 600,
      Session: 86400,
      Grant: 86400,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // oidc-provider refuses outgoing calls to loopback addresses (SSRF protection); this
    // local provider must reach the local Worker for back-channel logout.
    fetch: (url, options) => {
      const { dispatcher: _ssrfGuard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Error</title><h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description ?? '')}</p>`;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err.message));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(new URL(req.url, issuer).pathname);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (req.method === 'POST' && match[2]) {
          const form = await readForm(req);
          const user = USERS.find((u) => u.username === form.get('login') && u.password === form.get('password'));
          if (user) {
            // Step-up: the login form stands for every method asked for; the session's `acr`
            // is the first requested value, so the ID token carries it.
            const acr = details.params.acr_values?.split(' ')[0];
            const login = { accountId: user.claims.sub, amr: ['pwd'], ...(acr ? { acr } : {}) };
            return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
          }
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(loginPage(details.uid, 'Wrong username or password.'));
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginPage(details.uid));
      }
      // Consent for the first-party client is given without asking.
      const { session, params, prompt } = details;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    }
  });

  return {
    issuer,
    port: actualPort,
    provider,
    server,
    client,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const strict = process.env.IDP_STRICT === '1'
    ? {
      parRequired: true,
      dpopRequired: true,
      dpopNonce: true,
      tokenEndpointAuthMethod: 'private_key_jwt',
      clientJwksUri: process.env.IDP_CLIENT_JWKS_URI,
    }
    : {};
  const p = await startProvider({
    ...strict,
    // The demo's route tokens: a reports API known by its resource, and app-only tokens.
    resourceServers: { [DEMO_REPORTS_RESOURCE]: 'reports:read' },
    clientCredentials: true,
    clientScope: 'openid profile email offline_access reports:read',
    port: Number(process.env.IDP_PORT ?? 9000),
    clientId: process.env.IDP_CLIENT_ID,
    clientSecret: process.env.IDP_CLIENT_SECRET,
    redirectOrigin: process.env.IDP_REDIRECT_ORIGIN,
    backchannelLogoutUri: process.env.IDP_BACKCHANNEL_LOGOUT_URI,
  });
  console.log(`local OpenID provider: ${p.issuer} (user ${DEMO_USER.username} / ${DEMO_USER.password})${process.env.IDP_STRICT === '1' ? ', strict: PAR + DPoP + private_key_jwt' : ''}`);
}
