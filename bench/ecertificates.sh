#!/usr/bin/env bash
# E-certificates issued end to end (portal/benches/issue.rs): the statement rendered, sealed at
# PAdES B-LTA (signature time-stamp, DSS, document time-stamp) with imza's TSA and OCSP
# responder on loopback HTTP, registered in a SQLite file; one thread and two, the seal key in
# software and on SoftHSM2; with where the time goes, and pyHanko (.venv) certifying the same
# document at B-LTA with the same TSA and OCSP in the same run. Output:
# bench/out/ecertificates.txt.
# Usage: bench/ecertificates.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo bench -q -p imza-portal --bench issue | tee bench/out/ecertificates.txt
