#!/usr/bin/env bash
# Partitioned CRLs at national scale: two CAs of COUNT certificates each (default 10,000,000),
# REVOKED of them revoked (default 1,000,000); one publishes a single complete CRL, the other
# cuts it into SHARDS shards (default 64). Time (hyperfine) and peak RSS (/usr/bin/time -v) of
# `imza ca crl` for each, in the same run, and the CRLs checked: every revoked serial listed
# once, each shard's IDP naming its own URL, openssl verifying a shard's signature.
# Usage: bench/crl-shards.sh [COUNT] [REVOKED] [SHARDS]
source "$(dirname "$0")/common.sh"
COUNT="${1:-10000000}"
REVOKED="${2:-1000000}"
SHARDS="${3:-64}"

"$IMZA" ca init --name sharded --parent root --subject "CN=Bench Sharded,O=imza,C=AZ" \
  --key ec-p256 --crl-shards "$SHARDS" >/dev/null
echo "fixture: $COUNT certificates with $REVOKED revoked, for CA citizens (one CRL) and CA sharded ($SHARDS shards)"
FIXTURE_START=$SECONDS
"$FIXTURES" population "$IMZA_DATA_DIR" citizens "$COUNT" "$REVOKED"
"$FIXTURES" population "$IMZA_DATA_DIR" sharded "$COUNT" "$REVOKED"
echo "fixture built in $((SECONDS - FIXTURE_START)) s; store $(du -h "$IMZA_DATA_DIR/imza.db" | cut -f1)"

ONE_CMD="$IMZA ca crl --ca citizens --der --out $WORK/one.crl"
SHARDS_CMD="$IMZA ca crl --ca sharded --der --out $WORK/shards"
wait_for_idle_machine
hyperfine --runs 3 --warmup 1 --time-unit second --export-markdown "$OUT/crl-shards.md" \
  -n "one CRL ($REVOKED revoked of $COUNT)" "$ONE_CMD" \
  -n "$SHARDS shard CRLs ($REVOKED revoked of $COUNT)" "$SHARDS_CMD"

# Peak RSS and wall time of one more run each.
measure() {
  /usr/bin/time -v "$@" 2>"$WORK/time.txt" >/dev/null
  local kib wall
  kib="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")"
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$WORK/time.txt")"
  echo "$((kib / 1024)) MiB, wall $wall"
}
ONE_PEAK="$(measure $ONE_CMD)"
SHARDS_PEAK="$(measure $SHARDS_CMD)"

# What was signed: the single CRL lists every revoked serial; the shards list each once.
serials() { openssl crl -inform DER -in "$1" -noout -text | sed -n 's/^ *Serial Number: //p'; }
ONE_ENTRIES="$(serials "$WORK/one.crl" | wc -l)"
LARGEST=0
for f in "$WORK"/shards/*.crl; do
  serials "$f" >>"$WORK/shard-serials.txt"
  size="$(stat -c %s "$f")"
  if ((size > LARGEST)); then LARGEST=$size; fi
done
SHARD_ENTRIES="$(wc -l <"$WORK/shard-serials.txt")"
UNIQUE="$(sort -u "$WORK/shard-serials.txt" | wc -l)"
# (Whole outputs captured first: grep -q closing the pipe early fails the pipeline.)
SHARD0="$(openssl crl -inform DER -in "$WORK/shards/0.crl" -noout -text)"
grep -q "URI:http://127.0.0.1:8080/crl/sharded/0.crl" <<<"$SHARD0" ||
  { echo "shard 0's IDP does not name its URL" >&2; exit 1; }
"$IMZA" ca cert --ca sharded >"$WORK/sharded.pem"
VERIFIED="$(openssl crl -inform DER -in "$WORK/shards/0.crl" -noout -CAfile "$WORK/sharded.pem" 2>&1)"
grep -q "verify OK" <<<"$VERIFIED" || { echo "shard 0's signature does not verify" >&2; exit 1; }

python3 - "$OUT/crl-shards.md" "$ONE_PEAK" "$SHARDS_PEAK" "$ONE_ENTRIES" "$SHARD_ENTRIES" "$UNIQUE" \
  "$(stat -c %s "$WORK/one.crl")" "$LARGEST" "$SHARDS" <<'PY' | tee "$OUT/crl-shards-summary.txt"
import sys
path, one_peak, shards_peak, one_entries, shard_entries, unique, one_size, largest, shards = sys.argv[1:]
means = {}
for l in open(path):
    if l.startswith("| `"):
        cells = [c.strip() for c in l.strip().strip("|").split("|")]
        means[cells[0]] = (float(cells[1].split()[0]), cells[1])
(one_name, (one, one_cell)), (shards_name, (sh, sh_cell)) = list(means.items())
print(f"{one_name}: {one_cell} s, peak RSS {one_peak}; {one_entries} entries, {int(one_size)/2**20:.1f} MiB")
print(f"{shards_name}: {sh_cell} s, peak RSS {shards_peak}; {shard_entries} entries in all ({unique} distinct), largest shard {int(largest)/2**20:.2f} MiB")
print(f"all {shards} shards vs one CRL: {one/sh:.2f}x the speed")
PY
record_conditions "$OUT/crl-shards-summary.txt"
