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
/** Characters at the end of a sealed text that key the memory of handed-over cookies. */
const HASHED_TAIL = 32;

/** Whether the UTF-16 code unit `c` is white space to Rust's `char::is_whitespace`
 * (JavaScript's `trim` differs: U+0085 is Rust's, U+FEFF is not). */
function isSpace(c) {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0 || c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** `text.slice(start, end)` without white space at either end (Rust's `trim`), and, when
 * `quotes`, without `"` at either end after that (`trim_matches('"')`). */
function trimmed(text, start, end, quotes) {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  if (quotes) {
    while (start < end && text.charCodeAt(start) === 0x22) start++;
    while (end > start && text.charCodeAt(end - 1) === 0x22) end--;
  }
  return text.slice(start, end);
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
  let main = null; // the main cookie's value
  let chunks = null; // chunk number → value
  let count = 0;
  for (let start = 0; start <= header.length && count < MAX_COOKIES; ) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const piece = start;
    start = end + 1;
    const eq = header.indexOf('=', piece);
    if (eq < 0 || eq >= end) continue;
    // Rust trims the piece first, then splits at its first `=`: the same `=`, as white
    // space holds none.
    const cookie = trimmed(header, piece, eq, false);
    if (cookie === '') continue;
    count++;
    if (!cookie.startsWith(name)) continue;
    const rest = cookie.slice(name.length);
    if (rest !== '' && !(rest.startsWith('.') && isChunkNumber(rest.slice(1)))) continue;
    const value = trimmed(header, eq + 1, end, true);
    if (rest === '') {
      if (main !== null) return null;
      main = value;
    } else {
      chunks ??= new Map();
      if (chunks.has(rest)) return null;
      chunks.set(rest, value);
    }
  }
  if (main) return main;
  if (chunks === null) return null;
  let joined = '';
  for (let i = 1; i <= MAX_CHUNKS; i++) {
    const chunk = chunks.get(`.${i}`);
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
    // Kept by the text's last 32 characters (they hold the AES-GCM tag, which differs
    // between any two seals): hashing the whole 1–4 KB text on every request would cost
    // more than the rest of the lookup. A hit compares the whole text.
    this.handed = new Map();
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
    if (sealed === null || sealed.length > this.maxSealed || this.handed.get(sealed.slice(-HASHED_TAIL)) === sealed) return null;
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
    this.handed.set(sealed.slice(-HASHED_TAIL), sealed);
  }

  /** Forget every handed-over cookie (the core's memory was lost with its instance). */
  forget() {
    this.handed.clear();
  }
}
