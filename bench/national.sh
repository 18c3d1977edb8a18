#!/usr/bin/env bash
# National scale on PostgreSQL, side by side with the embedded SQLite store in the same run:
#
#   1. durable issuance by two issuers at once (two `imza ca issue --csr-dir` processes, as two
#      CA nodes would run them), PostgreSQL beside SQLite;
#   2. OCSP from a public node (`imza serve --roles ocsp`, its responder certified by a CA node)
#      whose PostgreSQL holds COUNT certificates: cached answers, then first requests for
#      serials not yet cached (status read + signing: a random one of the COUNT per request),
#      and the node's peak RSS; then the same against the embedded single node (`--roles
#      ocsp,ca` on the SQLite store) holding the same COUNT certificates;
#   3. revocation to every node: `imza ca revoke` on the CA side, then two public nodes asked
#      until both answer revoked, REVOCATIONS times; p50 / p99 / max.
#
# A PostgreSQL cluster of its own in the scratch directory (as the tests do), stopped on exit.
# Results: bench/out/national-*. Usage: bench/national.sh [COUNT] [ISSUE_EACH] [REVOCATIONS]
# (defaults 10000000, 10000, 50).
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
N="${1:-10000000}"
EACH="${2:-10000}"
REVOCATIONS="${3:-50}"
RESULTS="$OUT/national-results.md"
: >"$RESULTS"

# --- a PostgreSQL cluster of this run's own (bench/common.sh) ---
start_bench_postgres
psql_pki() {
  psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U imza -d "${2:-pki}" -c "$1"
}
psql_pki "CREATE DATABASE pki" postgres
PG_URL="postgres://imza@127.0.0.1:$PG_PORT/pki"
echo "== PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (fsync on, defaults)"

# The same PKI shape on PostgreSQL (its CA node's data directory holds the CA keys).
CA_NODE="$WORK/ca-node"
pg_imza() { IMZA_STORE="$PG_URL" "$IMZA" --data-dir "$CA_NODE" "$@"; }
pg_imza ca init --name root --subject "CN=Bench Root,O=imza,C=AZ" --key ec-p256 >/dev/null
pg_imza ca init --name citizens --parent root --subject "CN=Bench Citizens,O=imza,C=AZ" --key ec-p256 >/dev/null

# --- 1. two issuers at once ---
echo "== 1. durable issuance: two issuers at once, $EACH CSRs each"
"$FIXTURES" csrs "$((2 * EACH))" "$WORK/csrs-all"
mkdir -p "$WORK/csrs-a" "$WORK/csrs-b"
# (The list in a file first: head closing a pipe early would fail the pipeline under pipefail.)
find "$WORK/csrs-all" -name '*.csr' | sort >"$WORK/csrs.txt"
head -n "$EACH" "$WORK/csrs.txt" | xargs -r mv -t "$WORK/csrs-a"
find "$WORK/csrs-all" -name '*.csr' | xargs -r mv -t "$WORK/csrs-b"
# two_issuers LABEL FILE IMZA...: both batches started together; prints certificates/s (wall
# clock) and keeps the figure in $WORK/FILE.
two_issuers() {
  local label="$1" file="$2" start end
  shift 2
  rm -rf "$WORK/out-a" "$WORK/out-b"
  wait_for_idle_machine
  start="$(date +%s.%N)"
  "$@" ca issue --ca citizens --profile citizen-sign --csr-dir "$WORK/csrs-a" --out-dir "$WORK/out-a" >/dev/null &
  local a=$!
  "$@" ca issue --ca citizens --profile citizen-sign --csr-dir "$WORK/csrs-b" --out-dir "$WORK/out-b" >/dev/null &
  local b=$!
  wait "$a"
  wait "$b"
  end="$(date +%s.%N)"
  awk -v n="$((2 * EACH))" -v s="$start" -v e="$end" -v l="$label" -v f="$WORK/$file" \
    'BEGIN { r = n / (e - s); printf "  %-52s %8.0f certificates/s (%d in %.2f s)\n", l, r, n, e - s
             printf "%.0f certificates/s (%d in %.2f s)", r, n, e - s > f }'
}
for run in 1 2; do
  two_issuers "SQLite (synchronous=FULL), run $run" "issue-sqlite-$run" "$IMZA"
  two_issuers "PostgreSQL (synchronous_commit=on), run $run" "issue-pg-$run" pg_imza
  echo "| durable issuance, two issuers at once, $EACH CSRs each, run $run (SQLite: synchronous=FULL; PostgreSQL: synchronous_commit=on, one server for both) | **$(cat "$WORK/issue-pg-$run")** | $(cat "$WORK/issue-sqlite-$run") |" >>"$WORK/issue.md"
done
psql_pki "SELECT 'PostgreSQL store: ' || count(*) || ' certificates, ' || (SELECT count(*) FROM audit) || ' audit entries' FROM certificates"
pg_imza audit verify | sed 's/^/  /'

# --- 2. OCSP from a public node over COUNT certificates ---
echo "== 2. OCSP from a public node; $N certificates in PostgreSQL"
PKI="$WORK/pki"
mkdir -p "$PKI"
pg_imza ca cert --ca root >"$PKI/root.pem"
pg_imza ca cert --ca citizens >"$PKI/ca.pem"
export P12_PASS=bench
pg_imza ca issue --ca citizens --profile citizen-auth \
  --subject "CN=Bench Citizen,givenName=Bench,SN=Citizen,serialNumber=PNOAZ-0000001,C=AZ" \
  --new-key ec-p256 --p12-out "$PKI/leaf.p12" --p12-pass-env P12_PASS --out "$PKI/leaf.pem" >/dev/null
start=$SECONDS
# Serials 42 × 13 ‖ i (3 octets), i < COUNT: the scheme bench/post.lua's WRK_SERIAL_RANGE asks.
psql_pki "INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after, issued_at, der)
  SELECT 'citizens', '42424242424242424242424242' || upper(lpad(to_hex(i), 6, '0')), 'CN=bench',
         'citizen-auth', 1700000000, 1900000000, 1700000000, '\\x3000'::bytea
  FROM generate_series(0, $N - 1) AS i"
psql_pki "VACUUM ANALYZE certificates"
echo "  $N rows inserted in $((SECONDS - start)) s; table and indexes: $(psql_pki "SELECT pg_size_pretty(pg_total_relation_size('certificates'))")"

cat >"$WORK/serve.toml" <<TOML
check_interval_seconds = 1
TOML
CA_PORT="$(free_port)"
start_server "$OUT/national-ca-node.log" env IMZA_STORE="$PG_URL" "$IMZA" --data-dir "$CA_NODE" \
  serve --roles ca --listen "127.0.0.1:$CA_PORT" --config "$WORK/serve.toml"
wait_for_port "$CA_PORT" "$SERVER_PID" "$OUT/national-ca-node.log"
declare -a PUB_PIDS PUB_URLS
for node in pub1 pub2; do
  port="$(free_port)"
  start_server "$OUT/national-$node.log" env IMZA_STORE="$PG_URL" "$IMZA" --data-dir "$WORK/$node" \
    serve --roles ocsp --node "$node" --listen "127.0.0.1:$port" --config "$WORK/serve.toml"
  wait_for_port "$port" "$SERVER_PID" "$OUT/national-$node.log"
  PUB_PIDS+=("$SERVER_PID")
  PUB_URLS+=("http://127.0.0.1:$port/ocsp")
done
openssl ocsp -issuer "$PKI/ca.pem" -cert "$PKI/leaf.pem" -no_nonce -reqout "$PKI/leaf.req" >/dev/null
# answer URL REQUEST: the certificate status a node gives, from openssl's reading of it.
answer() {
  curl -s --max-time 5 -H 'Content-Type: application/ocsp-request' --data-binary "@$2" "$1" -o "$WORK/resp.der" || true
  openssl ocsp -respin "$WORK/resp.der" -resp_text -noverify 2>/dev/null | sed -n 's/^ *Cert Status: //p' | head -1
}
for url in "${PUB_URLS[@]}"; do
  for _ in $(seq 100); do
    [[ "$(answer "$url" "$PKI/leaf.req")" == good ]] && break
    sleep 0.2
  done
  [[ "$(answer "$url" "$PKI/leaf.req")" == good ]] || { echo "$url never answered good" >&2; exit 1; }
done
echo "  both public nodes answer good with responders certified for them by the CA node"
SERVER_PID="${PUB_PIDS[0]}"
pg_run_wrk national-ocsp-cached "${PUB_URLS[0]}" "$PKI/leaf.req" application/ocsp-request
read -r CACHED_RPS CACHED_P99 <<<"$RPS $P99_MS"
openssl ocsp -issuer "$PKI/ca.pem" -serial 0x42424242424242424242424242000000 -no_nonce \
  -reqout "$PKI/fixture.req" >/dev/null
WRK_SERIAL=42424242424242424242424242000000 WRK_SERIAL_RANGE="$N" \
  pg_run_wrk national-ocsp-uncached "${PUB_URLS[0]}" "$PKI/fixture.req" application/ocsp-request
read -r MISS_RPS MISS_P99 MISS_SERVER MISS_PG <<<"$RPS $P99_MS $SERVER_CORES $PG_CORES"
PUB_RSS_KIB="$(peak_rss_kib "${PUB_PIDS[0]}")"
echo "  public node peak RSS: $((PUB_RSS_KIB / 1024)) MiB"

echo "== 2b. the same from the embedded single node; $N certificates in SQLite"
start=$SECONDS
sqlite3 "$IMZA_DATA_DIR/imza.db" "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < $N - 1)
  INSERT INTO certificates (ca, serial, subject, profile, not_before, not_after, issued_at, der, id)
  SELECT 'citizens', '42424242424242424242424242' || printf('%06X', n), 'CN=bench', 'citizen-auth',
         1700000000, 1900000000, 1700000000, x'3000', 1000000000 + n FROM i"
echo "  $N rows inserted in $((SECONDS - start)) s; store $(du -h "$IMZA_DATA_DIR/imza.db" | cut -f1)"
"$IMZA" ca cert --ca citizens >"$PKI/sqlite-ca.pem"
openssl ocsp -issuer "$PKI/sqlite-ca.pem" -serial 0x42424242424242424242424242000000 -no_nonce \
  -reqout "$PKI/sqlite-fixture.req" >/dev/null
port="$(free_port)"
start_server "$OUT/national-sqlite-node.log" "$IMZA" serve --roles ocsp,ca \
  --listen "127.0.0.1:$port" --config "$WORK/serve.toml"
wait_for_port "$port" "$SERVER_PID" "$OUT/national-sqlite-node.log"
SQLITE_URL="http://127.0.0.1:$port/ocsp"
[[ "$(answer "$SQLITE_URL" "$PKI/sqlite-fixture.req")" == good ]] || { echo "the SQLite node does not answer good" >&2; exit 1; }
run_wrk national-sqlite-ocsp-cached "$SQLITE_URL" "$PKI/sqlite-fixture.req" application/ocsp-request
read -r SQLITE_CACHED_RPS SQLITE_CACHED_P99 <<<"$RPS $P99_MS"
WRK_SERIAL=42424242424242424242424242000000 WRK_SERIAL_RANGE="$N" \
  run_wrk national-sqlite-ocsp-uncached "$SQLITE_URL" "$PKI/sqlite-fixture.req" application/ocsp-request
read -r SQLITE_MISS_RPS SQLITE_MISS_P99 SQLITE_MISS_SERVER <<<"$RPS $P99_MS $SERVER_CORES"
SQLITE_RSS_KIB="$(peak_rss_kib "$SERVER_PID")"
echo "  embedded node peak RSS: $((SQLITE_RSS_KIB / 1024)) MiB"
kill "$SERVER_PID"

# --- 3. revocation to every node ---
echo "== 3. revocation to two public nodes, $REVOCATIONS times"
: >"$WORK/revocation-ms"
for i in $(seq 1 "$REVOCATIONS"); do
  serial="$(printf '42424242424242424242424242%06X' "$i")"
  openssl ocsp -issuer "$PKI/ca.pem" -serial "0x$serial" -no_nonce -reqout "$WORK/r.req" >/dev/null
  for url in "${PUB_URLS[@]}"; do answer "$url" "$WORK/r.req" >/dev/null; done # cached as good
  start="$(date +%s%N)"
  pg_imza ca revoke --ca citizens --serial "$serial" --reason keyCompromise >/dev/null
  for url in "${PUB_URLS[@]}"; do
    until [[ "$(answer "$url" "$WORK/r.req")" == revoked ]]; do :; done
  done
  echo $((($(date +%s%N) - start) / 1000000)) >>"$WORK/revocation-ms"
done
read -r REV_P50 REV_P99 REV_MAX <<<"$(sort -n "$WORK/revocation-ms" | awk '{ v[NR] = $1 } END {
  p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]; print p50, p99, v[NR] }')"
echo "  from the start of imza ca revoke to both nodes answering revoked: p50 $REV_P50 ms, p99 $REV_P99 ms, max $REV_MAX ms"

{
  echo "### National scale (bench/national.sh)"
  echo
  echo "| measurement | PostgreSQL | SQLite (same run) |"
  echo "| --- | --- | --- |"
  cat "$WORK/issue.md"
  echo "| OCSP, $N certificates in the store, cached (wrk -c $WRK_CONNECTIONS -t $WRK_THREADS -d $WRK_DURATION): a public node / the embedded single node | **$(printf '%.0f' "$CACHED_RPS") responses/s**, p99 $CACHED_P99 ms | $(printf '%.0f' "$SQLITE_CACHED_RPS") responses/s, p99 $SQLITE_CACHED_P99 ms |"
  echo "| same, every request a serial not yet cached (status read + P-256 signature) | **$(printf '%.0f' "$MISS_RPS") responses/s**, p99 $MISS_P99 ms (CPU: node $MISS_SERVER cores, PostgreSQL $MISS_PG) | $(printf '%.0f' "$SQLITE_MISS_RPS") responses/s, p99 $SQLITE_MISS_P99 ms (CPU: node $SQLITE_MISS_SERVER cores) |"
  echo "| node peak RSS after both runs | **$((PUB_RSS_KIB / 1024)) MiB** | $((SQLITE_RSS_KIB / 1024)) MiB |"
  echo "| revocation to both public nodes ($REVOCATIONS revocations, from the start of \`imza ca revoke\`) | p50 $REV_P50 ms, **p99 $REV_P99 ms**, max $REV_MAX ms | — (one node) |"
  echo
} | tee -a "$RESULTS"
record_conditions "$RESULTS"
