// Small JavaScript helpers of the Worker glue (src/runtime/js.rs declares them). Each
// replaces many JS↔Wasm crossings (one or more per header) with one call; measured in
// docs/performance.md. They make no decisions: the Rust core decides which headers go,
// which are set and what the answer is.
//
// It also holds the two pieces of the request's life that must work when the Wasm
// instance cannot: the trap guard (`guarded`) and the continuation of a direct call
// (`proxyDirect`), which is plain JavaScript once the Rust core has decided the call.
//
// Header lists cross as text, one header per line: `name:value\n`. Header names are
// tokens (no `:`), and the Fetch standard forbids CR, LF and NUL in values, so the text
// is unambiguous.

const utf8 = new TextEncoder();

/**
 * Every header of `headers` (a `Headers`), as `name:value` lines in UTF-8 bytes: the
 * runtime's encoder and one copy into Wasm memory cost less than passing a string, which
 * is converted character by character (the session cookie alone is over a kilobyte).
 */
export function headerBlock(headers) {
  let block = '';
  for (const [name, value] of headers) block += `${name}:${value}\n`;
  return utf8.encode(block);
}

/** Raised when the upstream's response headers did not arrive in time. */
class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'UpstreamTimeout';
  }
}

/** The header lines of `block` as `[name, value]` pairs. */
function pairs(block) {
  const out = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return out;
}

/**
 * The header lines of `block` as a `HeadersInit`: a record (name → value) when no name
 * repeats, else pairs. The runtime converts a record in half the time of a list of pairs
 * (about 17 against 34 µs for five headers, docs/performance.md); a repeated name
 * (several `Set-Cookie`) needs the pairs. The core writes names in lower case, so
 * comparing them as they are finds every repeat.
 */
function headersInit(block) {
  const record = Object.create(null);
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon);
      if (name in record) return pairs(block);
      record[name] = line.slice(colon + 1);
    }
  }
  return record;
}

/**
 * Every outgoing call of edge-bff (API upstreams and the identity provider): send a
 * request with the headers of `headerLines` (all of them, built by the core: one runtime
 * call makes the `Headers`) and `body` (a stream, bytes, or null); redirects are passed
 * back, not followed. Resolves to the `Response`, or rejects with `UpstreamTimeout` when
 * its headers take longer than `timeoutMs` (the request is aborted then). The body is not
 * timed here: once the headers are in, the timer is cleared (the provider client bounds
 * its body read with the time left; an API's answer streams as long as it takes).
 */
export function sendBounded(url, method, headerLines, body, timeoutMs) {
  const controller = new AbortController();
  const init = { method, headers: headersInit(headerLines), redirect: 'manual', signal: controller.signal };
  if (body) init.body = body;
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  return fetch(url, init).then(
    (response) => {
      clearTimeout(timer);
      return response;
    },
    (error) => {
      clearTimeout(timer);
      throw controller.signal.aborted ? new UpstreamTimeout() : error;
    },
  );
}

/** The body of a response was larger than the reader allows. */
class BodyTooLarge extends Error {
  constructor() {
    super('response body too large');
    this.name = 'BodyTooLarge';
  }
}

/**
 * The body of `response` as bytes, read as it streams in: at most `maxBytes` (a larger
 * declared `Content-Length`, or the first chunk past the limit, stops the read and cancels
 * the stream: nothing past the limit is buffered) and within `timeoutMs`. Rejects with
 * `BodyTooLarge` or `UpstreamTimeout`, or the stream's own error.
 */
export async function readBounded(response, maxBytes, timeoutMs) {
  const body = response.body;
  if (!body) return new Uint8Array(0);
  const declared = Number(response.headers.get('content-length') ?? '');
  if (declared > maxBytes) {
    body.cancel().catch(() => {});
    throw new BodyTooLarge();
  }
  const reader = body.getReader();
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamTimeout()), timeoutMs);
  });
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), late]);
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new BodyTooLarge();
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/**
 * The browser's answer from the upstream's `Response`: same status and body stream, its
 * headers without those named in `dropped` (header names, one per line) and with the
 * lines of `append` appended. When there is nothing to drop or append, the upstream's
 * response itself: each lookup or iteration of a runtime `Headers` is a costly call, so
 * only the needed ones are made.
 */
export function responseFrom(upstream, dropped, append) {
  const names = dropped.split('\n');
  if (append.length === 0 && !names.some((name) => upstream.headers.has(name))) return upstream;
  const headers = new Headers(upstream.headers);
  for (const name of names) headers.delete(name);
  for (const [name, value] of pairs(append)) headers.append(name, value);
  // A WebSocket handshake's answer (101) carries the upstream's socket, which the runtime
  // joins to the browser's: messages and the close code pass both ways unchanged.
  if (upstream.webSocket) return new Response(null, { status: 101, webSocket: upstream.webSocket, headers });
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers });
}

// `Headers` made from header blocks without `Set-Cookie`, by block: answers repeat the
// same few blocks (the security headers, CORS for the app's origins), and the runtime
// copies a `Headers` into a new `Response` in a third of the time it converts a record.
// Blocks with `Set-Cookie` carry a user's session and are never kept.
const headersOfBlock = new Map();
const HEADERS_KEPT = 64;

/** A `HeadersInit` for `block`, kept for the next answer with the same block. */
function answerHeaders(block) {
  let headers = headersOfBlock.get(block);
  if (headers) return headers;
  if (block.includes('set-cookie:')) return headersInit(block);
  headers = new Headers(headersInit(block));
  if (headersOfBlock.size >= HEADERS_KEPT) headersOfBlock.clear();
  headersOfBlock.set(block, headers);
  return headers;
}

/**
 * The coordinator's answer to an ask (src/runtime/coordinator.rs): a 200 JSON response
 * returned at once, so its head is the acknowledgement, with the bytes `answer` (a
 * promise of a `Uint8Array`) as its body once they are made; a rejected `answer` errors
 * the body.
 */
export function acknowledgedResponse(answer) {
  const body = new ReadableStream({
    start(controller) {
      return answer.then(
        (bytes) => {
          controller.enqueue(bytes);
          controller.close();
        },
        (error) => controller.error(error),
      );
    },
  });
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}

/** A response with `status`, the header lines of `block` and the bytes `body` (copied). */
export function newResponse(status, block, body) {
  // A null-body status (204, 304) must not carry a body, even an empty one.
  return new Response(body.length === 0 ? null : body.slice(), { status, headers: answerHeaders(block) });
}

// `Strict-Transport-Security` for the answers made here (set once per instance by Rust).
let hstsHeader = {};

/** Set the `Strict-Transport-Security` value of `serverError`'s answers (empty: none). */
export function setHsts(value) {
  hstsHeader = value ? { 'strict-transport-security': value } : {};
}

/** The answer when the Wasm instance failed: 500 JSON `server_error`, nothing else. */
function serverError(error) {
  // A panic message can hold request data; log its kind only.
  const msg = `request failed inside the Wasm module (${error?.name ?? 'unknown'}); the module will be reinitialised`;
  console.error(JSON.stringify({ level: 'error', msg }));
  return new Response(JSON.stringify({ error: 'server_error', error_description: 'Internal server error.' }), {
    status: 500,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...hstsHeader },
  });
}

// A panic inside an async Rust task traps in a microtask: its promise would never
// settle. The trap surfaces as an `error` event; fail the answers that were pending on
// the now-dead instance (src/runtime/entry.mjs re-initialises it for the next request).
// (Outside a Worker, e.g. the CPU benchmark under Node, there is no such event.)
const pending = new Set();
globalThis.addEventListener?.('error', (event) => {
  if (event.error instanceof WebAssembly.RuntimeError) {
    for (const fail of pending) fail(event.error);
    pending.clear();
  }
});

/** `answer`, or a 500 `server_error` when the Wasm instance traps before it settles. */
export function guarded(answer) {
  let fail;
  const trapped = new Promise((_, reject) => {
    fail = reject;
  });
  pending.add(fail);
  return Promise.race([answer, trapped]).then(
    (response) => {
      pending.delete(fail);
      return response;
    },
    (error) => {
      pending.delete(fail);
      return serverError(error);
    },
  );
}

let resumeInWasm = null;

/** Register the Rust function that continues a direct call (once per Wasm instance). */
export function setResume(resume) {
  resumeInWasm = resume;
}

/** The full path's answer to `request` after its direct call ended in `outcome`. */
function resume(request, env, outcome) {
  try {
    return resumeInWasm(request, outcome, env);
  } catch (error) {
    return serverError(error);
  }
}

/**
 * A direct call (src/proxy/direct.rs): the core has decided everything, so the call is
 * sent and its answer streamed back without going through async Rust. The request body
 * streams from the browser (never for GET and HEAD). An upstream 401 to a call with a
 * token, a failure and a timeout go back to Rust (refresh and retry, or the error).
 * With a DPoP-bound token the core has written the proof's signing input (`dpopInput`);
 * it is signed here with WebCrypto (`dpopJwk`, `dpopAlg`) and sent as the `DPoP` header.
 */
export function proxyDirect(request, env, url, method, headerLines, timeoutMs, dropped, append, carriesToken, dpopInput, dpopJwk, dpopAlg) {
  const body = method === 'GET' || method === 'HEAD' ? null : request.body;
  const sent = dpopInput
    ? signJws(dpopJwk, dpopAlg, utf8.encode(dpopInput)).then((signature) =>
        sendBounded(url, method, `${headerLines}dpop:${dpopInput}.${base64url(signature)}\n`, body, timeoutMs))
    : sendBounded(url, method, headerLines, body, timeoutMs);
  return sent.then(
    (upstream) => (carriesToken && upstream.status === 401 ? resume(request, env, upstream) : responseFrom(upstream, dropped, append)),
    (error) => resume(request, env, error),
  );
}

/** base64url without padding of `bytes` (a `Uint8Array`). */
function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// WebCrypto parameters of the JWS algorithms edge-bff signs with (src/crypto/signing.rs).
const SIGNING = {
  RS256: { key: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } },
  PS256: { key: { name: 'RSA-PSS', hash: 'SHA-256' }, sign: { name: 'RSA-PSS', saltLength: 32 } },
  ES256: { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  EdDSA: { key: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

// Imported keys, by their JWK text: an import costs more than a signature.
const signingKeys = new Map();

/**
 * The JWS signature of `data` (bytes) with the private JWK `jwkText` for `alg`, made by
 * the runtime's WebCrypto (constant-time native code). ECDSA signatures come as `r ‖ s`,
 * the form JWS uses. Resolves to the signature bytes.
 */
export async function signJws(jwkText, alg, data) {
  const params = SIGNING[alg];
  if (!params) throw new Error(`unsupported alg ${alg}`);
  let key = signingKeys.get(jwkText);
  if (!key) {
    const { kty, crv, n, e, d, p, q, dp, dq, qi, x, y } = JSON.parse(jwkText);
    const jwk = Object.fromEntries(Object.entries({ kty, crv, n, e, d, p, q, dp, dq, qi, x, y }).filter(([, v]) => v !== undefined));
    key = await crypto.subtle.importKey('jwk', jwk, params.key, false, ['sign']);
    signingKeys.set(jwkText, key);
  }
  return new Uint8Array(await crypto.subtle.sign(params.sign, key, data));
}

// Imported public keys, by their JWK text: the provider's keys and the public halves of
// edge-bff's own (the pairwise test). Bounded: a provider rotates a few keys, but a
// multi-tenant configuration meets many; past the bound the map starts again.
const verifyingKeys = new Map();
const MAX_VERIFYING_KEYS = 64;

/**
 * Whether `signature` (bytes, JWS form) is the signature of `data` (bytes) under the
 * public JWK `jwkText` for `alg`, checked by WebCrypto. Resolves to `true` or `false`, or
 * to `null` when WebCrypto refuses the key itself (a point off its curve): the caller then
 * counts the key as unusable rather than the signature as bad.
 */
export async function verifyJws(jwkText, alg, data, signature) {
  const params = SIGNING[alg];
  if (!params) return null;
  let key = verifyingKeys.get(jwkText);
  if (!key) {
    try {
      key = await crypto.subtle.importKey('jwk', JSON.parse(jwkText), params.key, false, ['verify']);
    } catch {
      return null;
    }
    if (verifyingKeys.size >= MAX_VERIFYING_KEYS) verifyingKeys.clear();
    verifyingKeys.set(jwkText, key);
  }
  try {
    return await crypto.subtle.verify(params.sign, key, signature, data);
  } catch {
    // A signature WebCrypto cannot parse (the wrong length) is not a signature of `data`.
    return false;
  }
}

// --- Bindings: Workers KV, the coordinator's namespace and its objects' storage ----------
// Called here rather than through the `worker` crate's wrappers: their option and key
// conversions (serde through JS values) and its request-init conversion cost about 25 KB
// of module for four calls (docs/performance.md, issue 27).

/** `env[name]` when it is a KV namespace (it lists and puts), else null. */
export function kvBinding(env, name) {
  const binding = env[name];
  return binding && typeof binding.list === 'function' && typeof binding.put === 'function' ? binding : null;
}

/** `env[name]` when it is a Durable Object namespace, else null. */
export function objectBinding(env, name) {
  const binding = env[name];
  return binding && typeof binding.idFromName === 'function' ? binding : null;
}

/** The value of `key` as bytes, or null; `cacheTtl` in seconds, 0 for KV's default. */
export async function kvGet(ns, key, cacheTtl) {
  const options = cacheTtl > 0 ? { type: 'arrayBuffer', cacheTtl } : { type: 'arrayBuffer' };
  const value = await ns.get(key, options);
  return value === null ? null : new Uint8Array(value);
}

/** Store `value` (bytes) under `key` for `ttl` seconds. */
export async function kvPut(ns, key, value, ttl) {
  await ns.put(key, value, { expirationTtl: ttl });
}

/** Delete `key`. */
export async function kvDelete(ns, key) {
  await ns.delete(key);
}

/** The names of up to 1000 keys that start with `prefix`. */
export async function kvList(ns, prefix) {
  const listed = await ns.list({ prefix, limit: 1000 });
  return listed.keys.map((key) => key.name);
}

/** POST `body` to the object of `ns` named `login`; resolves to its response's head. */
export function askObject(ns, login, body) {
  return ns.get(ns.idFromName(login)).fetch(`https://coordinator/login/${login}`, { method: 'POST', body });
}

/** An object's stored text under `key`, or null; anything but text is an error. */
export async function storageGet(storage, key) {
  const value = await storage.get(key);
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new Error('stored value is not text');
  return value;
}

/** Store `value` (text) under `key`, and set the object's alarm to `alarmAtMs`. */
export async function storagePut(storage, key, value, alarmAtMs) {
  await storage.put(key, value);
  await storage.setAlarm(alarmAtMs);
}

/** Delete everything the object stored. */
export async function storageClear(storage) {
  await storage.deleteAll();
}

// --- The access line and the metrics data point (docs/api.md section 9) ----------------------
// Rust wraps a request's answer in `observed` only when the configuration asks for one
// or the other (`LOG_LEVEL` info or debug, a `METRICS` binding), so a Worker at the
// default level pays nothing here.

// Whether access lines are written (set once per instance by Rust).
let accessLines = false;

/** Turn the access line on or off (`LOG_LEVEL` is `info` or `debug`). */
export function setAccessLines(on) {
  accessLines = on;
}

// The kind and outcome the full path noted, by request. A request the full path did not
// note went the direct path (kind `proxy`) or trapped.
const notes = new WeakMap();

/** Note `request`'s `kind` (`agent`, `proxy`, `assets`) and `outcome` ('' for none). */
export function noteRequest(request, kind, outcome) {
  notes.set(request, { kind, outcome });
}

/**
 * `answer` (the promise of `request`'s response), recording the access line and the
 * data point when it settles. `direct`: the request was sent as a direct call. The time
 * is until the response's head is ready: a streamed body is not waited for.
 */
export function observed(answer, request, env, direct) {
  const started = Date.now();
  return answer.then(
    (response) => {
      record(request, env, response.status, Date.now() - started, direct);
      return response;
    },
    (error) => {
      record(request, env, 500, Date.now() - started, direct);
      throw error;
    },
  );
}

function record(request, env, status, ms, direct) {
  const note = notes.get(request);
  const kind = note?.kind ?? (direct ? 'proxy' : 'unknown');
  // Without a note, a full-path 5xx is the trap guard's `server_error`.
  const outcome = note?.outcome ?? (!direct && status >= 500 ? 'server_error' : '');
  if (accessLines) {
    const line = { level: 'info', msg: 'request', method: request.method, path: pathOf(request.url), status, ms, kind };
    // Cloudflare sets CF-Ray (about 20 characters); a longer one is not Cloudflare's.
    const ray = request.headers.get('cf-ray');
    if (ray) line.ray = ray.slice(0, 64);
    if (outcome) line.outcome = outcome;
    console.log(JSON.stringify(line));
  }
  const metrics = env?.METRICS;
  if (metrics) {
    try {
      metrics.writeDataPoint({ blobs: [kind, outcome, `${Math.trunc(status / 100)}xx`], doubles: [ms] });
    } catch (error) {
      console.warn(JSON.stringify({ level: 'warn', msg: `METRICS: data point not written (${error?.name ?? 'error'})` }));
    }
  }
}

/** The path of `url`, without its query or fragment. */
function pathOf(url) {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}
