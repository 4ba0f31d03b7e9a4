#!/usr/bin/env bash
# Prints the built Worker's wasm size (raw and gzip -9) and enforces the gzip budget.
# The budget is a conscious number: raise it only together with the reason, in the same
# commit (docs/performance.md keeps the history).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM="$ROOT/build/index_bg.wasm"
# Measured 2026-11-22 (third round: IDNA back end pinned to the stub, the direct proxy
# path): 297,329 bytes gzip (docs/performance.md has the breakdown and the history).
# Budget = measurement + 20 %. The performance issue's goal is under 250 KB; not met yet
# (see the doc).
# Raised 2026-11-27 (issue 13, provider interop) from 356,795: issue 12 measured 340,263;
# private_key_jwt (private JWK parsing, and P-256 / Ed25519 public keys derived to check
# a key at configuration time), client assertions, PAR, END_SESSION_URL and the
# WebCrypto signer glue brought it to 356,957. Budget = that + 1 %; issue 16 is the one
# that cuts the module.
# Raised again 2026-11-27 (issue 13, DPoP: key, proofs, nonces, the direct path's proof
# input) from 360,527: measured 363,705. Budget = that + 1 %.
# Raised again 2026-11-27 (issue 14: route require, WebSocket and event-stream routes; and
# issue 13's multi-tenant issuers) from 367,342: measured 369,352. Budget = that + 1 %.
# Lowered 2026-11-28 (issue 16): the standard library built with the crate, panics
# trapping at once (-Cpanic=immediate-abort, no location strings): measured 342,798.
# Budget = that + 1 %.
# Raised 2026-12-07 (issue 24, reliability round 3) from 346,226: 42eaa47 measured 343,218;
# the RSA key-pair check of CLIENT_PRIVATE_KEY (big-number arithmetic at configuration
# time), /health served from the provider cache, the v3 refresh-refusal rules (KV record
# delete, tenant pin, require after a refresh), the coordinator's two-step ask and
# redacted Debug brought it to 347,080 (the acknowledged answer is made in glue.js rather
# than with worker's Rust streams: 820 bytes less). Budget = that + 1 %.
# Raised 2026-12-07 (issue 26, tokens for every API) from 350,551: issue 25 ended at
# 347,625; route tokens and app-only tokens brought it to 363,575 (+15.9 KB). Where, from
# names-kept builds (wasm-opt --func-metrics, raw bytes): the grant loop in
# SessionCall::grant +8 KB, the client-credentials path +7.7 KB (oauth2's request type;
# a hand-built form through TokenHttp measured 735 bytes larger), configuration parsing
# +5.6 KB, serde buffering of route tokens inside the coordinator's tagged answer
# +3.5 KB. Issue 27 (a lean edge) owns winning it back. Budget = that + 1 %.
# Lowered 2026-12-07 (issue 27, lever 2) from 367,211: signatures verified and private
# keys checked by WebCrypto (a pairwise test) instead of RustCrypto in the module
# (`rsa`, `num-bigint-dig`, `p256`, `curve25519-dalek`, SHA-512 gone): 363,430 → 330,747.
# Budget = that + 1 %.
# Lowered again 2026-12-07 (issue 27, same session) from 334,054: KV, the coordinator's
# ask and its storage through glue.js (−11.3 KB) and wasm-opt inlining single-caller
# functions only when small (-ocimfs 100, −10.6 KB): measured 308,818. Budget = that + 1 %.
BUDGET_GZIP_BYTES=${WASM_GZIP_BUDGET:-311906}
[ -f "$WASM" ] || { echo "wasm-size: $WASM missing; run scripts/build.sh" >&2; exit 1; }
raw=$(stat -c %s "$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
printf 'wasm size: %d bytes raw (%d KiB), %d bytes gzip (%d KiB); budget %d KiB gzip\n' \
  "$raw" $((raw / 1024)) "$gz" $((gz / 1024)) $((BUDGET_GZIP_BYTES / 1024))
if [ "$gz" -gt "$BUDGET_GZIP_BYTES" ]; then
  echo "wasm-size: over budget by $((gz - BUDGET_GZIP_BYTES)) bytes" >&2
  exit 1
fi
