#!/usr/bin/env bash
# Runs every fuzz target (or those named in FUZZ_TARGETS) for FUZZ_SECONDS each, one after
# another, on the corpora `make fuzz-seeds` made; prints executions and exec/s per target and
# fails if any target crashed (the crashing input is kept in fuzz/artifacts/<target>/).
# Stable Rust: cargo-fuzz needs -Z flags, which RUSTC_BOOTSTRAP=1 lets stable accept.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
mkdir -p logs

# One build for all targets (release, debug assertions and overflow checks on).
cargo fuzz build -s "$sanitizer" || exit 2

failed=()
summary=()
for target in $targets; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="logs/$target.log"
    echo "fuzz: $target for ${seconds}s"
    # -rss_limit_mb: a target that needs more than 2 GiB for one input is a finding too;
    # -timeout: one input taking over 10 s is a hang. -max_len 64 KiB covers every bound the
    # parsers set for a request; larger inputs come from the seeds.
    cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
    [ -n "$took" ] || took="$seconds"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    corpus_size="$(ls "corpus/$target" | wc -l)"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        verdict="FAILED: $(grep -m1 -E '^(thread|==[0-9]+==ERROR)' "$log" || echo "exit $status") (see fuzz/$log, fuzz/artifacts/$target/)"
    else
        verdict="no crash"
    fi
    line="$(printf '%-14s %10s runs %4ss %7s exec/s  corpus %5s  %s' "$target" "${runs:-?}" "$took" "${rate:-?}" "$corpus_size" "$verdict")"
    echo "fuzz: $line"
    summary+=("$line")
done

echo
echo "target         executions   secs  exec/s           corpus  result"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: failed (a crash, a hang or an error): ${failed[*]}" >&2
    exit 1
fi
