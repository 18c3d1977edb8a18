#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/) from the project's test vectors
# (../shared/testsuites: PKITS certificates and CRLs, OCSP and RFC 3161 vectors) and from
# inputs made here with openssl (CSR, OCSP request, CMS/CAdES attached and detached, a signed
# PDF, PEM) or written out (JSON bodies, PIV card answers, portal tokens). Idempotent: files
# are named by content, so running it again adds nothing twice. Nothing here is committed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus"
vectors="${FUZZ_VECTORS:-$here/../../shared/testsuites}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# seed TARGET FILE...: copies each file into TARGET's corpus under its SHA-1.
seed() {
    local target="$1"
    shift
    mkdir -p "$corpus/$target"
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        cp "$f" "$corpus/$target/$(sha1sum "$f" | cut -c1-40)"
    done
}

# --- test vectors, when the shared test suites are there (a few per target: small corpora) ---
if [ -d "$vectors" ]; then
    seed certificate $(ls "$vectors"/pkits/certs/*.crt | head -40)
    seed crl $(ls "$vectors"/pkits/crls/*.crl | head -40)
    seed ocsp_response "$vectors"/vectors/ocsp/openssl/*.ors
    for f in "$vectors"/vectors/ocsp/pyca/*.der; do
        case "$(basename "$f")" in
            req*) seed ocsp_request "$f" ;;
            *) seed ocsp_response "$f" ;;
        esac
    done
    seed tsa_request $(find "$vectors/vectors/tsp" -name '*request*.der')
    seed tsa_response $(find "$vectors/vectors/tsp" -name '*.tsr')
    seed pem $(find "$vectors/vectors" -name '*.pem' | head -10)
else
    echo "fuzz-seeds: no test vectors at $vectors; seeding from generated inputs only" >&2
fi

# --- made with openssl: a small CA, a signer, a CSR, an OCSP request, CMS and a PDF ---
cd "$work"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 3650 -subj "/CN=Fuzz Root/O=imza fuzz" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -newkey rsa:2048 -nodes -keyout signer.key -out signer.csr.pem \
    -subj "/CN=Fuzz Signer/serialNumber=12345678901/C=AZ" \
    -addext "subjectAltName=email:signer@example.com,DNS:signer.example"
ossl req -in signer.csr.pem -outform DER -out signer.csr.der
ossl x509 -req -in signer.csr.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -out signer.pem -extfile <(printf 'keyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=clientAuth,emailProtection\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:1/ocsp\ncrlDistributionPoints=URI:http://127.0.0.1:1/ca.crl\n')
ossl x509 -in signer.pem -outform DER -out signer.der
ossl x509 -in ca.pem -outform DER -out ca.der
printf 'V\t300101000000Z\t\t01\tunknown\t/CN=Revoked\n' > index.txt
printf '01\n' > crlnumber
cat > ca.cnf <<'CNF'
[ca]
default_ca = fuzz
[fuzz]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
CNF
ossl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out ca.crl.pem || true
[ -f ca.crl.pem ] && ossl crl -in ca.crl.pem -outform DER -out ca.crl.der
ossl ocsp -issuer ca.pem -cert signer.pem -reqout ocsp.req -no_nonce
ossl ocsp -issuer ca.pem -cert signer.pem -reqout ocsp-nonce.req
ossl ts -query -data ca.pem -sha256 -cert -out ts.req
ossl ts -query -data ca.pem -sha512 -no_nonce -out ts-nononce.req
printf 'a document to sign\n' > content.txt
ossl cms -sign -binary -in content.txt -signer signer.pem -inkey signer.key -certfile ca.pem \
    -nodetach -outform DER -out attached.p7s
ossl cms -sign -binary -in content.txt -signer signer.pem -inkey signer.key -outform DER \
    -out detached.p7s
ossl cms -sign -binary -cades -in content.txt -signer signer.pem -inkey signer.key \
    -certfile ca.pem -outform DER -out cades.p7s
ossl cms -sign -binary -in content.txt -signer ca.pem -inkey ca.key -nodetach -outform DER \
    -out ec-attached.p7s

seed csr signer.csr.pem signer.csr.der
seed certificate ca.der signer.der
seed crl ca.crl.der
seed ocsp_request ocsp.req ocsp-nonce.req
seed tsa_request ts.req ts-nononce.req
seed cms attached.p7s detached.p7s cades.p7s ec-attached.p7s
seed pem ca.pem signer.pem signer.csr.pem ca.crl.pem
cat ca.pem signer.pem > chain.pem
seed pem chain.pem
seed portal_tokens signer.der
# Time-stamp responses made with openssl's own TSA (signed with the CA key; a seed needs to be
# well formed, not trusted).
cat > tsa.cnf <<'CNF'
[tsa]
default_tsa = fuzz
[fuzz]
serial = tsaserial
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
ess_cert_id_alg = sha256
accuracy = secs:1
CNF
printf '01\n' > tsaserial
ossl x509 -req -in signer.csr.pem -CA ca.pem -CAkey ca.key -days 3650 -out tsa.pem \
    -extfile <(printf 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n')
ossl ts -reply -config tsa.cnf -queryfile ts.req -signer tsa.pem -inkey signer.key \
    -chain ca.pem -out ts.tsr || true
ossl ts -reply -config tsa.cnf -queryfile ts.req -signer tsa.pem -inkey signer.key \
    -chain ca.pem -token_out -out ts.token || true
seed tsa_response ts.tsr ts.token

# A PDF with one signature field: its /ByteRange and /Contents as a PAdES signer writes them,
# the CMS over the two ranges made by openssl (detached, CAdES).
python3 - "$work" <<'PY'
import subprocess, sys, os
work = sys.argv[1]
objects = [
    b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Annots [4 0 R] /Contents 6 0 R >>",
    b"<< /Type /Annot /Subtype /Widget /FT /Sig /Rect [0 0 0 0] /P 3 0 R /T (Signature1) /V 5 0 R >>",
    None,  # the signature dictionary, written below
    b"<< /Length 35 /Filter /FlateDecode >>\nstream\n" + __import__("zlib").compress(b"BT /F1 12 Tf 20 100 Td (imza) Tj ET")[:35] + b"\nendstream",
]
placeholder = 4096  # hex digits reserved for the CMS
sig = (b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached "
       b"/ByteRange [0000000000 0000000000 0000000000 0000000000] "
       b"/Contents <" + b"0" * placeholder + b"> /M (D:20250601000000Z) >>")
objects[4] = sig
def build(objects):
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
with open(os.path.join(work, "minimal.pdf"), "wb") as f:
    f.write(build(objects[:3] + [b"<< /Type /Annot >>", b"null", objects[5]]))
pdf = build(objects)
start = pdf.index(b"/Contents <") + len(b"/Contents ")
end = start + placeholder + 2
ranges = b"%010d %010d %010d %010d" % (0, start, end, len(pdf) - end)
pdf = pdf.replace(b"0000000000 0000000000 0000000000 0000000000", ranges, 1)
signed_bytes = pdf[:start] + pdf[end:]
with open(os.path.join(work, "ranges.bin"), "wb") as f:
    f.write(signed_bytes)
subprocess.run(["openssl", "cms", "-sign", "-binary", "-cades", "-in", os.path.join(work, "ranges.bin"),
                "-signer", os.path.join(work, "signer.pem"), "-inkey", os.path.join(work, "signer.key"),
                "-certfile", os.path.join(work, "ca.pem"), "-outform", "DER",
                "-out", os.path.join(work, "pdf.p7s")], check=True, stderr=subprocess.DEVNULL)
cms = open(os.path.join(work, "pdf.p7s"), "rb").read().hex().encode()
assert len(cms) <= placeholder
pdf = pdf[:start + 1] + cms + b"0" * (placeholder - len(cms)) + pdf[end - 1:]
with open(os.path.join(work, "signed.pdf"), "wb") as f:
    f.write(pdf)
PY
seed pdf_reader minimal.pdf signed.pdf
seed pades minimal.pdf signed.pdf

# --- written out: JSON bodies, card answers, portal tokens ---
printf '%s' '{"phoneNumber":"+994501234567","nationalIdentityNumber":"1234567"}' > j1
printf '%s' '{"phoneNumber":"+994501234567","nationalIdentityNumber":"1234567","hash":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=","hashType":"SHA256","displayText":"Sign the contract","language":"ENG"}' > j2
printf '%s' '{"result":"OK","signature":"MEUCIQC2"}' > j3
printf '%s' '{"state":"COMPLETE","result":"OK","signature":{"value":"AAEC","algorithm":"SHA256WithECEncryption"},"cert":"MIIB"}' > j4
printf '%s' '{"requests":[{"sessionId":"abc","kind":"SIGNATURE","relyingParty":"Bank","displayText":"Pay","language":"AZE","hash":"AAAA","hashType":"SHA384","verificationCode":"1234","expiresAt":"2025-06-01T00:05:00Z"}]}' > j5
printf '%s' '{"result":"OK","cert":"MIIB"}' > j6
seed mobile_json j1 j2 j3 j4 j5 j6

python3 - "$work" <<'PY'
import sys, os
work = sys.argv[1]
def framed(*answers):
    return b"".join(len(a).to_bytes(2, "big") + a for a in answers)
ok = b"\x90\x00"
cert = open(os.path.join(work, "signer.der"), "rb").read()
def tlv(tag, value):
    n = len(value)
    length = bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 0x100 else b"\x82" + n.to_bytes(2, "big"))
    return tag + length + value
cert_object = tlv(b"\x53", tlv(b"\x70", cert) + tlv(b"\x71", b"\x00") + tlv(b"\xfe", b""))
witness = tlv(b"\x7c", tlv(b"\x80", bytes(8)))
ec_point = tlv(b"\x7f\x49", tlv(b"\x86", b"\x04" + bytes(64)))
signature = tlv(b"\x7c", tlv(b"\x82", bytes.fromhex("3006020101020101")))
seeds = {
    "select-getdata": framed(b"\x61\x10" + ok, cert_object[:200] + b"\x61\x00", cert_object[200:] + ok),
    "auth": framed(ok, b"\x6a\x82", b"\x63\xc2", witness + ok, tlv(b"\x7c", tlv(b"\x82", bytes(8))) + ok),
    "generate": framed(ok, b"\x6a\x82", ok, b"\x69\x82", b"\x69\x82", ec_point + ok, signature + ok),
    "chained": framed(b"\x6c\x10", b"\x61\x05" , b"\x00" * 5 + ok),
}
for name, data in seeds.items():
    with open(os.path.join(work, "piv-" + name), "wb") as f:
        f.write(data)
PY
seed piv piv-*

cert_b64="$(base64 -w0 signer.der)"
printf '{"unverifiedCertificate":"%s","algorithm":"RS256","signature":"AAEC","format":"web-eid:1.0","appVersion":"https://web-eid.eu/web-eid-app/releases/2.5.0"}' "$cert_b64" > t1
printf '{"unverifiedCertificate":"%s","algorithm":"ES384","signature":"AAEC","format":"web-eid:1.1","unverifiedSigningCertificates":[{"certificate":"%s","supportedSignatureAlgorithms":[{"cryptoAlgorithm":"ECC","hashFunction":"SHA-384","paddingScheme":"NONE"}]}]}' "$cert_b64" "$cert_b64" > t2
printf '%s' '{"link":"https://portal.example/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=fuzz-token&elapsedSeconds=3&lang=eng&authCode=AAAA"}' > t3
printf '%s' '{"link":"https://portal.example/qr/v1?sessionToken=fuzz-token","certificate":"MIIB","signature":"AAEC"}' > t4
printf '%s' 'https://portal.example/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken=fuzz-token&elapsedSeconds=0&lang=aze&authCode=' > t5
printf '%s' 'Q29va2llVmFsdWVPZjQzQ2hhcmFjdGVyc0xvbmdfXy0' > t6
seed portal_tokens t1 t2 t3 t4 t5 t6

for d in "$corpus"/*/; do
    printf 'fuzz-seeds: %-14s %3d seeds\n' "$(basename "$d")" "$(ls "$d" | wc -l)"
done
