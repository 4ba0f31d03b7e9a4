#!/usr/bin/env bash
# Builds the release Worker into build/ with worker-build, using Debian's wasm-capable
# rustc and the npm-provided esbuild/wasm-opt (see scripts/env.sh). Also wrangler's
# [build] command, so `wrangler dev` and `wrangler deploy` build the same way.
#
# BUILD_OUT=build-test BUILD_FEATURES=test-hooks scripts/build.sh builds the test variant
# (with the panic hook the integration tests use) into another directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
OUT="${BUILD_OUT:-build}"
for tool in worker-build wasm-bindgen "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  command -v "$tool" >/dev/null || { echo "build: $tool missing; run scripts/bootstrap.sh" >&2; exit 1; }
done
extra=()
[ -z "${BUILD_FEATURES:-}" ] || extra=(--features "$BUILD_FEATURES")
# Debian's cargo/rustc first: rustup's toolchain has no wasm32 standard library.
PATH="/usr/bin:$PATH" RUSTC="$DEB_RUSTC" CARGO="$DEB_CARGO" \
  CARGO_TARGET_DIR="$ROOT/target" worker-build --release --out-dir "$OUT" "${extra[@]}"

# worker-build keeps the wasm names section (about 160 KB) for readable panic traces;
# edge-bff never shows traces, so drop it and the producers section. No optimisation
# passes run here, the module is only re-encoded.
"$WASM_OPT_BIN" "$ROOT/$OUT/index_bg.wasm" -o "$ROOT/$OUT/index_bg.wasm" \
  --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling

# The entry module: panics become 500 JSON (src/runtime/entry.mjs).
cp "$ROOT/src/runtime/entry.mjs" "$ROOT/$OUT/entry.mjs"
