// A resource server that accepts only DPoP-bound access tokens (RFC 9449 sections 4.3,
// 7 and 9), as a real API in front of Okta or Auth0 would: `Authorization: DPoP <token>`
// plus one `DPoP` proof that verifies with its embedded key (jose), `typ` dpop+jwt,
// `htm` = the method, `htu` = this server's URL of the request without query, `iat`
// recent, `jti` never seen before, `ath` = SHA-256 of the token, and the proof's key
// thumbprint equal to the token's `jkt` (looked up with `tokenJkt`, e.g. at the real
// provider). With `nonce: true` a proof must carry the server's current nonce; a missing
// or stale one gets `401 WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce`.
// Every request is recorded in `seen` with the verdict.
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { jwtVerify, EmbeddedJWK, calculateJwkThumbprint } from 'jose';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Start the API. Options: `tokenJkt(token)` → the token's bound key thumbprint (or
 * undefined when the token is unknown), `nonce` (require server nonces),
 * `freshNonceEveryTime` (every proof is challenged: a server whose nonce never settles).
 * Resolves to { url, seen, rotateNonce(), close() }.
 */
export async function startDpopApi({ tokenJkt, nonce: requireNonce = false, freshNonceEveryTime = false } = {}) {
  const seen = [];
  const jtis = new Set();
  let currentNonce = b64url(randomBytes(16));

  const refuse = (res, record, reason, { error = 'invalid_dpop_proof', challengeNonce = false } = {}) => {
    record.verdict = reason;
    const headers = { 'content-type': 'application/json', 'www-authenticate': `DPoP algs="ES256 EdDSA", error="${error}"` };
    if (challengeNonce) headers['dpop-nonce'] = currentNonce;
    res.writeHead(401, headers);
    res.end(JSON.stringify({ error, reason }));
  };

  const server = http.createServer(async (req, res) => {
    for await (const _ of req); // drain the body
    const url = new URL(req.url, `http://${req.headers.host}`);
    const record = { method: req.method, path: url.pathname, authorization: req.headers.authorization, dpop: req.headers.dpop };
    seen.push(record);
    const [scheme, token] = (req.headers.authorization ?? '').split(' ');
    if (scheme !== 'DPoP' || !token) return refuse(res, record, 'not a DPoP token', { error: 'invalid_token' });
    const proof = req.headers.dpop;
    if (typeof proof !== 'string' || proof.includes(',')) return refuse(res, record, 'exactly one DPoP header');
    let payload;
    let protectedHeader;
    try {
      ({ payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA'] }));
    } catch (e) {
      return refuse(res, record, `signature: ${e.code ?? e.message}`);
    }
    record.claims = payload;
    if (protectedHeader.jwk.d !== undefined) return refuse(res, record, 'private key in the header');
    if (payload.htm !== req.method) return refuse(res, record, 'htm');
    if (payload.htu !== `http://${req.headers.host}${url.pathname}`) return refuse(res, record, `htu ${payload.htu}`);
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > 60) return refuse(res, record, 'iat');
    if (typeof payload.jti !== 'string' || jtis.has(payload.jti)) return refuse(res, record, 'jti reused');
    jtis.add(payload.jti);
    if (payload.ath !== b64url(createHash('sha256').update(token).digest())) return refuse(res, record, 'ath');
    const jkt = await calculateJwkThumbprint(protectedHeader.jwk);
    const bound = await tokenJkt?.(token);
    if (bound === undefined) return refuse(res, record, 'unknown token', { error: 'invalid_token' });
    if (bound !== jkt) return refuse(res, record, 'proof key is not the token\'s', { error: 'invalid_token' });
    if (freshNonceEveryTime) currentNonce = b64url(randomBytes(16));
    if ((requireNonce || freshNonceEveryTime) && payload.nonce !== currentNonce) {
      return refuse(res, record, payload.nonce ? 'stale nonce' : 'no nonce', { error: 'use_dpop_nonce', challengeNonce: true });
    }
    record.verdict = 'accepted';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, method: req.method, path: url.pathname, jkt }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    rotateNonce() {
      currentNonce = b64url(randomBytes(16));
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}
