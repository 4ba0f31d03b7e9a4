#!/usr/bin/env bash
# Installs everything edge-bff needs to build, run and test on a fresh machine of this
# project's kind (Debian bookworm, root, registries only). Idempotent: each step checks
# first and is skipped when its result is present, so a second run takes seconds.
#
# The steps that do not depend on each other overlap: tools/bindgen (rustup's cargo) and
# `npm ci` run in the background from the start, while Debian's Rust and Chromium
# install. (The wasm32 standard library is compiled by each wasm32 build itself.) Background
# output goes to target/bootstrap-*.log and is shown only when a step fails.
#
# Usage: scripts/bootstrap.sh            (everything)
#        BOOTSTRAP_SKIP_BROWSER=1 ...    (no Chromium; dev.sh does not need it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

step() { printf '\033[1mbootstrap:\033[0m [%3ds] %s\n' "$SECONDS" "$*"; }
fail() {
  printf '\033[31mbootstrap: FAILED: %s\033[0m\n' "$*" >&2
  exit 1
}

mkdir -p "$ROOT/target"
# A failing step stops the background ones too.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

# --- Background: tools/bindgen, wasm-bindgen's generator (the crate pins the version) ----
# A small program on wasm-bindgen-cli-support, built natively by rustup's cargo into
# tools/bindgen/target: about a minute on 2 cores, where `cargo install wasm-bindgen-cli`
# took six (its test runner brings an HTTP server and client) and worker-build six more.
# When it is up to date cargo says so in well under a second.
bindgen_log="$ROOT/target/bootstrap-bindgen.log"
[ -x "$BINDGEN_BIN" ] || step "building tools/bindgen in the background (wasm-bindgen's generator, about a minute)"
(cd "$ROOT/tools/bindgen" && cargo build -q --release --locked) >"$bindgen_log" 2>&1 &
bindgen_pid=$!

# --- Background: npm packages pinned by tests/package-lock.json ------------------------
lock="$ROOT/tests/package-lock.json"
stamp="$ROOT/tests/node_modules/.bootstrap-stamp"
npm_log="$ROOT/target/bootstrap-npm.log"
npm_pid=""
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
  step "npm ci in the background (wrangler, miniflare, oidc-provider, esbuild, binaryen, playwright-core)"
  (cd "$ROOT/tests" && npm ci --no-audit --no-fund --loglevel=error && cp "$lock" "$stamp") >"$npm_log" 2>&1 &
  npm_pid=$!
else
  step "npm packages present"
fi

# --- 1. Debian packages: the wasm-capable Rust toolchain and lld ---------------------------
apt_updated=0
# Install the Debian packages of "$@" that are missing (one apt-get update per run).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    step "Debian packages present ($*)"
    return
  fi
  step "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || fail "apt-get not found; install ${missing[*]} by hand"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq || fail "apt-get update"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    fail "apt-get install ${missing[*]}"
}
apt_install rustc-web cargo-web rust-web-src lld-22
[ -x "$DEB_RUSTC" ] || fail "$DEB_RUSTC missing after installing rustc-web"
[ -d /usr/lib/rustlib/src/rust/library ] || fail "std source missing (package rust-web-src)"
command -v rust-lld >/dev/null || fail "rust-lld missing (package lld-22)"

# --- 2. The wasm32 standard library --------------------------------------------------------
# Nothing to install: every wasm32 build compiles it from /usr/lib/rustlib/src with the
# crate (`-Zbuild-std`, wasm_cargo_build in scripts/env.sh).

# --- 3. Chromium, for the browser tests -------------------------------------------------------
[ "${BOOTSTRAP_SKIP_BROWSER:-0}" = 1 ] || apt_install chromium

# --- Join the background steps ------------------------------------------------------------
if ! wait "$bindgen_pid"; then
  tail -30 "$bindgen_log" >&2
  fail "building tools/bindgen (log: $bindgen_log)"
fi
[ -x "$BINDGEN_BIN" ] || fail "$BINDGEN_BIN missing after the build"
step "tools/bindgen ready"
if [ -n "$npm_pid" ]; then
  if ! wait "$npm_pid"; then
    tail -30 "$npm_log" >&2
    fail "npm ci in tests/ (log: $npm_log)"
  fi
  step "npm packages installed"
fi
for bin in esbuild wasm-opt wrangler; do
  [ -x "$ROOT/tests/node_modules/.bin/$bin" ] || fail "tests/node_modules/.bin/$bin missing after npm ci"
done

step "done"
