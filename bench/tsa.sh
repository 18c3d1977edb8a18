#!/usr/bin/env bash
# RFC 3161 time-stamping throughput of `imza serve` over loopback, measured with wrk: every
# request is the same `openssl ts -query -sha256 -cert` (with openssl's default nonce); every
# token is signed live with the unit's P-256 key. No peer: openssl has no TSA server.
#
# Raw wrk output and the results go to bench/out/tsa-*. wrk settings: WRK_CONNECTIONS (64),
# WRK_THREADS (2), WRK_DURATION (15s), WRK_WARMUP (3s).
# Usage: bench/tsa.sh
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
PKI="$WORK/pki"
mkdir -p "$PKI"

echo "== setting up: root and citizens CAs (P-256), a time-stamping unit (P-256)"
"$IMZA" ca cert --ca root >"$PKI/root.pem"
"$IMZA" ca cert --ca citizens >"$PKI/ca.pem"
"$IMZA" tsa init --ca citizens >/dev/null
"$IMZA" tsa cert >"$PKI/tsa.pem"
echo "  unit: $(openssl x509 -in "$PKI/tsa.pem" -noout -subject -nameopt utf8,sep_comma_plus_space | sed 's/^subject=//'), key $(openssl x509 -in "$PKI/tsa.pem" -noout -text | grep -m1 'ASN1 OID' | tr -s ' ')"
head -c 1024 /dev/urandom >"$PKI/document"
openssl ts -query -data "$PKI/document" -sha256 -cert -out "$PKI/q.tsq" 2>/dev/null

PORT="$(free_port)"
URL="http://127.0.0.1:$PORT/tsa"
echo "== imza serve on 127.0.0.1:$PORT"
start_server "$OUT/tsa-imza-serve.log" "$IMZA" serve --listen "127.0.0.1:$PORT"
IMZA_PID=$SERVER_PID
wait_for_port "$PORT" "$IMZA_PID" "$OUT/tsa-imza-serve.log"

# check_tsa NAME: one token, checked by openssl ts -verify against the query and the root.
check_tsa() {
  local name="$1" text="$OUT/tsa-$1-check.txt"
  python3 - "$URL" "$PKI/q.tsq" "$PKI/$name.tsr" <<'POST'
import sys, urllib.request
url, query, reply = sys.argv[1:]
request = urllib.request.Request(url, data=open(query, "rb").read(),
                                 headers={"Content-Type": "application/timestamp-query"})
with urllib.request.urlopen(request, timeout=30) as response:
    open(reply, "wb").write(response.read())
POST
  if ! openssl ts -verify -in "$PKI/$name.tsr" -queryfile "$PKI/q.tsq" -CAfile "$PKI/root.pem" \
    -untrusted "$PKI/ca.pem" >"$text" 2>&1; then
    echo "$name: openssl ts -verify refuses the token:" >&2
    cat "$text" >&2
    return 1
  fi
  grep -q '^Verification: OK' "$text" || {
    cat "$text" >&2
    return 1
  }
  openssl ts -reply -in "$PKI/$name.tsr" -text >>"$text" 2>&1
  echo "  $name: openssl ts -verify: Verification: OK ($(sed -n 's/^Time stamp: //p' "$text"))"
}
check_tsa imza

echo "== wrk -c $WRK_CONNECTIONS -t $WRK_THREADS -d $WRK_DURATION --latency (after a $WRK_WARMUP warm-up)"
run_wrk tsa-imza "$URL" "$PKI/q.tsq" application/timestamp-query
check_tsa imza-after
IMZA_RSS_KIB="$(peak_rss_kib "$IMZA_PID")"
stop_server "$IMZA_PID"

python3 - "$OUT/tsa-results.md" <<PY
import sys
conns, threads, dur = $WRK_CONNECTIONS, $WRK_THREADS, "$WRK_DURATION"
rps, p50, p99, rss = $RPS, $P50_MS, $P99_MS, $IMZA_RSS_KIB / 1024
busy = "$BUSY"
rows = [
    f"| RFC 3161 time-stamp tokens (SHA-256 imprint, nonce, certReq), each signed live with a P-256 key; \`wrk -c {conns} -t {threads} -d {dur} --latency\`, keep-alive | **{rps:,.0f} tokens/s**, p50 {p50:.2f} ms, p99 {p99:.2f} ms, peak RSS {rss:,.0f} MiB | — (openssl has no TSA server) | |",
]
ok = rps >= 8000
check = ("met    " if ok else "MISSED ") + f">= 8,000 tokens/s with a P-256 key: {rps:,.0f}" + ("" if ok else f" ({rps / 8000 - 1:+.0%})")
out = "\n".join(["| benchmark | imza | peer (same run) | |", "| --- | --- | --- | --- |", *rows, "", "Target:", "  " + check])
if busy:
    out += "\nWARNING: a cargo/rustc build ran during the measurement; repeat on a quiet machine."
print(out)
open(sys.argv[1], "w").write(out + "\n")
PY
record_conditions "$OUT/tsa-results.md"
