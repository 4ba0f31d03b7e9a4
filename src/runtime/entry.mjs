// The Worker's entry module. scripts/build.sh bundles it with wasm-bindgen's bindings of
// the Rust module (./index.js) into build/entry.mjs, the `main` of wrangler.toml.
//
// It does three things around the Rust `fetch` handler:
// - panic recovery: a trap (a Rust panic aborts the instance) marks the instance dead, and
//   the next request runs on a fresh one (wasm-bindgen's reset-state function);
// - a trap while the Rust handler runs before it returns its promise answers 500 JSON
//   `server_error` instead of the runtime's HTML error page. A trap later, inside async
//   Rust, is answered by `guarded` in src/runtime/glue.js;
// - the coordinator's Durable Object class (docs/api.md section 8), rebuilt on the fresh
//   instance after a trap.
import * as bindings from './index.js';

// The `worker` crate's shared state: `criticalError` is set when the instance is dead,
// `instanceId` counts fresh instances.
const initState = bindings.__worker_init_state();

function markIfTrap(error) {
  if (error instanceof WebAssembly.RuntimeError) initState.criticalError = true;
}

// A trap inside async Rust surfaces as an `error` event.
addEventListener('error', (event) => markIfTrap(event.error));

/** Replace a dead instance before it is used again. */
function reinitialiseIfDead() {
  if (initState.criticalError) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'reinitialising the Wasm module after a failure' }));
    bindings.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

// The same body as glue.js's `serverError` (that copy is bundled with the bindings and
// is not reachable from here).
const SERVER_ERROR = JSON.stringify({ error: 'server_error', error_description: 'Internal server error.' });

// The `HSTS` value (docs/api.md section 2) for this answer, read from the variables directly:
// the Rust configuration is out of reach once the module has failed. Its validation
// rules live in src/config/mod.rs; a value that is not printable ASCII is left out here.
function hstsOf(env) {
  const origin = typeof env?.PUBLIC_ORIGIN === 'string' ? env.PUBLIC_ORIGIN.trim() : '';
  const value = typeof env?.HSTS === 'string' && env.HSTS.trim() !== '' ? env.HSTS.trim() : 'max-age=63072000';
  if (!origin.startsWith('https://') || value === 'off' || !/^[\x20-\x7e]+$/.test(value)) return null;
  return value;
}

export default {
  fetch(request, env, ctx) {
    reinitialiseIfDead();
    try {
      return bindings.fetch(request, env, ctx);
    } catch (e) {
      markIfTrap(e);
      // A panic message can hold request data; log its kind only.
      const msg = `request failed inside the Wasm module (${e?.name ?? 'unknown'}); the module will be reinitialised`;
      console.error(JSON.stringify({ level: 'error', msg }));
      const headers = { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
      const hsts = hstsOf(env);
      if (hsts) headers['strict-transport-security'] = hsts;
      return new Response(SERVER_ERROR, { status: 500, headers });
    }
  },
};

/**
 * The coordinator's Durable Object class, which the `COORDINATOR` binding names: the
 * Rust object, made again on the fresh instance after a trap (an object of a dead
 * instance cannot be used).
 */
export class EdgeBffCoordinator {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    this.current();
  }

  /** The Rust object on the live instance. */
  current() {
    reinitialiseIfDead();
    if (this.instanceId !== initState.instanceId) {
      this.object = new bindings.EdgeBffCoordinator(this.state, this.env);
      this.instanceId = initState.instanceId;
    }
    return this.object;
  }

  fetch(request) {
    return this.call((object) => object.fetch(request));
  }

  alarm() {
    return this.call((object) => object.alarm());
  }

  call(method) {
    try {
      return method(this.current());
    } catch (e) {
      markIfTrap(e);
      throw e;
    }
  }
}
