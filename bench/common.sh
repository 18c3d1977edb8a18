# shellcheck shell=bash
# Shared set-up for the benchmarks: release build, a scratch directory, a root and an issuing
# CA with a P-256 software key.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT_DIR"
cargo build --release -q -p imza -p imza-testdata
IMZA="$ROOT_DIR/target/release/imza"
# shellcheck disable=SC2034 # used by the scripts that source this file
FIXTURES="$ROOT_DIR/target/release/imza-fixtures"
OUT="$ROOT_DIR/bench/out"
mkdir -p "$OUT"
WORK="$(mktemp -d)"

# Servers a benchmark starts (start_server) are stopped on exit, whatever the exit: success,
# a failed command under `set -e`, Ctrl-C.
SERVER_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    stop_server "$pid"
  done
  if [[ -n "${PG_DIR:-}" ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export IMZA_DATA_DIR="$WORK/data"
"$IMZA" ca init --name root --subject "CN=Bench Root,O=imza,C=AZ" --key ec-p256 >/dev/null
"$IMZA" ca init --name citizens --parent root --subject "CN=Bench Citizens,O=imza,C=AZ" --key ec-p256 >/dev/null

# --- helpers for the HTTP benchmarks (bench/ocsp.sh, bench/tsa.sh) ---

# wrk settings, the same for imza and its peer.
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_DURATION="${WRK_DURATION:-15s}"
WRK_WARMUP="${WRK_WARMUP:-3s}"
# How long to wait for other engineers' builds to finish before measuring anyway.
IDLE_WAIT_SECONDS="${IDLE_WAIT_SECONDS:-900}"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server LOG COMMAND...: starts COMMAND in the background, output to LOG; sets
# SERVER_PID. (Not under setsid: `openssl ocsp -multi` makes its own process group and exits
# when it cannot.)
start_server() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
}

# listening PORT: whether a socket listens on TCP PORT. Read from /proc rather than tried
# with a connection: `openssl ocsp -port` never recovers from a connection closed before its
# request (see bench/post.lua).
listening() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v port="$hex" '$2 ~ ":" port "$" && $4 == "0A" { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6
}

# wait_for_port PORT PID LOG: until PORT listens; fails if PID dies or 60 s pass.
wait_for_port() {
  local port="$1" pid="$2" log="$3" i
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server exited before listening on $port; its log ($log):" >&2
      tail -20 "$log" >&2
      return 1
    fi
    if listening "$port"; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on $port after 60 s; log: $log" >&2
  return 1
}

# stop_server PID: SIGTERM to PID and to its process group (`openssl ocsp -multi` makes one
# and only leaves its wait for children when one of them dies), SIGKILL after 10 s.
stop_server() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local -a still=()
  for i in "${SERVER_PIDS[@]}"; do
    [[ "$i" == "$pid" ]] || still+=("$i")
  done
  SERVER_PIDS=("${still[@]}")
}

# CPU clock ticks (user + system) used so far by PID and, when it leads a process group (as
# `openssl ocsp -multi` does), by every process of that group.
cpu_ticks() {
  local -a pids
  mapfile -t pids < <({ echo "$1"; pgrep -g "$1" || true; } | sort -u)
  local total=0 pid stat
  local -a fields
  for pid in "${pids[@]}"; do
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    # Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    read -r -a fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# Peak resident set size (VmHWM) of PID, in KiB.
peak_rss_kib() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

builds_running() {
  command -v pgrep >/dev/null || return 1
  # (pgrep refuses patterns longer than a process name's 15 characters.)
  pgrep -x 'cargo|rustc' >/dev/null || pgrep -x clippy-driver >/dev/null
}

# Waits (at most IDLE_WAIT_SECONDS) until no cargo/rustc runs on the machine: wrk and the
# server share its cores, and a compile beside them would be measured too.
wait_for_idle_machine() {
  local waited=0
  while builds_running && ((waited < IDLE_WAIT_SECONDS)); do
    if ((waited % 60 == 0)); then
      echo "  waiting for running cargo/rustc to finish before measuring (${waited} s so far)"
    fi
    sleep 5
    waited=$((waited + 5))
  done
  if builds_running; then
    echo "  WARNING: cargo/rustc still running after ${IDLE_WAIT_SECONDS} s; measuring anyway" >&2
  fi
}

# run_wrk NAME URL BODY_FILE CONTENT_TYPE: a warm-up (none when WRK_WARMUP=0), then the
# measured run, both with the same settings, against the server SERVER_PID; raw output to
# $OUT/NAME.txt. Sets RPS, P50_MS, P99_MS, NON2XX, ERRORS, SERVER_CORES and WRK_CORES (CPU
# used during the run) and BUSY (non-empty when a compile ran beside the measurement). Fails
# when no request was answered or any was answered with an HTTP error. For a fresh nonce per
# request set WRK_NONCE (see bench/post.lua); for one more request header, WRK_EXTRA_HEADER.
run_wrk() {
  local name="$1" url="$2" body="$3" type="$4" result
  local -a settings=(-c "$WRK_CONNECTIONS" -t "$WRK_THREADS" --latency -s "$ROOT_DIR/bench/post.lua")
  if [[ -n "${WRK_EXTRA_HEADER:-}" ]]; then
    settings+=(-H "$WRK_EXTRA_HEADER")
  fi
  wait_for_idle_machine
  if [[ "$WRK_WARMUP" != 0 ]]; then
    wrk "${settings[@]}" -d "$WRK_WARMUP" "$url" -- "$body" "$type" >/dev/null
  fi
  BUSY=""
  builds_running && BUSY="a compile was running"
  local server_before
  server_before="$(cpu_ticks "$SERVER_PID")"
  {
    echo "# wrk ${settings[*]} -d $WRK_DURATION $url -- $body $type${WRK_NONCE:+ (WRK_NONCE=$WRK_NONCE)}"
    echo "# $(date -u +%FT%TZ), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -o "$WORK/wrk-time" -f '%e %U %S' \
      wrk "${settings[@]}" -d "$WRK_DURATION" "$url" -- "$body" "$type"
  } >"$OUT/$name.txt"
  builds_running && BUSY="a compile was running"
  # CPU used during the run, in cores: the server (all its processes) and wrk.
  local elapsed user system
  read -r elapsed user system <"$WORK/wrk-time"
  SERVER_CORES="$(awk -v t="$(($(cpu_ticks "$SERVER_PID") - server_before))" -v hz="$(getconf CLK_TCK)" -v e="$elapsed" 'BEGIN { printf "%.2f", t / hz / e }')"
  WRK_CORES="$(awk -v u="$user" -v s="$system" -v e="$elapsed" 'BEGIN { printf "%.2f", (u + s) / e }')"
  echo "# CPU during the run: server ${SERVER_CORES} cores, wrk ${WRK_CORES} cores (of $(nproc))" >>"$OUT/$name.txt"
  result="$(grep '^RESULT ' "$OUT/$name.txt")"
  RPS="$(field rps "$result")"
  P50_MS="$(field p50_ms "$result")"
  P99_MS="$(field p99_ms "$result")"
  NON2XX="$(field non2xx "$result")"
  ERRORS=$(($(field connect_errors "$result") + $(field read_errors "$result") + $(field write_errors "$result") + $(field timeouts "$result")))
  if [[ "$(field requests "$result")" == 0 || "$NON2XX" != 0 ]]; then
    echo "$name: $(field requests "$result") requests answered, $NON2XX with an HTTP error; see $OUT/$name.txt" >&2
    return 1
  fi
  printf '  %-26s %8.0f responses/s  p50 %6.2f ms  p99 %6.2f ms  errors %s/%s  CPU server %s wrk %s%s\n' \
    "$name" "$RPS" "$P50_MS" "$P99_MS" "$NON2XX" "$ERRORS" "$SERVER_CORES" "$WRK_CORES" "${BUSY:+  ($BUSY)}"
}

# field KEY "k=v k=v ...": the value of KEY.
field() {
  tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

# One line on the machine, for the results.
machine_conditions() {
  echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr), wrk and the server on the same cores over loopback"
}

# An `openssl ca` directory ($WORK/ossl) over the citizens CA's certificate and P-256 key, so
# the peer signs with exactly imza's key. Writes openssl.cnf: the shared [bench] section, then
# the lines given on stdin (the benchmark's own settings and sections).
openssl_ca_over_citizens() {
  mkdir -p "$WORK/ossl"
  "$IMZA" ca cert --ca citizens >"$WORK/ossl/ca.pem"
  cp "$IMZA_DATA_DIR/keys/citizens.key.pem" "$WORK/ossl/ca.key"
  {
    cat <<CNF
[ ca ]
default_ca = bench
[ bench ]
dir = $WORK/ossl
database = \$dir/index.txt
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
CNF
    cat
  } >"$WORK/ossl/openssl.cnf"
}

# Appends the machine's conditions and the versions measured to a results file (and prints them).
record_conditions() {
  {
    echo "machine: $(machine_conditions)"
    echo "imza $(git -C "$ROOT_DIR" rev-parse --short HEAD)$(git -C "$ROOT_DIR" diff --quiet HEAD -- . 2>/dev/null || echo ' (work tree modified)'), $(openssl version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  } | tee -a "$1"
}

# --- a PostgreSQL cluster of the run's own (bench/national.sh, bench/portal.sh), stopped on exit ---

as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_bench_postgres: initdb and start a cluster (fsync on, defaults, 300 connections) on a
# free port; sets PG_BIN, PG_DIR, PG_PORT, PG_PID and exports PGPASSWORD (login `imza`).
start_bench_postgres() {
  PG_BIN="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -1)"
  # Its own directory, not under $WORK (0700 root): the server runs as `postgres` when we are root.
  PG_DIR="$(mktemp -d /tmp/imza-bench-pg.XXXXXX)"
  [[ "$(id -u)" == 0 ]] && chown postgres "$PG_DIR"
  PGPASSWORD="$(openssl rand -hex 16)"
  export PGPASSWORD
  echo "$PGPASSWORD" >"$PG_DIR/pw"
  [[ "$(id -u)" == 0 ]] && chown postgres "$PG_DIR/pw"
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U imza --pwfile "$PG_DIR/pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
  rm -f "$PG_DIR/pw"
  PG_PORT="$(free_port)"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  PG_PID="$(head -1 "$PG_DIR/data/postmaster.pid")"
}

# pg_ticks: CPU ticks used so far by the server and its backends.
pg_ticks() {
  local total=0 pid
  local -a fields
  for pid in "$PG_PID" $(pgrep -P "$PG_PID"); do
    read -r -a fields <<<"$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# pg_run_wrk NAME ARGS...: run_wrk, and PG_CORES the cores PostgreSQL used meanwhile.
pg_run_wrk() {
  local before start
  before="$(pg_ticks)"
  start="$(date +%s.%N)"
  run_wrk "$@"
  PG_CORES="$(awk -v t="$(($(pg_ticks) - before))" -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$(date +%s.%N)" \
    'BEGIN { printf "%.2f", t / hz / (e - s) }')"
  echo "    PostgreSQL meanwhile (warm-up included): $PG_CORES cores"
}
