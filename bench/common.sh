# Shared set-up for the benchmarks: release build, a scratch directory, a root and an issuing
# CA with a P-256 software key.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT_DIR"
cargo build --release -q -p imza -p imza-testdata
IMZA="$ROOT_DIR/target/release/imza"
FIXTURES="$ROOT_DIR/target/release/imza-fixtures"
OUT="$ROOT_DIR/bench/out"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export IMZA_DATA_DIR="$WORK/data"
"$IMZA" ca init --name root --subject "CN=Bench Root,O=imza,C=AZ" --key ec-p256 >/dev/null
"$IMZA" ca init --name citizens --parent root --subject "CN=Bench Citizens,O=imza,C=AZ" --key ec-p256 >/dev/null
