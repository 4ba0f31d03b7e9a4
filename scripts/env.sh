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
