# Sourced by the other scripts: tool locations shared by build, dev and test.
# Debian's rustc/cargo (1.96, with a wasm32 std installed by bootstrap.sh) build the
# Worker; rustup's toolchain in ~/.cargo/bin has no wasm32 std and serves native work.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export DEB_RUSTC=/usr/bin/rustc
export DEB_CARGO=/usr/bin/cargo
export PATH="$HOME/.cargo/bin:$ROOT/tests/node_modules/.bin:$PATH"
# The build's tools: wasm-bindgen's generator (tools/bindgen, built by bootstrap.sh) and
# binaryen's wasm-opt from npm.
export BINDGEN_BIN="$ROOT/tools/bindgen/target/release/edge-bff-bindgen"
export WASM_OPT_BIN="$ROOT/tests/node_modules/.bin/wasm-opt"
export WRANGLER_SEND_METRICS=false

# `cargo build` of a wasm32 crate of the workspace (scripts/build.sh, scripts/bench.sh),
# with Debian's cargo/rustc (rustup's toolchain has no wasm32 standard library). One set
# of flags for every wasm32 build, so the artefacts in target/ are shared between them:
# - `-Zbuild-std`: the standard library is compiled from Debian's source (rust-web-src)
#   with the crate's profile, so LTO and opt-level "z" reach it too (the first build
#   compiles it, about a minute; target/ keeps it);
# - `-Cpanic=immediate-abort`: a panic traps at once, with no message formatting and no
#   panic hook, and `-Zlocation-detail=none` drops the file/line strings. edge-bff never
#   showed a panic's text (src/runtime/entry.mjs answers a trap with a plain 500), so
#   nothing visible changes; the module is 28 KB gzip smaller (docs/performance.md);
# - RUSTC_BOOTSTRAP=1 lets the stable compiler take those unstable flags (the same
#   mechanism scripts/bootstrap.sh used to build the standard library);
# - RUSTFLAGS replaces .cargo/config.toml's target flags, so getrandom's cfg is repeated;
# - WASM_BINDGEN_USE_JS_SYS: wasm-bindgen's macros use js_sys's futures (as worker-build
#   set it; cargo passes no --cfg to host proc-macros when --target is given).
# - its own target directory (WASM_TARGET_DIR), so that a wasm32 build and a native one
#   (clippy, cargo test) never wait for each other's lock on target/: scripts/test.sh
#   runs them side by side.
export WASM_TARGET_DIR="$ROOT/target/wasm"
wasm_cargo_build() {
  PATH="/usr/bin:$PATH" RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 WASM_BINDGEN_USE_JS_SYS=1 \
    CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
    RUSTFLAGS='--cfg getrandom_backend="wasm_js" -Cembed-bitcode=yes -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none' \
    "$DEB_CARGO" build --release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
}
