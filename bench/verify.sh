#!/usr/bin/env bash
# Path validation and CAdES B-T verification throughput, in process on one thread (cargo's
# bench profile): validation/benches/validation.rs (3-certificate chains with CRLs, hostile
# pools) and signer/benches/verify.rs (a stream of distinct B-T signatures). Figures are per
# core (the thread's CPU time) with wall-clock beside them. Output: bench/out/validation.txt,
# bench/out/verify.txt.
#
# No peer is run here (the issue names none for these targets); `openssl verify` over many
# leaves in one process would be the natural one for path validation.
# Usage: bench/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo bench -q -p imza-validation --bench validation | tee bench/out/validation.txt
cargo bench -q -p imza-signer --bench verify | tee bench/out/verify.txt
