// The Worker's entry module: worker-build's output (build/index.js) wrapped so that a
// failure of the Wasm module itself (a Rust panic aborts it) answers 500 JSON
// `server_error` instead of the runtime's HTML error page. scripts/build.sh copies this
// file next to index.js.
//
// Here only the synchronous part of a request is guarded: a trap while the Rust handler
// runs before it returns its promise throws at once. A trap later, inside async Rust,
// is guarded by `guarded` in src/runtime/glue.js, which the Rust handler wraps around
// every answer that runs async Rust (the direct proxy path runs none). worker-build's
// shim marks the module for re-initialisation, so the next request runs on a fresh
// instance.
import EdgeBff from './index.js';

// The same body as glue.js's `serverError` (that copy is bundled into index.js and is
// not reachable from here).
const SERVER_ERROR = JSON.stringify({ error: 'server_error', error_description: 'Internal server error.' });

// The `HSTS` value (API.md section 2) for this answer, read from the variables directly:
// the Rust configuration is out of reach once the module has failed. Its validation
// rules live in src/config/mod.rs; a value that is not printable ASCII is left out here.
function hstsOf(env) {
  const origin = typeof env?.PUBLIC_ORIGIN === 'string' ? env.PUBLIC_ORIGIN.trim() : '';
  const value = typeof env?.HSTS === 'string' && env.HSTS.trim() !== '' ? env.HSTS.trim() : 'max-age=63072000';
  if (!origin.startsWith('https://') || value === 'off' || !/^[\x20-\x7e]+$/.test(value)) return null;
  return value;
}

// worker-build's entry class itself, its `fetch` wrapped in place: a subclass would add a
// constructor to every request (the runtime makes an instance per request).
const handle = EdgeBff.prototype.fetch;
EdgeBff.prototype.fetch = function fetch(request) {
  try {
    return handle.call(this, request);
  } catch (e) {
    // A panic message can hold request data; log its kind only.
    console.error(`edge-bff error: request failed inside the Wasm module (${e?.name ?? 'unknown'}); the module will be reinitialised`);
    const headers = { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    const hsts = hstsOf(this.env);
    if (hsts) headers['strict-transport-security'] = hsts;
    return new Response(SERVER_ERROR, { status: 500, headers });
  }
};

export default EdgeBff;

// The coordinator's Durable Object class (API.md section 8; src/runtime/coordinator.rs),
// which the `COORDINATOR` binding names.
export { EdgeBffCoordinator } from './index.js';
