#!/usr/bin/env bash
# Property/fuzz targets of every parser of outside input (src/fuzz.rs): each target runs
# for FUZZ_SECONDS (default 30) on generated input, in a release build with debug
# assertions and overflow checks on (as cargo-fuzz does: a dependency's debug_assert is a
# finding; the smoke run in the test profile found one, see src/config), and prints
# "# fuzz <target>: <cases> cases, 0 failures". A failure stops with proptest's
# minimised input and a non-zero exit.
#
#   scripts/fuzz.sh            every target, FUZZ_SECONDS each (release build)
#   scripts/fuzz.sh --smoke    every target for 1 s in the test profile (scripts/test.sh)
#   scripts/fuzz.sh proxy_paths return_to   only these targets
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
profile=(--release)
seconds="${FUZZ_SECONDS:-30}"
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) profile=(); seconds=1 ;;
    -*) echo "fuzz: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
filter="fuzz::"
[ "${#targets[@]}" -eq 0 ] || filter=""
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
FUZZ_SECONDS="$seconds" CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
  cargo test "${profile[@]}" --lib -- --nocapture --test-threads=1 \
  ${filter:+"$filter"} ${targets[@]+"${targets[@]/#/fuzz::}"} 2>&1 | tee "$log" | grep -E '^# fuzz|minimal failing input|panicked|^test result' 
rc=${PIPESTATUS[0]}
set -e
total=$(grep -Eo '^# fuzz [a-z_]+: [0-9]+ cases' "$log" | awk '{s+=$4} END {print s+0}')
count=$(grep -c '^# fuzz ' "$log" || true)
echo "fuzz: $count targets, $total cases, exit $rc"
exit "$rc"
