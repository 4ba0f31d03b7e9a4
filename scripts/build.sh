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

# Artefacts built against another wasm32 standard library (bootstrap.sh built it again)
# do not link ("can't find crate"); cargo does not track the sysroot, so drop them.
std_now="$(ls /usr/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib 2>/dev/null | head -1)"
std_stamp="$ROOT/target/wasm32-unknown-unknown/.wasm-std"
if [ -d "$ROOT/target/wasm32-unknown-unknown" ] && [ "$(cat "$std_stamp" 2>/dev/null)" != "$std_now" ]; then
  echo "build: the wasm32 standard library changed; rebuilding every wasm32 artefact"
  rm -rf "$ROOT/target/wasm32-unknown-unknown"
fi
mkdir -p "$ROOT/target/wasm32-unknown-unknown"
echo "$std_now" >"$std_stamp"

features=()
[ -z "${BUILD_FEATURES:-}" ] || features=(--features "$BUILD_FEATURES")
# Debian's cargo/rustc: rustup's toolchain has no wasm32 standard library.
# WASM_BINDGEN_USE_JS_SYS: wasm-bindgen's macros use js_sys's futures (as worker-build
# set it; cargo passes no --cfg to host proc-macros when --target is given).
PATH="/usr/bin:$PATH" RUSTC="$DEB_RUSTC" WASM_BINDGEN_USE_JS_SYS=1 CARGO_TARGET_DIR="$ROOT/target" \
  "$DEB_CARGO" build --release --lib --target wasm32-unknown-unknown -p "$PACKAGE" "${features[@]}"
wasm="$ROOT/target/wasm32-unknown-unknown/release/${PACKAGE//-/_}.wasm"

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
"$WASM_OPT_BIN" "$stage/index_bg.wasm" -o "$OUT/index_bg.wasm" -Oz "${sections[@]}" \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling

node scripts/bundle.mjs "$stage" "$ENTRY" "$OUT/entry.mjs"
