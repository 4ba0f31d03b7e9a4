#!/usr/bin/env bash
# The local dev stack, one command: installs what is missing, then starts
#   - a real OpenID provider (npm oidc-provider) on http://localhost:9000 with a demo user,
#   - the demo API on http://127.0.0.1:9100,
#   - the Worker with the demo SPA under `wrangler dev` on http://localhost:8787.
# Ctrl-C stops all three.
#
# Sessions in sealed cookies by default; `scripts/dev.sh --kv` (or SESSION_STORE=kv) keeps
# them in the local KV namespace instead. Either way the provider sends back-channel
# logout to the Worker when you log out at the provider.
#
# `scripts/dev.sh --strict` runs the provider as a strict one: pushed authorization
# requests required, DPoP-bound tokens with nonces, and a client registered for
# private_key_jwt only (its keys at the Worker's /auth/jwks). The Worker gets a client key
# and a DPoP key (made once, kept in .wrangler/).
#
# Environment: DEV_PORT (8787), IDP_PORT (9000), API_PORT (9100), SESSION_STORE.
set -euo pipefail
SESSION_STORE="${SESSION_STORE:-cookie}"
STRICT=0
for arg in "$@"; do
  case "$arg" in
    --kv) SESSION_STORE=kv ;;
    --cookie) SESSION_STORE=cookie ;;
    --strict) STRICT=1 ;;
    *) echo "usage: scripts/dev.sh [--kv|--cookie] [--strict]" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BOOTSTRAP_SKIP_BROWSER=1 scripts/bootstrap.sh
source scripts/env.sh

DEV_PORT="${DEV_PORT:-8787}"
IDP_PORT="${IDP_PORT:-9000}"
API_PORT="${API_PORT:-9100}"
ORIGIN="http://localhost:$DEV_PORT"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$DEV_PORT" "$IDP_PORT" "$API_PORT"; do
  if port_busy "$p"; then
    echo "dev: port $p is in use; stop what uses it or set DEV_PORT/IDP_PORT/API_PORT" >&2
    exit 1
  fi
done

# Dev-only settings and secrets for `wrangler dev` (.dev.vars is git-ignored). The cookie
# key is generated once and kept, so sessions survive a restart of the stack.
KEY_FILE="$ROOT/.wrangler/dev-cookie-key"
mkdir -p "$ROOT/.wrangler"
[ -s "$KEY_FILE" ] || node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))' >"$KEY_FILE"
cat >"$ROOT/.dev.vars" <<EOF
OIDC_ISSUER=http://localhost:$IDP_PORT
CLIENT_ID=edge-bff-dev
CLIENT_SECRET=edge-bff-dev-secret
PUBLIC_ORIGIN=$ORIGIN
COOKIE_KEYS=dev1:$(cat "$KEY_FILE")
API_ROUTES=[{"prefix":"/api/","upstream":"http://127.0.0.1:$API_PORT/api/"},{"prefix":"/admin/","upstream":"http://127.0.0.1:$API_PORT/admin/","require":{"groups":"admin"}},{"prefix":"/events/","upstream":"http://127.0.0.1:$API_PORT/events/","event_stream":true},{"prefix":"/ws/","upstream":"http://127.0.0.1:$API_PORT/ws/","websocket":true},{"prefix":"/reports/","upstream":"http://127.0.0.1:$API_PORT/reports/","token_request":{"resource":"urn:edge-bff:demo-reports","scope":"reports:read"}},{"prefix":"/app-api/","upstream":"http://127.0.0.1:$API_PORT/app/","token":"client","token_request":{"resource":"urn:edge-bff:demo-reports","scope":"reports:read"}}]
SCOPES=openid profile email reports:read
SESSION_STORE=$SESSION_STORE
LOG_LEVEL=info
EOF
if [ "$STRICT" = 1 ]; then
  # One-line private JWKs, made once: P-256 for the client assertions and the proofs.
  for name in client dpop; do
    file="$ROOT/.wrangler/dev-$name-key.json"
    [ -s "$file" ] || node -e 'const {generateKeyPairSync}=require("crypto");
      const {privateKey}=generateKeyPairSync("ec",{namedCurve:"P-256"});
      console.log(JSON.stringify({...privateKey.export({format:"jwk"}),kid:process.argv[1]+"-1",alg:"ES256"}))' "$name" >"$file"
  done
  sed -i '/^CLIENT_SECRET=/d' "$ROOT/.dev.vars"
  cat >>"$ROOT/.dev.vars" <<EOF
CLIENT_AUTH=private_key_jwt
CLIENT_PRIVATE_KEY=$(cat "$ROOT/.wrangler/dev-client-key.json")
DPOP_KEY=$(cat "$ROOT/.wrangler/dev-dpop-key.json")
EOF
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "dev: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

IDP_STRICT=$STRICT IDP_CLIENT_JWKS_URI="http://127.0.0.1:$DEV_PORT/auth/jwks" \
IDP_PORT=$IDP_PORT IDP_CLIENT_ID=edge-bff-dev IDP_CLIENT_SECRET=edge-bff-dev-secret \
  IDP_REDIRECT_ORIGIN="$ORIGIN" IDP_BACKCHANNEL_LOGOUT_URI="http://127.0.0.1:$DEV_PORT/auth/backchannel-logout" \
  node tests/support/idp.mjs > >(grep -v WARNING) 2>&1 &
pids+=($!)
API_PORT=$API_PORT node tests/support/demo-api.mjs &
pids+=($!)

for _ in $(seq 1 50); do
  curl -sf "http://localhost:$IDP_PORT/.well-known/openid-configuration" >/dev/null && break
  sleep 0.2
done
curl -sf "http://localhost:$IDP_PORT/.well-known/openid-configuration" >/dev/null ||
  { echo "dev: the OpenID provider did not start" >&2; exit 1; }

cat <<EOF

  edge-bff dev stack (building the Worker first; this takes a minute the first time)
    app:              $ORIGIN
    OpenID provider:  http://localhost:$IDP_PORT   user: demo / demo-password, admin / admin-password
    demo API:         http://127.0.0.1:$API_PORT  (reached through $ORIGIN/api/)
    sessions:         $SESSION_STORE  (scripts/dev.sh --kv for KV)
    provider mode:    $([ "$STRICT" = 1 ] && echo "strict: PAR + DPoP + private_key_jwt" || echo "plain (scripts/dev.sh --strict: PAR + DPoP + private_key_jwt)")
  Ctrl-C stops everything.

EOF

# wrangler runs scripts/build.sh (its [build] command), then serves build/ and the SPA.
wrangler dev --ip 127.0.0.1 --port "$DEV_PORT" --show-interactive-dev-session=false &
pids+=($!)
wait "${pids[-1]}"
