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

/** Apply the lines of `block` to `headers` with `method` ('set' or 'append'). */
function applyBlock(headers, block, method) {
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[method](line.slice(0, colon), line.slice(colon + 1));
  }
}

/** Delete the names in `names` (one per line) from `headers`. */
function deleteNames(headers, names) {
  for (const name of names.split('\n')) if (name) headers.delete(name);
}

/** Raised when the upstream's response headers did not arrive in time. */
class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'UpstreamTimeout';
  }
}

/**
 * Send a proxied request: a copy of `source` (the browser's `Headers`) with the names in
 * `remove` deleted and the lines of `set` set; redirects are passed back, not followed.
 * Resolves to the upstream's `Response`, or rejects with `UpstreamTimeout` when its
 * headers take longer than `timeoutMs` (the request is aborted then). The body is not
 * timed: once the headers are in, the timer is cleared.
 */
export function sendUpstream(url, method, source, remove, set, body, timeoutMs) {
  const headers = new Headers(source);
  deleteNames(headers, remove);
  applyBlock(headers, set, 'set');
  const controller = new AbortController();
  const init = { method, headers, redirect: 'manual', signal: controller.signal };
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
 * headers without the names in `remove` (one per line) and with the lines of `append`
 * appended. When there is nothing to remove or append, the upstream's response itself.
 */
export function responseFrom(upstream, remove, append) {
  const dropped = remove.split('\n');
  let edit = append.length > 0;
  for (const name of upstream.headers.keys()) {
    if (edit) break;
    edit = dropped.includes(name);
  }
  if (!edit) return upstream;
  // One pass over the upstream's few headers instead of a copy and a delete per name.
  const headers = new Headers();
  for (const [name, value] of upstream.headers) if (!dropped.includes(name)) headers.append(name, value);
  applyBlock(headers, append, 'append');
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers });
}

/** A response with `status`, the header lines of `block` and the bytes `body` (copied). */
export function newResponse(status, block, body) {
  const headers = new Headers();
  applyBlock(headers, block, 'append');
  // A null-body status (204, 304) must not carry a body, even an empty one.
  return new Response(body.length === 0 ? null : body.slice(), { status, headers });
}
