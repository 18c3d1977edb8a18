#!/usr/bin/env bash
# The citizen portal's login page under 200 concurrent browsers (wrk -c 200) over HTTPS, on the
# embedded SQLite store and on PostgreSQL side by side in the same run (`imza serve --roles
# portal` with a tls-server certificate from the bench PKI):
#
#   new      GET /portal without a cookie: every request is a new browser, so a new session
#            is written to the store and a Set-Cookie sent (the page's real first visit);
#   back     GET /portal with one of 1,000 live session cookies picked at random per request:
#            the session read (its last-seen time written at most every 30 s), a returning
#            browser.
#
# Target (issue 15): p99 < 50 ms. Raw wrk output and the results: bench/out/portal-*.
# wrk settings: WRK_CONNECTIONS (200 here), WRK_THREADS (2), WRK_DURATION (15s), WRK_WARMUP (3s).
# Usage: bench/portal.sh
# shellcheck source=bench/common.sh
WRK_CONNECTIONS="${WRK_CONNECTIONS:-200}"
source "$(dirname "$0")/common.sh"
RESULTS="$OUT/portal-results.md"
: >"$RESULTS"

echo "== setting up: a tls-server certificate for 127.0.0.1 from the bench PKI"
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TLS/key.pem" 2>/dev/null
chmod 600 "$TLS/key.pem"
openssl req -new -key "$TLS/key.pem" -subj "/CN=127.0.0.1/O=imza bench/C=AZ" \
  -addext "subjectAltName=IP:127.0.0.1" -out "$TLS/csr.pem" 2>/dev/null
"$IMZA" ca issue --ca citizens --profile tls-server --csr "$TLS/csr.pem" --out "$TLS/cert.pem" >/dev/null
{
  cat "$TLS/cert.pem"
  "$IMZA" ca cert --ca citizens
} >"$TLS/chain.pem"
"$IMZA" ca cert --ca root >"$TLS/root.pem"

start_bench_postgres
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U imza -d postgres -c "CREATE DATABASE pki"
PG_URL="postgres://imza@127.0.0.1:$PG_PORT/pki"
"$IMZA" store migrate --to "$PG_URL" >/dev/null
echo "  PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (fsync on, defaults), the same PKI migrated into it"

# bench_engine NAME [STORE_URL]: imza serve --roles portal over HTTPS on the store, both
# scenarios, then stop.
bench_engine() {
  local name="$1" store="${2:-}" port url cookie
  port="$(free_port)"
  url="https://127.0.0.1:$port/portal"
  echo "== $name: imza serve --roles portal on https://127.0.0.1:$port"
  local -a store_args=()
  [[ -n "$store" ]] && store_args=(--store "$store")
  start_server "$OUT/portal-$name-serve.log" "$IMZA" "${store_args[@]}" serve \
    --listen "127.0.0.1:$port" --roles portal --tls-cert "$TLS/chain.pem" --tls-key "$TLS/key.pem"
  wait_for_port "$port" "$SERVER_PID" "$OUT/portal-$name-serve.log"
  # The page as a browser gets it, checked against the bench root.
  curl -sf --cacert "$TLS/root.pem" "$url" | grep -q 'Vətəndaş portalına giriş' || {
    echo "$name: the login page is not served" >&2
    return 1
  }
  local run=pg_run_wrk
  [[ -z "$store" ]] && run=run_wrk
  $run "portal-$name-new" "$url" GET -
  echo "| $name | new browser (a session written) | $RPS | $P50_MS | $P99_MS | $NON2XX/$ERRORS | $SERVER_CORES${PG_CORES:+ + PostgreSQL $PG_CORES} |" >>"$RESULTS"
  # 1,000 browsers' sessions (curl --parallel: one process).
  local i
  for ((i = 0; i < 1000; i++)); do echo "url = \"$url\""; echo "output = /dev/null"; done >"$WORK/urls"
  curl -s --no-progress-meter --parallel --parallel-max 50 --cacert "$TLS/root.pem" -D - -K "$WORK/urls" |
    sed -n 's/^set-cookie: \(__Host-imza-session=[^;]*\).*/\1/p' >"$WORK/cookies-$name"
  [[ "$(wc -l <"$WORK/cookies-$name")" == 1000 ]] || {
    echo "$name: expected 1000 session cookies, got $(wc -l <"$WORK/cookies-$name")" >&2
    return 1
  }
  WRK_COOKIE_FILE="$WORK/cookies-$name" $run "portal-$name-back" "$url" GET -
  echo "| $name | returning browser (session read) | $RPS | $P50_MS | $P99_MS | $NON2XX/$ERRORS | $SERVER_CORES${PG_CORES:+ + PostgreSQL $PG_CORES} |" >>"$RESULTS"
  stop_server "$SERVER_PID"
}

echo "| store | request | responses/s | p50 ms | p99 ms | HTTP errors/socket errors | CPU cores |" >>"$RESULTS"
echo "|---|---|---|---|---|---|---|" >>"$RESULTS"
PG_CORES=""
bench_engine sqlite
bench_engine postgres "$PG_URL"
echo
machine_conditions
cat "$RESULTS"
