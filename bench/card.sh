#!/usr/bin/env bash
# One chip-card signature end to end: `imza sign --card` (a CAdES B-B signature of a 100 kB
# document) through OpenSC's PKCS#11 module → pcscd → vpcd → the project's PIV card emulator
# (imza-testdata), each run a new process: module load, card detection, certificate read, PIN
# (slot 9C wants it before every signature), signature, CMS written. Peer in the same run, on
# the same card: OpenSC's own `pkcs11-tool --sign` of the document's SHA-256 digest with the
# same key (no CMS, no certificate handling).
#
# The card is enrolled with imza first (key generated on the card, CSR signed by it); one
# signature of each tool is checked before timing (imza verify TOTAL_PASSED, openssl cms
# -verify; openssl dgst -verify for pkcs11-tool's).
# Usage: bench/card.sh [RUNS]   (default 30)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
RUNS="${1:-30}"
CARD="$WORK/card"
mkdir -p "$CARD"
export CARD_PIN=123456

echo "== starting pcscd with the virtual readers and inserting a PIV card (imza-card-lab)"
coproc LAB { "$ROOT_DIR/target/release/imza-card-lab" --state "$CARD/state.json" 2>"$OUT/card-lab.log"; }
LAB_PID=$LAB_PID
SERVER_PIDS+=("$LAB_PID")
if ! read -r -t 60 LAB_LINE <&"${LAB[0]}"; then
  echo "imza-card-lab did not start; its log:" >&2
  cat "$OUT/card-lab.log" >&2
  exit 1
fi
lab_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$LAB_LINE" "$1"; }
READER="$(lab_field reader)"
MODULE="$(lab_field pkcs11_module)"
OPENSC_CONF="$(lab_field opensc_conf)"
export OPENSC_CONF
echo "  reader: $READER, ATR $(lab_field atr)"

echo "== enrolling the card: P-256 key generated on it, certificate from the citizens CA"
"$IMZA" card enroll --reader "$READER" --ca citizens --profile citizen-sign \
  --subject "CN=Bench Citizen,SN=Citizen,GN=Bench,SERIALNUMBER=PNOAZ-BENCH01,C=AZ" \
  --pin-env CARD_PIN --key ec-p256 --out "$CARD/citizen.pem"
"$IMZA" ca cert --ca citizens >"$CARD/citizens.pem"
"$IMZA" ca cert --ca root >"$CARD/root.pem"
head -c 100000 /dev/urandom >"$CARD/doc"
openssl dgst -sha256 -binary "$CARD/doc" >"$CARD/doc.sha256"
ID="$("$IMZA" card list --json | python3 -c '
import json, sys
listing = json.load(sys.stdin)
print(next(c["id"] for t in listing["tokens"] for c in t["certificates"] if "BENCH01" in c["subject"]))')"

IMZA_SIGN="$IMZA sign --card --reader '$READER' --pin-env CARD_PIN --in $CARD/doc --out $CARD/out.p7s --chain $CARD/citizens.pem"
PKCS11_SIGN="pkcs11-tool --module $MODULE --login --pin $CARD_PIN --sign --mechanism ECDSA --id $ID --signature-format openssl -i $CARD/doc.sha256 -o $CARD/sig.der"

echo "== checking one signature of each"
eval "$IMZA_SIGN" >/dev/null
"$IMZA" ca crl --ca root --out "$CARD/root.crl" >/dev/null
"$IMZA" ca crl --ca citizens --out "$CARD/citizens.crl" >/dev/null
"$IMZA" verify "$CARD/out.p7s" --content "$CARD/doc" --trust "$CARD/root.pem" \
  --crl "$CARD/root.crl" --crl "$CARD/citizens.crl" | grep -q TOTAL_PASSED
openssl cms -verify -binary -inform DER -in "$CARD/out.p7s" -content "$CARD/doc" \
  -CAfile "$CARD/root.pem" -purpose any -out /dev/null 2>&1 | grep -q "Verification successful"
echo "  imza sign --card: imza verify TOTAL_PASSED, openssl cms -verify: Verification successful"
eval "$PKCS11_SIGN" >/dev/null 2>&1
openssl x509 -in "$CARD/citizen.pem" -pubkey -noout >"$CARD/citizen.pub"
openssl dgst -sha256 -verify "$CARD/citizen.pub" -signature "$CARD/sig.der" "$CARD/doc" | grep -q "Verified OK"
echo "  pkcs11-tool --sign: openssl dgst -verify: Verified OK"

wait_for_idle_machine
hyperfine --warmup 3 --runs "$RUNS" --time-unit millisecond \
  --export-markdown "$OUT/card.md" --export-json "$OUT/card.json" \
  --prepare "rm -f $CARD/out.p7s" -n "imza sign --card (CAdES B-B, 100 kB)" "$IMZA_SIGN" \
  --prepare "rm -f $CARD/sig.der" -n "pkcs11-tool --sign (ECDSA on a digest)" "$PKCS11_SIGN"

python3 - "$OUT/card.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    times = sorted(r["times"])
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{r['command']}: mean {r['mean'] * 1000:.1f} ms, median {r['median'] * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, min {r['min'] * 1000:.1f} ms ({len(times)} runs)")
PY
record_conditions "$OUT/card.md"
