#!/usr/bin/env bash
# Runs every test: formatting and lints, then the whole workspace's tests, which drive real
# SoftHSM2 tokens, a real SQLite file, and the independent verifiers openssl and pkilint.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --release
