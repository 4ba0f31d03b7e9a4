// Small JavaScript helpers of the Worker glue (src/runtime/js.rs declares them). Each
// replaces many JS↔Wasm crossings (one or more per header) with one call; measured in
// docs/performance.md. They make no decisions: the Rust core decides which headers go,
// which are set and what the answer is.
//
// Header lists cross as text, one header per line: `name:value\n`. Header names are
// tokens (no `:`), and the Fetch standard forbids CR, LF and NUL in values, so the text
// is unambiguous.

/** Every header of `headers` (a `Headers`), as `name:value` lines. */
export function headerBlock(headers) {
  let block = '';
  for (const [name, value] of headers) block += `${name}:${value}\n`;
  return block;
}

/** Raised when the upstream's response headers did not arrive in time. */
class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'UpstreamTimeout';
  }
}

/** The header lines of `block` as `[name, value]` pairs (for a `Headers` constructor). */
function pairs(block) {
  const out = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return out;
}

/**
 * Send a proxied request with the headers of `headerLines` (all of them, built by the
 * core: one runtime call makes the `Headers`); redirects are passed back, not followed.
 * Resolves to the upstream's `Response`, or rejects with `UpstreamTimeout` when its
 * headers take longer than `timeoutMs` (the request is aborted then). The body is not
 * timed: once the headers are in, the timer is cleared.
 */
export function sendUpstream(url, method, headerLines, body, timeoutMs) {
  const controller = new AbortController();
  const init = { method, headers: pairs(headerLines), redirect: 'manual', signal: controller.signal };
  if (body) init.body = body;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort();
      reject(new UpstreamTimeout());
    }, timeoutMs);
    fetch(url, init).then(
      (response) => {
        clearTimeout(timer);
        resolve(response);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * The browser's answer from the upstream's `Response`: same status and body stream, its
 * headers without `dropped` (a header name) and with the lines of `append` appended.
 * When there is nothing to drop or append, the upstream's response itself: each lookup
 * or iteration of a runtime `Headers` is a costly call, so only one is made.
 */
export function responseFrom(upstream, dropped, append) {
  if (!upstream.headers.has(dropped) && append.length === 0) return upstream;
  const headers = new Headers(upstream.headers);
  headers.delete(dropped);
  for (const [name, value] of pairs(append)) headers.append(name, value);
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers });
}

/** A response with `status`, the header lines of `block` and the bytes `body` (copied). */
export function newResponse(status, block, body) {
  // A null-body status (204, 304) must not carry a body, even an empty one.
  return new Response(body.length === 0 ? null : body.slice(), { status, headers: pairs(block) });
}
