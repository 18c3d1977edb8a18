#!/usr/bin/env bash
# CRL generation for a CA with COUNT revoked certificates (default 1,000,000): time and peak
# memory of `imza ca crl`, side by side with `openssl ca -gencrl` over an index of the same
# serials, signed with the same P-256 key.
# Usage: bench/crl.sh [COUNT]
source "$(dirname "$0")/common.sh"
N="${1:-1000000}"
openssl_ca_over_citizens <<CNF
crlnumber = \$dir/crlnumber
default_crl_days = 1
crl_extensions = crlext
[ crlext ]
authorityKeyIdentifier = keyid
CNF
"$FIXTURES" revoked "$IMZA_DATA_DIR" citizens "$N" "$WORK/ossl/index.txt"
echo 01 > "$WORK/ossl/crlnumber"

IMZA_CMD="$IMZA ca crl --ca citizens --out $WORK/imza.crl"
OSSL_CMD="openssl ca -gencrl -config $WORK/ossl/openssl.cnf -out $WORK/openssl.crl"
hyperfine --runs 3 --warmup 1 --time-unit second --export-markdown "$OUT/crl.md" -n "imza ca crl ($N revoked)" "$IMZA_CMD" -n "openssl ca -gencrl ($N revoked)" "$OSSL_CMD"

peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
IMZA_KB=$(peak $IMZA_CMD)
OSSL_KB=$(peak $OSSL_CMD)
ENTRIES=$(openssl crl -in "$WORK/imza.crl" -noout -text | grep -c "Serial Number:")
OSSL_ENTRIES=$(openssl crl -in "$WORK/openssl.crl" -noout -text | grep -c "Serial Number:")
openssl crl -in "$WORK/imza.crl" -noout -CAfile "$WORK/ossl/ca.pem" -verify 2>&1 | head -1 >/dev/null || true
python3 - "$OUT/crl.md" "$IMZA_KB" "$OSSL_KB" "$ENTRIES" "$OSSL_ENTRIES" <<'PY' | tee "$OUT/crl-summary.txt"
import sys
path, imza_kb, ossl_kb, entries, ossl_entries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
means = {}
for l in open(path):
    if l.startswith("| `"):
        cells = [c.strip() for c in l.strip().strip("|").split("|")]
        means[cells[0]] = float(cells[1].split()[0])
(imza_name, imza), (ossl_name, ossl) = list(means.items())
print(f"{imza_name}: {imza:.2f} s, peak RSS {imza_kb/1024:.0f} MiB, {entries} entries")
print(f"{ossl_name}: {ossl:.2f} s, peak RSS {ossl_kb/1024:.0f} MiB, {ossl_entries} entries")
print(f"ratio openssl/imza time: {ossl/imza:.2f}x")
PY
