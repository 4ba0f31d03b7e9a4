#!/usr/bin/env bash
# Installs everything edge-bff needs to build, run and test on a fresh machine of this
# project's kind (Debian bookworm, root, registries only). Idempotent: each step checks
# first and is skipped when its result is present, so a second run takes seconds.
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

# --- 1. Debian packages: the wasm-capable Rust toolchain, lld, Chromium, wrk -------------
apt_packages=(rustc-web cargo-web rust-web-src lld-22)
[ "${BOOTSTRAP_SKIP_BROWSER:-0}" = 1 ] || apt_packages+=(chromium)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || fail "apt-get not found; install ${missing[*]} by hand"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    fail "apt-get install ${missing[*]}"
else
  step "Debian packages present (${apt_packages[*]})"
fi
[ -x "$DEB_RUSTC" ] || fail "$DEB_RUSTC missing after installing rustc-web"
[ -d /usr/lib/rustlib/src/rust/library ] || fail "std source missing (package rust-web-src)"
command -v rust-lld >/dev/null || fail "rust-lld missing (package lld-22)"

# --- 2. The wasm32 standard library, built once from Debian's source into its sysroot -----
WASM_LIBDIR=/usr/lib/rustlib/wasm32-unknown-unknown/lib
if ! ls "$WASM_LIBDIR"/libstd-*.rlib >/dev/null 2>&1; then
  step "building the wasm32 standard library from /usr/lib/rustlib/src (about a minute)"
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/src"
  cat >"$tmp/Cargo.toml" <<'TOML'
[package]
name = "wasm_std_seed"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"
[profile.release]
panic = "abort"
TOML
  echo '#[no_mangle] pub extern "C" fn seed() -> u32 { 1 }' >"$tmp/src/lib.rs"
  (cd "$tmp" && RUSTFLAGS=-Cembed-bitcode=yes RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 \
    "$DEB_CARGO" build -q --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort) || fail "building the wasm32 standard library"
  mkdir -p "$WASM_LIBDIR"
  find "$tmp/target/wasm32-unknown-unknown/release/deps" -name 'lib*.rlib' \
    ! -name 'libwasm_std_seed*' -exec cp {} "$WASM_LIBDIR/" \;
  rm -rf "$tmp"
  ls "$WASM_LIBDIR"/libstd-*.rlib >/dev/null 2>&1 || fail "wasm32 std not installed into $WASM_LIBDIR"
else
  step "wasm32 standard library present"
fi

# --- 3. worker-build and wasm-bindgen-cli (exactly the version in Cargo.lock) -------------
WORKER_BUILD_VERSION=0.8.7
if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  step "cargo install worker-build $WORKER_BUILD_VERSION (about 6 minutes on 2 cores)"
  # --force: cargo's own record may claim it is installed when the binary is gone.
  cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --force || fail "cargo install worker-build"
  worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION" || fail "worker-build not on PATH after cargo install"
else
  step "worker-build $WORKER_BUILD_VERSION present"
fi
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock")"
[ -n "$WB_VERSION" ] || fail "no wasm-bindgen version found in Cargo.lock"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$"; then
  step "cargo install wasm-bindgen-cli $WB_VERSION (about 6 minutes on 2 cores)"
  # Not --locked: a version pinned in its lock file is missing from this registry.
  cargo install -q wasm-bindgen-cli --version "$WB_VERSION" --force || fail "cargo install wasm-bindgen-cli $WB_VERSION"
  wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$" || fail "wasm-bindgen $WB_VERSION not on PATH after cargo install"
else
  step "wasm-bindgen-cli $WB_VERSION present"
fi

# --- 4. npm packages pinned by tests/package-lock.json ------------------------------------
lock="$ROOT/tests/package-lock.json"
stamp="$ROOT/tests/node_modules/.bootstrap-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
  step "npm ci (wrangler, miniflare, oidc-provider, esbuild, binaryen, playwright-core)"
  (cd "$ROOT/tests" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/"
  cp "$lock" "$stamp"
else
  step "npm packages present"
fi
for bin in esbuild wasm-opt wrangler; do
  [ -x "$ROOT/tests/node_modules/.bin/$bin" ] || fail "tests/node_modules/.bin/$bin missing after npm ci"
done

step "done"
