// The pass-through Worker's entry module (bundled by scripts/build.sh as edge-bff's is):
// the Rust `fetch` handler and nothing else.
import * as bindings from './index.js';

export default {
  fetch(request, env, ctx) {
    return bindings.fetch(request, env, ctx);
  },
};
