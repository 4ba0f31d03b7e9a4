// Unseen session cookies opened by the runtime's WebCrypto before the Rust module runs
// (docs/performance.md, "Unseen cookies"). An isolate meets a cookie for the first time
// very often at the edge; AES-GCM in Wasm takes about three times as long as the
// runtime's native code. So, for a request whose session cookie this isolate has not
// seen, src/runtime/entry.mjs awaits `open` here, hands the plaintext to Rust
// (`remember_opened`), which parses it and remembers it beside the cookies it opened
// itself, and then runs the request once: the core finds the cookie already opened.
//
// Nothing here decides anything. The cookie is found exactly as the core finds it
// (src/session/cookie_store.rs, src/web/cookies.rs), with the same key choice (the kid
// before the `.`), associated data (the cookie's name) and base64url rules
// (src/crypto/seal.rs). Whatever cannot be found, decoded or opened here is left to the
// core, which opens it itself and answers as it always has; a difference between the two
// parsers can only cost time, never admit a cookie (the core looks a remembered cookie
// up by its exact sealed text). src/fuzz.rs compares the two on generated headers.

/// Most cookies the core reads from one `Cookie` header (src/web/cookies.rs).
const MAX_COOKIES = 200;
/// Most chunks of one session (src/session/cookie_store.rs).
const MAX_CHUNKS = 10;
/// Bytes of an AES-GCM nonce and tag.
const NONCE_LEN = 12;
const TAG_LEN = 16;

// Rust's `str::trim` (`char::is_whitespace`), which differs from JavaScript's `trim`
// (U+0085 is Rust's, U+FEFF is not).
const EDGE_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const EDGE_QUOTES = /^"+|"+$/g;

/** Rust's `trim`. */
function trim(text) {
  return text.replace(EDGE_SPACE, '');
}

/** `1` to `MAX_CHUNKS` in edge-bff's own spelling (no sign, no leading zero). */
function isChunkNumber(text) {
  return /^[1-9][0-9]?$/.test(text) && Number(text) <= MAX_CHUNKS;
}

/**
 * The sealed session text of the `Cookie` header `header` for the session cookie `name`,
 * as the core finds it: the main cookie's value, or its chunks `.1`, `.2`, … joined; null
 * when there is no session cookie, when one of its names repeats (a tossed cookie: no
 * session), or when the text is empty. Total: any string gives a string or null.
 */
export function sealedTextOf(header, name) {
  if (typeof header !== 'string' || header.indexOf(name) < 0) return null;
  const session = new Map(); // session-cookie name → value, in the core's reading
  let count = 0;
  for (const piece of header.split(';')) {
    if (count >= MAX_COOKIES) break;
    const trimmed = trim(piece);
    const eq = trimmed.indexOf('=');
    if (eq < 0) continue;
    const cookie = trim(trimmed.slice(0, eq));
    if (cookie === '') continue;
    count++;
    if (!cookie.startsWith(name)) continue;
    const rest = cookie.slice(name.length);
    if (rest !== '' && !(rest.startsWith('.') && isChunkNumber(rest.slice(1)))) continue;
    if (session.has(cookie)) return null;
    session.set(cookie, trim(trimmed.slice(eq + 1)).replace(EDGE_QUOTES, ''));
  }
  const main = session.get(name);
  if (main) return main;
  let joined = '';
  for (let i = 1; i <= MAX_CHUNKS; i++) {
    const chunk = session.get(`${name}.${i}`);
    if (!chunk) break;
    joined += chunk;
  }
  return joined === '' ? null : joined;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The bytes of unpadded base64url `text`, with the core's rules (no padding, no other
 * characters, unused bits zero), or null. Total.
 */
export function base64urlBytes(text) {
  if (typeof text !== 'string' || !BASE64URL.test(text) || text.length % 4 === 1) return null;
  const unused = [0, 0, 0x0f, 0x03][text.length % 4];
  if (unused && BASE64URL_ALPHABET.indexOf(text[text.length - 1]) & unused) return null;
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The isolate's opener of unseen session cookies, made from what the Rust module hands
 * over once per isolate (`cookie_opener`): the session cookie's name, the longest sealed
 * text the core remembers, and the ring's derived cookie keys by kid. The keys are
 * imported as non-extractable AES-GCM keys and the bytes handed over are zeroed.
 */
export class CookieOpener {
  constructor(name, maxSealed, kids, keyBytes) {
    this.name = name;
    this.maxSealed = maxSealed;
    this.aad = new TextEncoder().encode(name);
    this.keys = new Map();
    kids.forEach((kid, i) => {
      const key = crypto.subtle.importKey('raw', keyBytes.slice(i * 32, i * 32 + 32), 'AES-GCM', false, ['decrypt']);
      key.catch(() => {}); // a failed import is an unopened cookie, below
      this.keys.set(kid, key);
    });
    keyBytes.fill(0);
    // Sealed texts the core was handed, so not opened again while it remembers them. The
    // core empties its memory when it holds this many (src/session/opened_cache.rs); this
    // set does the same. The two can drift apart (the core also remembers cookies it
    // opened itself): a cookie missing here is opened once more, one missing there is
    // opened by the core.
    this.handed = new Set();
    this.capacity = 256;
  }

  /**
   * For a request with `Cookie` header `header`: null when there is nothing to open here
   * (no session cookie, one already handed over, one too long to be remembered, an
   * unknown kid or bad base64), else the promise of `{ sealed, plaintext }` or of null
   * when it does not open. Never throws, never rejects.
   */
  open(header) {
    const sealed = sealedTextOf(header, this.name);
    if (sealed === null || sealed.length > this.maxSealed || this.handed.has(sealed)) return null;
    const dot = sealed.indexOf('.');
    const key = dot > 0 ? this.keys.get(sealed.slice(0, dot)) : undefined;
    const raw = key ? base64urlBytes(sealed.slice(dot + 1)) : null;
    if (!raw || raw.length < NONCE_LEN + TAG_LEN) return null;
    const params = { name: 'AES-GCM', iv: raw.subarray(0, NONCE_LEN), additionalData: this.aad, tagLength: TAG_LEN * 8 };
    return key
      .then((k) => crypto.subtle.decrypt(params, k, raw.subarray(NONCE_LEN)))
      .then((plain) => ({ sealed, plaintext: new Uint8Array(plain) }), () => null);
  }

  /** Note that the core was handed `sealed`. */
  handedOver(sealed) {
    if (this.handed.size >= this.capacity) this.handed.clear();
    this.handed.add(sealed);
  }

  /** Forget every handed-over cookie (the core's memory was lost with its instance). */
  forget() {
    this.handed.clear();
  }
}
