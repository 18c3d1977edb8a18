#!/usr/bin/env bash
# OCSP responder throughput of `imza serve` over loopback, measured with wrk, with 1,000,000
# further certificates of the issuing CA in the store, side by side with the peer
# `openssl ocsp -index ... -port` answering the same request for the same certificate.
#
#   imza, nonce-less request: served from the pre-signed cache (keep-alive, and one
#         connection per request as the peer works);
#   imza, a fresh random nonce in every request: signed live (P-256);
#   openssl ocsp: signs every response live (P-256 responder key), HTTP/1.0, one connection
#         per request; single process (its default), then -multi 2 (one per core);
#   peak RSS (VmHWM) of the imza server after its runs, and of the single openssl process.
#
# Raw wrk outputs and the results go to bench/out/ocsp-*. wrk settings: WRK_CONNECTIONS (64),
# WRK_THREADS (2), WRK_DURATION (15s), WRK_WARMUP (3s); fixture size: COUNT (1000000).
# Usage: bench/ocsp.sh [COUNT]
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
N="${1:-1000000}"
export P12_PASS=bench
PKI="$WORK/pki"
mkdir -p "$PKI"

echo "== setting up: root and citizens CAs (P-256), one citizen certificate, $N more rows"
"$IMZA" ca cert --ca root >"$PKI/root.pem"
"$IMZA" ca cert --ca citizens >"$PKI/ca.pem"
"$IMZA" ca issue --ca citizens --profile citizen-auth \
  --subject "CN=Bench Citizen,givenName=Bench,SN=Citizen,serialNumber=PNOAZ-0000001,C=AZ" \
  --new-key ec-p256 --p12-out "$PKI/leaf.p12" --p12-pass-env P12_PASS --out "$PKI/leaf.pem" >/dev/null
# The peer's delegated responder: the same profile and key type imza's responder has.
"$IMZA" ca issue --ca citizens --profile ocsp --subject "CN=Bench OCSP peer,O=imza,C=AZ" \
  --new-key ec-p256 --p12-out "$PKI/peer.p12" --p12-pass-env P12_PASS --out "$PKI/peer.pem" >/dev/null
openssl pkcs12 -in "$PKI/peer.p12" -passin env:P12_PASS -nocerts -nodes | openssl pkey -out "$PKI/peer.key"

# The fake rows, and the same serials as the peer's index; then the real certificate's line.
start=$SECONDS
"$FIXTURES" issued "$IMZA_DATA_DIR" citizens "$N" "$PKI/index.txt"
echo "  $N certificate rows inserted in $((SECONDS - start)) s"
serial="$(openssl x509 -in "$PKI/leaf.pem" -noout -serial | cut -d= -f2)"
not_after="$(date -u -d "$(openssl x509 -in "$PKI/leaf.pem" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)"
subject="$(openssl x509 -in "$PKI/leaf.pem" -noout -subject -nameopt compat | sed 's/^subject=//')"
printf 'V\t%s\t\t%s\tunknown\t%s\n' "$not_after" "$serial" "$subject" >>"$PKI/index.txt"
# The fake rows share one subject; `openssl ca` indexes refuse that unless told.
echo "unique_subject = no" >"$PKI/index.txt.attr"

openssl ocsp -issuer "$PKI/ca.pem" -cert "$PKI/leaf.pem" -no_nonce -reqout "$PKI/req-nononce.der" >/dev/null
openssl ocsp -issuer "$PKI/ca.pem" -cert "$PKI/leaf.pem" -reqout "$PKI/req-nonce.der" >/dev/null
# The nonce octets as they sit in the request (openssl prints the extension value, an OCTET
# STRING wrapping them: 04 10 + 16 octets), for bench/post.lua to replace per request.
nonce="$(openssl ocsp -reqin "$PKI/req-nonce.der" -req_text | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' ')"
nonce="${nonce#0410}"

# check_ocsp NAME URL REQUEST: asks once with the openssl client; the response must verify up
# to the root and say good (and echo the nonce when the request has one).
check_ocsp() {
  local name="$1" url="$2" req="$3" text="$OUT/ocsp-$1-check.txt"
  timeout 30 openssl ocsp -reqin "$req" -url "$url" -CAfile "$PKI/root.pem" -verify_other "$PKI/ca.pem" \
    -respout "$PKI/$name.der" -resp_text >"$text" 2>&1 || {
    cat "$text" >&2
    return 1
  }
  if ! grep -q '^Response verify OK' "$text" || ! grep -q 'Cert Status: good' "$text" \
    || grep -qE 'WARNING|error' "$text"; then
    echo "$name: the response does not verify as good:" >&2
    cat "$text" >&2
    return 1
  fi
  echo "  $name: response verifies up to the root, Cert Status: good"
}

PORT="$(free_port)"
URL="http://127.0.0.1:$PORT/ocsp"
echo "== imza serve on 127.0.0.1:$PORT"
start_server "$OUT/ocsp-imza-serve.log" "$IMZA" serve --listen "127.0.0.1:$PORT"
IMZA_PID=$SERVER_PID
wait_for_port "$PORT" "$IMZA_PID" "$OUT/ocsp-imza-serve.log"
echo "  listening; RSS after start: $(awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$IMZA_PID/status")"
check_ocsp imza-cached "$URL" "$PKI/req-nononce.der"
check_ocsp imza-nonce "$URL" "$PKI/req-nonce.der"
grep -q 'Response Single Extensions\|OCSP Nonce' "$OUT/ocsp-imza-nonce-check.txt" \
  || { echo "imza's response to a nonce request carries no nonce" >&2; exit 1; }

echo "== wrk -c $WRK_CONNECTIONS -t $WRK_THREADS -d $WRK_DURATION --latency (after a $WRK_WARMUP warm-up)"
run_wrk ocsp-imza-cached "$URL" "$PKI/req-nononce.der" application/ocsp-request
read -r CACHED_RPS CACHED_P99 CACHED_BUSY <<<"$RPS $P99_MS ${BUSY:+busy}"
WRK_EXTRA_HEADER="Connection: close" run_wrk ocsp-imza-cached-close "$URL" "$PKI/req-nononce.der" application/ocsp-request
read -r CLOSE_RPS CLOSE_P99 CLOSE_BUSY <<<"$RPS $P99_MS ${BUSY:+busy}"
WRK_NONCE="$nonce" run_wrk ocsp-imza-nonce "$URL" "$PKI/req-nonce.der" application/ocsp-request
read -r NONCE_RPS NONCE_P99 NONCE_BUSY <<<"$RPS $P99_MS ${BUSY:+busy}"
check_ocsp imza-after "$URL" "$PKI/req-nononce.der"
IMZA_RSS_KIB="$(peak_rss_kib "$IMZA_PID")"
stop_server "$IMZA_PID"

# The peer's nextUpdate as far from thisUpdate as imza's.
this_update="$(sed -n 's/^ *This Update: //p' "$OUT/ocsp-imza-cached-check.txt")"
next_update="$(sed -n 's/^ *Next Update: //p' "$OUT/ocsp-imza-cached-check.txt")"
NEXT_ARGS=()
if [[ -n "$next_update" ]]; then
  NEXT_ARGS=(-nmin "$((($(date -u -d "$next_update" +%s) - $(date -u -d "$this_update" +%s)) / 60))")
fi
PEER=(openssl ocsp -index "$PKI/index.txt" -port "$PORT" -rsigner "$PKI/peer.pem" -rkey "$PKI/peer.key"
  -CA "$PKI/ca.pem" "${NEXT_ARGS[@]}")
PEER_URL="http://127.0.0.1:$PORT/"
# The peer gets no wrk warm-up: it has no cache to fill, and wrk closing its connections at
# the end of a run can leave `openssl ocsp` stuck on one that never sent a request.

echo "== peer: ${PEER[*]}"
start_server "$OUT/ocsp-openssl.log" "${PEER[@]}"
wait_for_port "$PORT" "$SERVER_PID" "$OUT/ocsp-openssl.log"
check_ocsp openssl "$PEER_URL" "$PKI/req-nononce.der"
WRK_WARMUP=0 run_wrk ocsp-openssl "$PEER_URL" "$PKI/req-nononce.der" application/ocsp-request
read -r PEER_RPS PEER_P99 PEER_BUSY <<<"$RPS $P99_MS ${BUSY:+busy}"
PEER_RSS_KIB="$(peak_rss_kib "$SERVER_PID")"
stop_server "$SERVER_PID"

if openssl ocsp -help 2>&1 | grep -q -- '-multi'; then
  echo "== peer with -multi $(nproc) (one responder process per core)"
  start_server "$OUT/ocsp-openssl-multi.log" "${PEER[@]}" -multi "$(nproc)"
  wait_for_port "$PORT" "$SERVER_PID" "$OUT/ocsp-openssl-multi.log"
  check_ocsp openssl-multi "$PEER_URL" "$PKI/req-nononce.der"
  WRK_WARMUP=0 run_wrk ocsp-openssl-multi "$PEER_URL" "$PKI/req-nononce.der" application/ocsp-request
  read -r MULTI_RPS MULTI_P99 MULTI_BUSY <<<"$RPS $P99_MS ${BUSY:+busy}"
  stop_server "$SERVER_PID"
fi

python3 - "$OUT/ocsp-results.md" <<PY
import sys
n, conns, threads, dur, cores = $N, $WRK_CONNECTIONS, $WRK_THREADS, "$WRK_DURATION", $(nproc)
cached, cached_p99, close, close_p99 = $CACHED_RPS, $CACHED_P99, $CLOSE_RPS, $CLOSE_P99
nonce, nonce_p99 = $NONCE_RPS, $NONCE_P99
peer, peer_p99 = $PEER_RPS, $PEER_P99
multi, multi_p99 = ${MULTI_RPS:-0}, ${MULTI_P99:-0}
rss, peer_rss = $IMZA_RSS_KIB / 1024, $PEER_RSS_KIB / 1024
busy = "${CACHED_BUSY}${CLOSE_BUSY}${NONCE_BUSY}${PEER_BUSY}${MULTI_BUSY:-}"
wrk = f"\`wrk -c {conns} -t {threads} -d {dur} --latency\`"
peer_name = "\`openssl ocsp -index -port\` (signs every response; HTTP/1.0, one connection per request)"
rows = [
    f"| OCSP, nonce-less request for a good certificate, served from the pre-signed cache; {n:,} more certificates in the store; {wrk}, keep-alive | **{cached:,.0f} responses/s**, p99 {cached_p99:.2f} ms | {peer_name}, one process (its default): {peer:,.0f}/s, p99 {peer_p99:.2f} ms | {cached / peer:.1f}× |",
]
if multi:
    rows.append(f"| same | same | \`openssl ocsp ... -multi {cores}\` (one process per core): {multi:,.0f}/s, p99 {multi_p99:.2f} ms | {cached / multi:.1f}× |")
rows += [
    f"| same, one connection per request (\`Connection: close\`, as the peer works) | **{close:,.0f} responses/s**, p99 {close_p99:.2f} ms | one process: {peer:,.0f}/s" + (f"; \`-multi {cores}\`: {multi:,.0f}/s" if multi else "") + f" | {close / peer:.1f}×" + (f" / {close / multi:.1f}×" if multi else "") + " |",
    f"| OCSP with a fresh random nonce in every request, signed live (P-256), same wrk settings | **{nonce:,.0f} responses/s**, p99 {nonce_p99:.2f} ms | — | |",
    f"| OCSP server peak RSS (VmHWM) after these runs, {n + 1:,} end-entity certificates in the store | **{rss:,.0f} MiB** | one \`openssl ocsp\` process over an index of the same {n + 1:,} lines: {peer_rss:,.0f} MiB | |",
]
def verdict(ok, text): return ("met    " if ok else "MISSED ") + text
def short(value, target): return "" if value >= target else f" ({value / target - 1:+.0%})"
checks = [
    verdict(cached >= 20000, f"cached >= 20,000 responses/s: {cached:,.0f}{short(cached, 20000)}"),
    verdict(cached >= 5 * peer, f"cached >= 5x the peer run as its manual describes (one process, {peer:,.0f}/s): {cached / peer:.2f}x"),
]
if multi:
    checks.append(verdict(cached >= 5 * multi, f"cached >= 5x the peer with -multi {cores} ({multi:,.0f}/s): {cached / multi:.2f}x"))
checks += [
    verdict(cached_p99 < 10, f"cached p99 < 10 ms at {conns} connections: {cached_p99:.2f} ms"),
    verdict(nonce >= 8000, f"nonce >= 8,000 responses/s: {nonce:,.0f}{short(nonce, 8000)}"),
    verdict(rss < 300, f"RSS < 300 MiB with {n:,} more certificates: {rss:,.0f} MiB"),
]
out = "\n".join(["| benchmark | imza | peer (same run) | |", "| --- | --- | --- | --- |", *rows, "", "Targets:", *("  " + c for c in checks)])
if busy:
    out += "\nWARNING: a cargo/rustc build ran during at least one measurement; repeat on a quiet machine."
print(out)
open(sys.argv[1], "w").write(out + "\n")
PY
record_conditions "$OUT/ocsp-results.md"
