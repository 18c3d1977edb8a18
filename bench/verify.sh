#!/usr/bin/env bash
# Path validation, CAdES B-T and PAdES B-LTA verification and card-login throughput, in
# process (cargo's bench profile): validation/benches/validation.rs (3-certificate chains with
# CRLs, hostile pools), signer/benches/verify.rs (a stream of distinct B-T signatures),
# signer/benches/pades.rs (a 100 kB PDF at B-LTA verified from its DSS, one and two threads)
# and portal/benches/card_login.rs (Web eID tokens of 64 cards, OCSP answers cached, one and
# two threads). Figures are per core (the thread's CPU time) with wall-clock beside them.
# Output: bench/out/validation.txt, bench/out/verify.txt, bench/out/pades-lta.txt,
# bench/out/card-login.txt. PAdES of a 100 MB document (peak RSS, imza and pyHanko as
# processes) is bench/pades.sh.
#
# No peer is run here (the issue names none for these targets); `openssl verify` over many
# leaves in one process would be the natural one for path validation.
# Usage: bench/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo bench -q -p imza-validation --bench validation | tee bench/out/validation.txt
cargo bench -q -p imza-signer --bench verify | tee bench/out/verify.txt
cargo bench -q -p imza-signer --bench pades | tee bench/out/pades-lta.txt
cargo bench -q -p imza-portal --bench card_login | tee bench/out/card-login.txt
