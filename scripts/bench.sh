#!/usr/bin/env bash
# Performance figures of edge-bff (not part of scripts/test.sh; run it after test.sh has
# installed the tools): the release Worker against a pass-through Worker built the same
# way and a JavaScript peer (Hono + @hono/oidc-auth), under Miniflare's own listener with
# wrk as the load (alternating rounds), the wasm size, fresh isolates of every Worker
# (start to first 200) with their upload sizes, the CPU cost of the hot paths in wasm32
# and natively, and the runtime's WebCrypto AES-GCM in workerd.
#
# Environment: BENCH_SECONDS (5), BENCH_ROUNDS (5), BENCH_CONNECTIONS (16),
# BENCH_FRESH_STARTS (15), BENCH_FRESH_ONLY=1 (only the fresh starts and upload sizes),
# BENCH_ONLY=a,au,… (only these HTTP scenarios; ratios of rows not measured print NaN),
# BENCH_PIN=0 (no pinning to cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BOOTSTRAP_SKIP_BROWSER=1 scripts/bootstrap.sh >/dev/null
source scripts/env.sh
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian)"
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } ||
    { echo "bench: could not install wrk" >&2; exit 1; }
fi

echo "bench: building the release Worker, the pass-through Worker and the CPU benchmark"
scripts/build.sh >target/bench-build.log 2>&1 || { tail -30 target/bench-build.log; exit 1; }
BUILD_PACKAGE=bench-passthrough BUILD_ENTRY=tests/bench/passthrough/entry.mjs BUILD_OUT="$ROOT/target/bench-passthrough" \
  scripts/build.sh >>target/bench-build.log 2>&1 || { tail -30 target/bench-build.log; exit 1; }
wasm_cargo_build -p bench-cpu >>target/bench-build.log 2>&1 ||
  { tail -30 target/bench-build.log; exit 1; }
"$BINDGEN_BIN" --nodejs "$WASM_TARGET_DIR/wasm32-unknown-unknown/release/bench_cpu.wasm" target/bench-cpu-wasm \
  >>target/bench-build.log 2>&1
cargo build -q --release -p bench-cpu --bin bench-cpu-native

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), node $(node --version)"
scripts/wasm-size.sh
(cd tests && node bench/bench.mjs) 2>&1 | grep -v 'oidc-provider WARNING'
echo
node tests/bench/cpu.mjs target/bench-cpu-wasm
echo
(cd tests && node bench/webcrypto.mjs ../target/bench-cpu-wasm)
echo
target/release/bench-cpu-native
