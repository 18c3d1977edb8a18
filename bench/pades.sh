#!/usr/bin/env bash
# PAdES over a large document, each run a new process under `/usr/bin/time -v`: a 100 MB PDF
# (one 100 MB stream, generated here) signed with `imza sign --pades` at B-B and at B-T (the
# time-stamp from `imza serve`'s TSA on loopback), and each signed file checked with
# `imza verify` (valid required, revocation from the CAs' CRLs given with --crl); beside them
# `imza verify` of a 100 kB signed PDF, the process's baseline. Reported per run: peak RSS
# ("Maximum resident set size") and wall-clock time. Target: the 100 MB document signed and
# verified with a peak RSS under 64 MiB above the size of one read buffer.
#
# Peer: pyHanko (`.venv/bin/pyhanko`), the same key and certificates as PEM: `sign addsig`
# of the same 100 MB PDF, and `sign validate` of imza's signed file (--no-revocation-check:
# pyHanko takes no CRL files, and the certificates' CRL URL is not served here).
#
# The B-LTA verification throughput is in process: `cargo bench -p imza-signer --bench pades`
# (bench/verify.sh runs it). Results: bench/out/pades.txt.
# Usage: bench/pades.sh [SIZE_MB] (default 100)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
SIZE_MB="${1:-100}"
PKI="$WORK/pki"
PYHANKO="$ROOT_DIR/.venv/bin/pyhanko"
RESULTS="$OUT/pades.txt"
mkdir -p "$PKI"

echo "== setting up: root and citizens CAs (P-256), a signer (P-256, citizen-sign), CRLs, a TSA"
"$IMZA" ca cert --ca root >"$PKI/root.pem"
"$IMZA" ca cert --ca citizens >"$PKI/ca.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/signer.key" 2>/dev/null
openssl req -new -key "$PKI/signer.key" -subj "/CN=Bench Signer/GN=Bench/SN=Signer/serialNumber=PNOAZ-0000001/C=AZ" \
  -out "$PKI/signer.csr"
"$IMZA" ca issue --ca citizens --profile citizen-sign --csr "$PKI/signer.csr" --out "$PKI/signer.pem" >/dev/null
"$IMZA" ca crl --ca root --out "$PKI/root.crl" >/dev/null
"$IMZA" ca crl --ca citizens --out "$PKI/citizens.crl" >/dev/null
"$IMZA" tsa init --ca citizens >/dev/null

# make_pdf PATH BYTES: a one-page PDF with a filler stream of BYTES bytes, written as it goes
# (the generator never holds the document), with a correct cross-reference table.
make_pdf() {
  python3 - "$1" "$2" <<'PDF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
content = b"BT /F1 12 Tf 72 770 Td (A large document for imza's PAdES benchmark) Tj ET\n"
objects = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
    b" /Resources << /Font << /F1 5 0 R >> >> >>",
    b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    None,  # the filler, streamed
]
chunk = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(1 << 20))
offsets = []
with open(path, "wb") as out:
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number)
        if body is None:
            out.write(b"<< /Length %d >>\nstream\n" % size)
            left = size
            while left:
                piece = chunk[: min(left, len(chunk))]
                out.write(piece)
                left -= len(piece)
            out.write(b"\nendstream")
        else:
            out.write(body)
        out.write(b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
PDF
}

echo "== generating the documents: ${SIZE_MB} MB and 100 kB"
make_pdf "$WORK/large.pdf" $((SIZE_MB * 1000 * 1000))
make_pdf "$WORK/small.pdf" 100000
LARGE_BYTES="$(stat -c %s "$WORK/large.pdf")"

PORT="$(free_port)"
echo "== imza serve (its TSA) on 127.0.0.1:$PORT"
start_server "$OUT/pades-imza-serve.log" "$IMZA" serve --listen "127.0.0.1:$PORT"
wait_for_port "$PORT" "$SERVER_PID" "$OUT/pades-imza-serve.log"
TSA_URL="http://127.0.0.1:$PORT/tsa"

# timed NAME COMMAND...: COMMAND under /usr/bin/time -v (its report in $OUT/pades-SLUG.time,
# its output in $OUT/pades-SLUG.out, SLUG the name's letters and digits); fails when COMMAND
# does. Sets RSS_MIB, WALL_S and RUN_OUT (the output's file), and prints them.
timed() {
  local name="$1" slug
  shift
  slug="$(tr -cs 'a-zA-Z0-9' '-' <<<"$name" | sed 's/-*$//')"
  RUN_OUT="$OUT/pades-$slug.out"
  wait_for_idle_machine
  if ! /usr/bin/time -v -o "$OUT/pades-$slug.time" "$@" >"$RUN_OUT" 2>&1; then
    echo "$name failed: $*" >&2
    tail -20 "$RUN_OUT" >&2
    return 1
  fi
  RSS_MIB="$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$OUT/pades-$slug.time")"
  # h:mm:ss or m:ss.ss
  WALL_S="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$OUT/pades-$slug.time")"
  BUSY=""
  builds_running && BUSY="  (a compile was running)"
  printf '  %-44s peak RSS %7s MiB  wall %7s s%s\n' "$name" "$RSS_MIB" "$WALL_S" "$BUSY" | tee -a "$RESULTS"
}

# imza_verify NAME FILE: `imza verify FILE`, required to say TOTAL_PASSED for every signature.
imza_verify() {
  timed "$1" "$IMZA" verify "$2" --trust "$PKI/root.pem" --crl "$PKI/root.crl" --crl "$PKI/citizens.crl"
  if grep -q 'TOTAL_FAILED\|INDETERMINATE' "$RUN_OUT" || ! grep -q 'TOTAL_PASSED' "$RUN_OUT"; then
    echo "$1: imza verify did not pass:" >&2
    cat "$RUN_OUT" >&2
    return 1
  fi
}

SIGN=(sign --pades --key "$PKI/signer.key" --cert "$PKI/signer.pem" --chain "$PKI/ca.pem")
{
  echo "# bench/pades.sh $(date -u +%FT%TZ), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# documents: $LARGE_BYTES bytes (one ${SIZE_MB} MB stream) and $(stat -c %s "$WORK/small.pdf") bytes"
} | tee "$RESULTS"
echo "== imza (each a new process; /usr/bin/time -v)"
timed "imza sign --pades B-B, ${SIZE_MB} MB" "$IMZA" "${SIGN[@]}" --in "$WORK/large.pdf" --out "$WORK/large-bb.pdf"
timed "imza sign --pades B-T (TSA on loopback), ${SIZE_MB} MB" "$IMZA" "${SIGN[@]}" --level T --tsa "$TSA_URL" \
  --in "$WORK/large.pdf" --out "$WORK/large-bt.pdf"
imza_verify "imza verify B-B, ${SIZE_MB} MB" "$WORK/large-bb.pdf"
imza_verify "imza verify B-T, ${SIZE_MB} MB" "$WORK/large-bt.pdf"
"$IMZA" "${SIGN[@]}" --in "$WORK/small.pdf" --out "$WORK/small-bb.pdf" >/dev/null
imza_verify "imza verify B-B, 100 kB (baseline)" "$WORK/small-bb.pdf"

echo "== pyHanko $("$PYHANKO" --version 2>/dev/null | sed 's/^pyHanko, version //')"
export PYTHONWARNINGS=ignore
timed "pyhanko sign addsig (B-B), ${SIZE_MB} MB" "$PYHANKO" sign addsig --field Signature1 pemder \
  --key "$PKI/signer.key" --cert "$PKI/signer.pem" --chain "$PKI/ca.pem" --no-pass \
  "$WORK/large.pdf" "$WORK/large-pyhanko.pdf"
# pyhanko_validate NAME FILE: `pyhanko sign validate`, required to say INTACT:TRUSTED.
pyhanko_validate() {
  timed "$1" "$PYHANKO" sign validate --no-revocation-check --trust "$PKI/root.pem" --trust-replace "$2"
  grep -q 'INTACT:TRUSTED' "$RUN_OUT" || {
    echo "$1: pyHanko does not find the signature INTACT:TRUSTED:" >&2
    cat "$RUN_OUT" >&2
    return 1
  }
}
pyhanko_validate "pyhanko sign validate of imza's B-B, ${SIZE_MB} MB" "$WORK/large-bb.pdf"
pyhanko_validate "pyhanko sign validate, 100 kB (baseline)" "$WORK/small-bb.pdf"
# And imza on pyHanko's signature, for the record (not timed against anything).
imza_verify "imza verify of pyHanko's B-B, ${SIZE_MB} MB" "$WORK/large-pyhanko.pdf"

{
  echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr); the file in the page cache (not counted in RSS)"
  echo "imza $(git -C "$ROOT_DIR" rev-parse --short HEAD)$(git -C "$ROOT_DIR" diff --quiet HEAD -- . 2>/dev/null || echo ' (work tree modified)'), $(openssl version), pyHanko $("$PYHANKO" --version 2>/dev/null | sed 's/^pyHanko, version //')"
} | tee -a "$RESULTS"
