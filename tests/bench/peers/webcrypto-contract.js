// A JavaScript peer of edge-bff for scripts/bench.sh (issue 27): the contract's hot paths
// written with WebCrypto, reading edge-bff's own session cookies, so both Workers are
// measured on the very same cookies (remembered or unseen). It does what edge-bff's
// direct path does for GET /auth/session and a proxied GET: find the session cookie
// (`__Host-bff-session`, or its chunks `.1` … `.10`), open `<kid>.<base64url(nonce ‖
// ciphertext ‖ tag)>` with AES-256-GCM under the key HKDF-SHA256 derives from
// COOKIE_KEYS (salt "edge-bff", info "edge-bff v1 cookie"; the cookie's name as
// associated data), check the session's times, and answer or forward with the access
// token. Like edge-bff it remembers the sessions it opened (by sealed text), so a
// remembered cookie costs no decryption. It skips what edge-bff also checks (CSRF
// details, duplicate cookies, the deny-list): a lower bound for a JavaScript Worker.

const NAME = '__Host-bff-session';
const MAX_CHUNKS = 10;
const REMEMBERED = 256; // as edge-bff's opened-session cache (session::opened_cache::CAPACITY)
const decoder = new TextDecoder();
let keys; // Map kid → CryptoKey, derived once per isolate
const remembered = new Map(); // sealed text → session

function b64urlDecode(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function cookieKeys(spec) {
  const ring = new Map();
  for (const entry of spec.split(/[\s,]+/).filter(Boolean)) {
    const [kid, material] = entry.split(':');
    const ikm = await crypto.subtle.importKey('raw', b64urlDecode(material), 'HKDF', false, ['deriveKey']);
    const key = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: new TextEncoder().encode('edge-bff'), info: new TextEncoder().encode('edge-bff v1 cookie') },
      ikm,
      { name: 'AES-GCM', length: 256 },
      false,
      ['decrypt'],
    );
    ring.set(kid, key);
  }
  return ring;
}

/** The sealed session text of a Cookie header: the whole cookie, or its chunks joined. */
function sealedText(header) {
  const jar = new Map();
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) jar.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  if (jar.has(NAME)) return jar.get(NAME);
  let text = '';
  for (let n = 1; n <= MAX_CHUNKS && jar.has(`${NAME}.${n}`); n++) text += jar.get(`${NAME}.${n}`);
  return text || null;
}

async function openSession(header, now) {
  const sealed = sealedText(header ?? '');
  if (!sealed) return null;
  let session = remembered.get(sealed);
  if (!session) {
    const dot = sealed.indexOf('.');
    const key = dot > 0 && keys.get(sealed.slice(0, dot));
    if (!key) return null;
    const raw = b64urlDecode(sealed.slice(dot + 1));
    try {
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: raw.subarray(0, 12), additionalData: new TextEncoder().encode(NAME) },
        key,
        raw.subarray(12),
      );
      session = JSON.parse(decoder.decode(plain));
    } catch {
      return null;
    }
    if (remembered.size >= REMEMBERED) remembered.delete(remembered.keys().next().value);
    remembered.set(sealed, session);
  }
  return now < session.exp && now < session.ate ? session : null;
}

function claimsOf(idToken) {
  const { nonce, at_hash, c_hash, ...claims } = JSON.parse(decoder.decode(b64urlDecode(idToken.split('.')[1])));
  return claims;
}

export default {
  async fetch(request, env) {
    keys ??= await cookieKeys(env.COOKIE_KEYS);
    const url = new URL(request.url);
    const now = Math.floor(Date.now() / 1000);
    const session = await openSession(request.headers.get('cookie'), now);
    const json = (status, body) =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
    if (url.pathname === '/auth/session') {
      return session ? json(200, { authenticated: true, user: claimsOf(session.it), expires_at: session.exp }) : json(200, { authenticated: false });
    }
    if (url.pathname.startsWith('/api/')) {
      if (request.headers.get('x-csrf') !== '1') return json(403, { error: 'csrf_check_failed' });
      if (!session) return json(401, { error: 'unauthorized' });
      const headers = new Headers(request.headers);
      headers.delete('cookie');
      headers.set('authorization', `Bearer ${session.at}`);
      return fetch(`${env.UPSTREAM}${url.pathname.slice('/api'.length)}${url.search}`, { headers, redirect: 'manual' });
    }
    return json(404, { error: 'not_found' });
  },
};
