#!/usr/bin/env bash
# Issuance throughput from CSRs with a P-256 software CA key, every certificate durably
# committed (SQLite WAL, synchronous=FULL, one commit per 500) before its file is written.
# Peer in the same run: `openssl ca -batch -infiles` over the same CSRs (no database commit
# beyond its index.txt).
# Usage: bench/issue.sh [COUNT]   (default 20000)
source "$(dirname "$0")/common.sh"
N="${1:-20000}"
"$FIXTURES" csrs "$N" "$WORK/csrs"

# openssl ca configuration over the same CA key and certificate.
openssl_ca_over_citizens <<CNF
new_certs_dir = \$dir/newcerts
rand_serial = yes
default_days = 1095
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = leaf
email_in_dn = no
utf8 = yes
string_mask = utf8only
[ anything ]
countryName = optional
serialNumber = optional
surname = optional
givenName = optional
commonName = supplied
[ leaf ]
keyUsage = critical, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 0.4.0.194112.1.2
CNF
mkdir -p "$WORK/ossl/newcerts"
touch "$WORK/ossl/index.txt"

hyperfine --runs 3 --time-unit second --export-markdown "$OUT/issue.md" \
  --prepare "rm -rf $WORK/out-imza" \
  -n "imza ca issue --csr-dir ($N CSRs)" \
  "$IMZA ca issue --ca citizens --profile citizen-sign --csr-dir $WORK/csrs --out-dir $WORK/out-imza" \
  --prepare "rm -rf $WORK/ossl/newcerts/* $WORK/out-ossl.pem; : > $WORK/ossl/index.txt" \
  -n "openssl ca -batch -infiles ($N CSRs)" \
  "openssl ca -batch -notext -config $WORK/ossl/openssl.cnf -out $WORK/out-ossl.pem -infiles $WORK/csrs/*.csr 2>/dev/null"

python3 - "$OUT/issue.md" "$N" <<'PY'
import re, sys
path, n = sys.argv[1], int(sys.argv[2])
rows = [l for l in open(path) if l.startswith("| `")]
for row in rows:
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    mean = float(cells[1].split()[0])
    print(f"{cells[0]}: {n / mean:,.0f} certificates/s (mean {mean:.2f} s)")
PY
