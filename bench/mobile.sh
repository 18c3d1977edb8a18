#!/usr/bin/env bash
# The mobile signature service (MSS) of `imza serve` under 1,000 concurrent sessions over
# loopback: COUNT simulated phones (one thread each) long-poll the device API; once all of them
# poll, COUNT relying-party threads released at the same instant each start a signature
# session for their own phone (a distinct random SHA-256 hash each) and long-poll it until
# COMPLETE, while every phone checks the verification code and answers with a P-256 signature
# of the hash. Every session is checked: result OK, the certificate returned is that phone's,
# the signature verifies over that session's own hash. Any lost (no COMPLETE/OK within 60 s),
# failed or mixed-up session fails the benchmark.
#
# Reported: sessions/s (sessions / wall time from the release to the last completion) and the
# p50/p95/p99/max time from a relying party's request to its verified signature; the server's
# peak RSS (VmHWM) and the CPU it and the load generator used while the sessions ran. The
# load generator (testdata imza-mss-load: 2 x COUNT threads, every request a new HTTP
# connection) runs on the same cores as the server.
#
# No peer: the issue names no peer program for this benchmark (Mobile-ID and Smart-ID are
# hosted services, not programs one can run beside imza).
#
# Set-up straight through the libraries (imza-mss-load setup): a `mobile` CA under the root,
# one relying party, COUNT devices with citizen-auth and citizen-sign certificates registered
# with the service. A warm-up round of WARMUP_SESSIONS (100) sessions precedes the measured one.
# Raw outputs and the results go to bench/out/mobile-*.
# Usage: bench/mobile.sh [COUNT]
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
COUNT="${1:-1000}"
WARMUP_SESSIONS="${WARMUP_SESSIONS:-100}"
((WARMUP_SESSIONS <= COUNT)) || WARMUP_SESSIONS="$COUNT"
LOAD="$ROOT_DIR/target/release/imza-mss-load"
LOAD_FILE="$WORK/mss-load.json"

# Two threads a session on the client side, one connection each on both sides.
if (($(ulimit -n) < 4 * COUNT + 1024)); then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if (($(ulimit -n) < 4 * COUNT + 1024)); then
  echo "ulimit -n is $(ulimit -n): too few file descriptors for $COUNT sessions" >&2
  exit 1
fi

echo "== setting up: a mobile CA under the root, one relying party, $COUNT phones (two P-256 certificates each)"
"$LOAD" setup "$IMZA_DATA_DIR" "$COUNT" "$LOAD_FILE" | sed 's/^/  /'

PORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
echo "== imza serve on 127.0.0.1:$PORT"
start_server "$OUT/mobile-serve.log" "$IMZA" serve --listen "127.0.0.1:$PORT"
IMZA_PID=$SERVER_PID
wait_for_port "$PORT" "$IMZA_PID" "$OUT/mobile-serve.log"
echo "  listening; RSS after start: $(awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$IMZA_PID/status")"

# The phones' long polls (20 s) outlive the load generator: the server holds the last ones
# until they time out. A round waits them out before it measures.
LEFTOVER_POLLS_SECONDS=22

# load NAME SESSIONS: one round; the load generator's output to $OUT/NAME.txt (and the screen),
# its figures (with the CPU the server and the load generator used while the sessions ran) to
# $OUT/NAME.json. Sets BUSY. Fails when any session was lost, failed or mixed up.
load() {
  local name="$1" sessions="$2" status=0
  wait_for_idle_machine
  BUSY=""
  builds_running && BUSY="a compile was running"
  {
    echo "# imza-mss-load run $URL --sessions $sessions ($COUNT phones polling)"
    echo "# $(date -u +%FT%TZ), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$LOAD" run "$URL" "$LOAD_FILE" --sessions "$sessions" --json "$OUT/$name.json" \
      --server-pid "$IMZA_PID"
  } >"$OUT/$name.txt" 2>&1 || status=$?
  builds_running && BUSY="a compile was running"
  sed -n '/^[^#]/s/^/  /p' "$OUT/$name.txt"
  if ((status != 0)); then
    echo "$name: imza-mss-load failed (exit $status); see $OUT/$name.txt and $OUT/mobile-serve.log" >&2
    return 1
  fi
  if [[ -n "$BUSY" ]]; then
    echo "  ($BUSY)"
  fi
}

echo "== warm-up: $WARMUP_SESSIONS sessions, $COUNT phones polling"
load mobile-warmup "$WARMUP_SESSIONS"
sleep "$LEFTOVER_POLLS_SECONDS"
echo "== measured: $COUNT concurrent sessions, $COUNT phones polling"
load mobile-load "$COUNT"
IMZA_RSS_KIB="$(peak_rss_kib "$IMZA_PID")"
stop_server "$IMZA_PID"
if grep -qiE 'panicked|database is locked' "$OUT/mobile-serve.log"; then
  echo "the server's log reports trouble:" >&2
  grep -iE 'panicked|database is locked' "$OUT/mobile-serve.log" | head -5 >&2
  exit 1
fi

python3 - "$OUT/mobile-results.md" "$OUT/mobile-load.json" <<PY
import json, sys
f = json.load(open(sys.argv[2]))
rss, cores = $IMZA_RSS_KIB / 1024, $(nproc)
server_cores = "?" if f["server_cores"] is None else f"{f['server_cores']:.2f}"
load_cores = "?" if f["load_cores"] is None else f"{f['load_cores']:.2f}"
busy = "$BUSY"
n = f["sessions"]
rows = [
    f"| {n:,} concurrent signature sessions (POST /mss/v1/signature, long poll to COMPLETE), {f['phones']:,} simulated phones long-polling and signing (P-256), every signature checked by the service and again by the relying party; all released at once | **{f['sessions_per_s']:,.0f} sessions/s** ({n:,} in {f['wall_s']:.2f} s), request to verified signature p50 {f['p50_ms']:,.0f} ms, p95 {f['p95_ms']:,.0f} ms, **p99 {f['p99_ms']:,.0f} ms**, max {f['max_ms']:,.0f} ms; peak RSS {rss:,.0f} MiB; CPU server {server_cores} / load generator {load_cores} cores of {cores} | — (the issue names no peer program) |",
]
ok = f["ok"] == n and f["lost"] == 0 and f["failed"] == 0 and f["mixed_up"] == 0
check = ("met    " if ok else "MISSED ") + f"{n:,} concurrent sessions with none lost or mixed up: {f['ok']:,} OK, {f['lost']} lost, {f['failed']} failed, {f['mixed_up']} mixed up"
out = "\n".join(["| benchmark | imza | peer |", "| --- | --- | --- |", *rows, "", "Target:", "  " + check])
if busy:
    out += "\nWARNING: a cargo/rustc build ran during the measurement; repeat on a quiet machine."
print(out)
open(sys.argv[1], "w").write(out + "\n")
PY
record_conditions "$OUT/mobile-results.md"
