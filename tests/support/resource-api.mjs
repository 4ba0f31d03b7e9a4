// A resource server for route-token tests (docs/api.md section 4, "Route tokens"): it
// accepts only JWT access tokens signed by the provider (its JWKS) whose `aud` is its own
// resource, and records what reached it. `reject(token)` makes it refuse that token once
// more with a 401 (an API that revoked it).
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

/**
 * Start it for `resource` (its audience), trusting tokens of `issuer`. Every call is
 * recorded in `seen` as { path, authorization, token, aud, sub, client_id, scope, ok }.
 * Answers 200 with { aud, sub, client_id, scope } or 401.
 */
export async function startResourceApi({ issuer, resource }) {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const seen = [];
  const rejected = new Set();
  const server = http.createServer(async (req, res) => {
    const authorization = req.headers.authorization ?? '';
    const token = /^(?:Bearer|DPoP) (.+)$/.exec(authorization)?.[1];
    const record = { path: req.url, authorization, token, dpop: req.headers.dpop ?? null, ok: false };
    seen.push(record);
    const refuse = (why) => {
      record.why = why;
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_token', why }));
    };
    if (!token) return refuse('no token');
    if (rejected.delete(token)) return refuse('revoked');
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer, audience: resource });
      Object.assign(record, { aud: payload.aud, sub: payload.sub, client_id: payload.client_id, scope: payload.scope, ok: true });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ aud: payload.aud, sub: payload.sub ?? null, client_id: payload.client_id, scope: payload.scope ?? null }));
    } catch (e) {
      refuse(e.code ?? e.message);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    seen,
    reject: (token) => rejected.add(token),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}
