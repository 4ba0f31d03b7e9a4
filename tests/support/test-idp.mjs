// A small OpenID provider for what the real one will not do: sign defective ID tokens,
// rotate keys on command, misbehave on refresh. It speaks real HTTP and signs real JWTs
// (npm `jose`); tests set `idp.scenario` before each step and read `idp.stats`.
import http from 'node:http';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK, jwtVerify, createLocalJWKSet } from 'jose';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

async function keyPair(alg, kid, extra = {}) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { crv: alg === 'EdDSA' ? 'Ed25519' : undefined, extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', ...extra };
  return { alg, kid, privateKey, jwk };
}

/** The test tenants of `multiTenant` mode (lowercase GUIDs, as Entra ID writes them). */
export const TENANT_A = '11111111-2222-4333-8444-555555555555';
export const TENANT_B = '66666666-7777-4888-9999-aaaaaaaaaaaa';

/**
 * Start the provider. With `multiTenant` it behaves like Microsoft Entra ID's
 * `/organizations` endpoint: discovery at `{issuer}/organizations/v2.0` names the issuer
 * as the template `{issuer}/{tenantid}/v2.0`, and each ID token carries its user's tenant
 * in `tid` (`scenario.tid`, default TENANT_A) and that tenant's issuer in `iss` (as does
 * the authorization response's `iss`).
 */
export async function startTestProvider({ clientId = 'edge-bff', clientSecret = 'test-idp-secret', redirectOrigin, port = 0, multiTenant = false } = {}) {
  const keys = {
    RS256: await keyPair('RS256', 'rsa-1'),
    ES256: await keyPair('ES256', 'ec-1'),
    EdDSA: await keyPair('EdDSA', 'ed-1'),
  };
  keys.PS256 = await keyPair('PS256', 'pss-1');
  const rotated = await keyPair('RS256', 'rsa-2');
  const stranger = await keyPair('RS256', 'rsa-unknown');

  const state = {
    published: [keys.RS256.jwk, keys.PS256.jwk, keys.ES256.jwk, keys.EdDSA.jwk],
    codes: new Map(),
    refreshTokens: new Map(), // token → { sub, used }
    stats: { discovery: 0, jwks: 0, token: 0, refresh: 0, revoke: [], userinfo: 0 },
  };

  const server = http.createServer();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const issuer = `http://localhost:${server.address().port}`;

  const tenantIssuer = () => `${issuer}/${idp.scenario.tid ?? TENANT_A}/v2.0`;
  const idp = {
    issuer,
    /** With `multiTenant`: the OIDC_ISSUER to configure (the multi-tenant endpoint). */
    multiTenantIssuer: `${issuer}/organizations/v2.0`,
    clientId,
    clientSecret,
    stats: state.stats,
    /** ID token defect and signing algorithm for the next code exchange (and other
     * behaviour: `discoveryDelayMs` holds each discovery answer that long). */
    scenario: { alg: 'RS256', defect: null, accessTtl: 3600, refresh: 'rotate', tokenDelayMs: 0 },
    /** Publish the rotated key (kid rsa-2) and sign with it from now on. */
    rotateKeys() {
      state.published = [rotated.jwk, keys.PS256.jwk, keys.ES256.jwk, keys.EdDSA.jwk];
      keys.RS256 = rotated;
    },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
    /**
     * A back-channel logout token for `sub`/`sid` (either may be null), with an optional
     * defect: bad-signature, alg-none, wrong-iss, wrong-aud, no-events, nonce, no-subject,
     * old-iat, unknown-kid.
     */
    async logoutToken({ sub = 'user-1', sid = null, defect = null } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const c = { iss: multiTenant ? tenantIssuer() : issuer, aud: clientId, iat: now, jti: b64u(randomBytes(8)), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } };
      if (multiTenant) c.tid = idp.scenario.tid ?? TENANT_A;
      if (sub) c.sub = sub;
      if (sid) c.sid = sid;
      if (defect === 'wrong-iss') c.iss = 'http://localhost:1/other';
      if (defect === 'wrong-aud') c.aud = 'someone-else';
      if (defect === 'no-events') delete c.events;
      if (defect === 'nonce') c.nonce = 'n';
      if (defect === 'no-subject') { delete c.sub; delete c.sid; }
      if (defect === 'old-iat') c.iat = now - 3600;
      if (defect === 'alg-none') return `${b64u(JSON.stringify({ alg: 'none' }))}.${b64u(JSON.stringify(c))}.`;
      const key = defect === 'unknown-kid' ? stranger : keys.ES256;
      let token = await new SignJWT(c).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'logout+jwt' }).sign(key.privateKey);
      if (defect === 'bad-signature') {
        const [h, p, sig] = token.split('.');
        const bytes = Buffer.from(sig, 'base64url');
        bytes[3] ^= 1;
        token = `${h}.${p}.${b64u(bytes)}`;
      }
      return token;
    },
  };

  function claimsFor(sub, nonce) {
    const now = Math.floor(Date.now() / 1000);
    const c = { iss: issuer, aud: clientId, sub, nonce, iat: now, exp: now + 600, name: 'Test User', sid: idp.scenario.sid ?? 'sid-' + sub };
    if (multiTenant) {
      c.iss = tenantIssuer();
      c.tid = idp.scenario.tid ?? TENANT_A;
    }
    // Large providers' tokens: group lists and the like.
    // Extra ID token claims for one scenario; a null value removes the claim.
    for (const [name, value] of Object.entries(idp.scenario.claims ?? {})) {
      if (value === null) delete c[name];
      else c[name] = value;
    }
    if (idp.scenario.padding) c.groups = Array.from({ length: Math.ceil(idp.scenario.padding / 30) }, (_, i) => `group-${String(i).padStart(4, '0')}-${'x'.repeat(24)}`);
    return c;
  }

  async function signIdToken(claims) {
    const { alg, defect } = idp.scenario;
    const c = { ...claims };
    switch (defect) {
      case 'wrong-iss': c.iss = 'http://localhost:1/other'; break;
      case 'wrong-aud': c.aud = 'someone-else'; break;
      case 'wrong-azp': c.azp = 'someone-else'; break;
      case 'multi-aud-no-azp': c.aud = [clientId, 'api']; break;
      case 'wrong-nonce': c.nonce = 'not-the-nonce'; break;
      case 'expired': c.exp = c.iat - 3600; c.iat -= 7200; break;
      case 'no-sub': delete c.sub; break;
      case 'no-iat': delete c.iat; break;
      case 'future-iat': c.iat += 3600; c.exp += 3600; break;
      default: break;
    }
    if (defect === 'alg-none') {
      return `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64u(JSON.stringify(c))}.`;
    }
    if (defect === 'hs256-client-secret') {
      const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: keys.RS256.kid }))}.${b64u(JSON.stringify(c))}`;
      return `${input}.${b64u(createHmac('sha256', clientSecret).update(input).digest())}`;
    }
    const key = defect === 'unknown-kid' ? stranger : keys[alg];
    const header = { alg, typ: 'JWT' };
    if (defect !== 'no-kid') header.kid = key.kid;
    if (defect === 'embedded-jwk') header.jwk = stranger.jwk;
    const signer = defect === 'embedded-jwk' ? stranger : key;
    let token = await new SignJWT(c).setProtectedHeader(header).sign(signer.privateKey);
    if (defect === 'bad-signature') {
      const [h, p, s] = token.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[5] ^= 0x01;
      token = `${h}.${p}.${b64u(sig)}`;
    }
    return token;
  }

  function issueRefreshToken(sub) {
    const rt = b64u(randomBytes(24));
    state.refreshTokens.set(rt, { sub, used: false });
    return rt;
  }

  function json(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  async function readForm(req) {
    let body = '';
    for await (const chunk of req) body += chunk;
    return new URLSearchParams(body);
  }

  async function clientAuthenticated(req, form) {
    // private_key_jwt (RFC 7523): verified against `idp.assertionKeys` (a JWKS) with the
    // audience this provider insists on (`idp.assertionAudience`: 'issuer' or 'endpoint').
    if (form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      if (!idp.assertionKeys) return false;
      const audience = idp.assertionAudience === 'endpoint' ? `${issuer}/token` : issuer;
      try {
        await jwtVerify(form.get('client_assertion'), createLocalJWKSet(idp.assertionKeys), { issuer: clientId, subject: clientId, audience, maxTokenAge: 120 });
        return form.get('client_secret') === null;
      } catch {
        return false;
      }
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, secret] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
      return id === clientId && secret === clientSecret;
    }
    return form.get('client_id') === clientId && form.get('client_secret') === clientSecret;
  }

  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      const discovery = multiTenant ? '/organizations/v2.0/.well-known/openid-configuration' : '/.well-known/openid-configuration';
      if (url.pathname === discovery) {
        state.stats.discovery++;
        if (idp.scenario.discoveryDelayMs) await new Promise((r) => setTimeout(r, idp.scenario.discoveryDelayMs));
        return json(res, 200, {
          issuer: multiTenant ? `${issuer}/{tenantid}/v2.0` : issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          userinfo_endpoint: `${issuer}/userinfo`,
          revocation_endpoint: `${issuer}/revoke`,
          end_session_endpoint: `${issuer}/logout`,
          authorization_response_iss_parameter_supported: !multiTenant,
          code_challenge_methods_supported: ['S256'],
        });
      }
      if (url.pathname === '/jwks') {
        state.stats.jwks++;
        return json(res, 200, { keys: state.published });
      }
      if (url.pathname === '/authorize') {
        const q = url.searchParams;
        const code = b64u(randomBytes(16));
        state.codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirect: q.get('redirect_uri'), sub: 'user-' + (idp.scenario.sub ?? '1') });
        const back = new URL(q.get('redirect_uri'));
        back.searchParams.set('code', code);
        back.searchParams.set('state', q.get('state'));
        // `scenario.responseIss`: null sends none (Entra ID sends none), a string that value.
        const responseIss = idp.scenario.responseIss === undefined ? (multiTenant ? tenantIssuer() : issuer) : idp.scenario.responseIss;
        if (responseIss !== null) back.searchParams.set('iss', responseIss);
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }
      if (url.pathname === '/token' && req.method === 'POST') {
        state.stats.token++;
        const form = await readForm(req);
        if (idp.scenario.tokenHangOnce && form.get('grant_type') === 'refresh_token') {
          // Hold this refresh without processing it until the caller goes away (a request
          // the provider never saw completed).
          idp.scenario.tokenHangOnce = false;
          state.stats.hung = (state.stats.hung ?? 0) + 1;
          await new Promise((r) => res.on('close', r));
          return;
        }
        if (idp.scenario.tokenDelayMs) await new Promise((r) => setTimeout(r, idp.scenario.tokenDelayMs));
        if (!(await clientAuthenticated(req, form))) return json(res, 401, { error: 'invalid_client' });
        if (form.get('grant_type') === 'authorization_code') {
          const entry = state.codes.get(form.get('code'));
          state.codes.delete(form.get('code'));
          if (!entry) return json(res, 400, { error: 'invalid_grant' });
          const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
          if (challenge !== entry.challenge) return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE' });
          return json(res, 200, {
            access_token: 'at-' + b64u(randomBytes(16)),
            token_type: 'Bearer',
            expires_in: idp.scenario.accessTtl,
            ...(idp.scenario.noRefreshToken ? {} : { refresh_token: issueRefreshToken(entry.sub) }),
            id_token: await signIdToken(claimsFor(entry.sub, entry.nonce)),
          });
        }
        if (form.get('grant_type') === 'refresh_token') {
          state.stats.refresh++;
          const mode = idp.scenario.refresh;
          if (mode === 'down') return json(res, 503, { error: 'temporarily_unavailable' });
          // Glewlwyd's answer to a spent or revoked refresh token: 400 and no body.
          if (mode === 'empty-400') {
            res.writeHead(400, { 'content-length': '0' });
            return res.end();
          }
          if (mode === 'invalid-client') return json(res, 401, { error: 'invalid_client' });
          const entry = state.refreshTokens.get(form.get('refresh_token'));
          if (!entry || entry.used || mode === 'reject') return json(res, 400, { error: 'invalid_grant' });
          entry.used = mode === 'rotate';
          const body = { access_token: 'at-' + b64u(randomBytes(16)), token_type: 'Bearer', expires_in: idp.scenario.accessTtl };
          if (mode === 'rotate') body.refresh_token = issueRefreshToken(entry.sub);
          if (idp.scenario.refreshIdToken) {
            body.id_token = await signIdToken({ ...claimsFor(idp.scenario.refreshIdToken.sub ?? entry.sub), nonce: undefined });
          }
          return json(res, 200, body);
        }
        return json(res, 400, { error: 'unsupported_grant_type' });
      }
      if (url.pathname === '/revoke' && req.method === 'POST') {
        const form = await readForm(req);
        state.stats.revoke.push({ token: form.get('token'), hint: form.get('token_type_hint'), authenticated: clientAuthenticated(req, form) });
        if (idp.scenario.revoke === 'down') return json(res, 503, { error: 'temporarily_unavailable' });
        return json(res, 200, {});
      }
      if (url.pathname === '/userinfo') {
        state.stats.userinfo++;
        if (idp.scenario.userinfo === 'down') return json(res, 500, { error: 'server_error' });
        if (idp.scenario.userinfo === 'endless') {
          // A body that never ends (no Content-Length): counts what it could send before
          // the client went away.
          res.writeHead(200, { 'content-type': 'application/json' });
          const chunk = Buffer.alloc(64 * 1024, 0x20);
          state.stats.userinfoBytes = 0;
          let open = true;
          res.on('close', () => { open = false; });
          while (open) {
            state.stats.userinfoBytes += chunk.length;
            if (!res.write(chunk)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
          }
          return;
        }
        const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
        if (!auth) return json(res, 401, { error: 'invalid_token' });
        return json(res, 200, { sub: 'user-' + (idp.scenario.sub ?? '1'), name: 'Test User', email: 'test@example.com' });
      }
      json(res, 404, { error: 'not_found' });
    } catch (e) {
      json(res, 500, { error: 'server_error', error_description: String(e) });
    }
  });

  idp.state = state;
  return idp;
}
