// The Worker's entry module: worker-build's output (build/index.js) wrapped so that a
// failure of the Wasm module itself (a Rust panic aborts it) answers 500 JSON
// `server_error` instead of hanging or the runtime's HTML error page. worker-build's own
// shim marks the module for re-initialisation, so the next request runs on a fresh
// instance. scripts/build.sh copies this file next to index.js.
import EdgeBff from './index.js';

const SERVER_ERROR = JSON.stringify({ error: 'server_error', error_description: 'Internal server error.' });

// A panic inside an async Rust task traps in a microtask: the request's promise would
// never settle. The trap surfaces as an `error` event; fail the requests that were
// running on the now-dead instance.
const running = new Set();
addEventListener('error', (event) => {
  if (event.error instanceof WebAssembly.RuntimeError) {
    for (const fail of running) fail(event.error);
    running.clear();
  }
});

export default class extends EdgeBff {
  async fetch(request) {
    let fail;
    const trapped = new Promise((_, reject) => {
      fail = reject;
    });
    running.add(fail);
    try {
      return await Promise.race([super.fetch(request), trapped]);
    } catch (e) {
      // A panic message can hold request data; log its kind only.
      console.error(`edge-bff error: request failed inside the Wasm module (${e?.name ?? 'unknown'}); the module will be reinitialised`);
      return new Response(SERVER_ERROR, {
        status: 500,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      });
    } finally {
      running.delete(fail);
    }
  }
}
