#!/usr/bin/env bash
# Builds the release Worker into build/: Debian's wasm-capable cargo compiles the crate to
# wasm32, tools/bindgen (wasm-bindgen's generator, built by scripts/bootstrap.sh) writes
# the JS bindings, wasm-opt (npm binaryen) shrinks the module, and scripts/bundle.mjs
# bundles src/runtime/entry.mjs with the bindings (npm esbuild). Output: build/entry.mjs
# and build/index_bg.wasm. Also wrangler's [build] command, so `wrangler dev` and
# `wrangler deploy` build the same way.
#
# Environment:
#   BUILD_OUT=build-test BUILD_FEATURES=test-hooks  the test variant (the panic hooks the
#                                                   integration tests use), elsewhere
#   BUILD_KEEP_NAMES=1                              keep the wasm names section (readable
#                                                   frames for tests/bench/profile.mjs)
#   BUILD_PACKAGE, BUILD_ENTRY                      another Worker crate of the workspace
#                                                   and its entry (scripts/bench.sh's
#                                                   pass-through Worker)
#   WASM_OPT_FLAGS="-ocimfs 10"                     extra wasm-opt flags, for experiments
#                                                   with a BUILD_OUT of their own
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
OUT="${BUILD_OUT:-build}"
PACKAGE="${BUILD_PACKAGE:-edge-bff}"
ENTRY="${BUILD_ENTRY:-src/runtime/entry.mjs}"
for tool in "$BINDGEN_BIN" "$WASM_OPT_BIN" "$ROOT/tests/node_modules/esbuild/package.json"; do
  [ -e "$tool" ] || { echo "build: $tool missing; run scripts/bootstrap.sh" >&2; exit 1; }
done
# The bindings generator must be exactly the wasm-bindgen version the crate links: the
# generated JS and the wasm's custom section must agree.
lock_version() { awk -v n="$2" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' "$1"; }
want="$(lock_version Cargo.lock wasm-bindgen)"
have="$(lock_version tools/bindgen/Cargo.lock wasm-bindgen-cli-support)"
[ "$want" = "$have" ] || {
  echo "build: Cargo.lock has wasm-bindgen $want, tools/bindgen is built on $have; change its Cargo.toml pin and run scripts/bootstrap.sh" >&2
  exit 1
}

# Without the default `rust-crypto` feature: the Worker signs and verifies with WebCrypto.
features=(--no-default-features)
[ -z "${BUILD_FEATURES:-}" ] || features+=(--features "$BUILD_FEATURES")
# The flags and the standard library built with the crate: wasm_cargo_build in scripts/env.sh.
wasm_cargo_build -p "$PACKAGE" "${features[@]}"
wasm="$WASM_TARGET_DIR/wasm32-unknown-unknown/release/${PACKAGE//-/_}.wasm"

# Unchanged inputs, unchanged output: when the compiled module, the JS sources bundled
# with it, the build scripts and the variant are those of the last build of $OUT, that
# build stands (wrangler's [build] command, the deploy-bundle check and dev.sh's restarts
# then take a second, not the bindings, wasm-opt and the bundle again).
stamp_of() {
  {
    echo "out=$OUT features=${BUILD_FEATURES:-} names=${BUILD_KEEP_NAMES:-0} entry=$ENTRY opt=${WASM_OPT_FLAGS:-}"
    sha256sum "$wasm" "$ENTRY" src/runtime/*.js src/runtime/*.mjs scripts/build.sh scripts/bundle.mjs \
      "$BINDGEN_BIN" "$WASM_OPT_BIN" 2>/dev/null | awk '{print $1}'
  } | sha256sum | awk '{print $1}'
}
stamp="$(stamp_of)"
if [ -f "$OUT/.build-stamp" ] && [ -f "$OUT/index_bg.wasm" ] && [ -f "$OUT/entry.mjs" ] &&
  [ "$(cat "$OUT/.build-stamp")" = "$stamp" ]; then
  echo "build: $OUT is up to date"
  exit 0
fi

stage="$(mktemp -d "$ROOT/target/bindgen.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
"$BINDGEN_BIN" "$wasm" "$stage"

rm -rf "$OUT"
mkdir -p "$OUT"
echo '*' >"$OUT/.gitignore"
# Size first (-Oz); the names and producers sections go (edge-bff never shows traces).
# Explicit features rather than --all-features, so that no encoding workerd does not
# read yet is emitted.
sections=(--strip-debug --strip-producers)
[ "${BUILD_KEEP_NAMES:-0}" != 1 ] || sections=(--debuginfo)
# -ocimfs 100: a function with one caller is inlined only when small (the default inlines
# every such function): 10.6 KB less gzip, CPU per request unchanged in paired runs
# (docs/performance.md, "wasm-opt's inlining of single-caller functions").
# shellcheck disable=SC2086
"$WASM_OPT_BIN" "$stage/index_bg.wasm" -o "$OUT/index_bg.wasm" -Oz -ocimfs 100 "${sections[@]}" ${WASM_OPT_FLAGS:-} \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling

node scripts/bundle.mjs "$stage" "$ENTRY" "$OUT/entry.mjs"
echo "$stamp" >"$OUT/.build-stamp"
