#!/usr/bin/env bash
# Installs what imza needs to build and test on Debian 12, only what is missing (idempotent).
# Debian packages: C libraries for the build, SoftHSM2/OpenSC for PKCS#11, pcscd with
# vsmartcard's virtual reader for the chip-card tests, openssl for the
# independent checks, wrk/hyperfine for benchmarks, PostgreSQL (server and client) for the
# second store engine (the tests start their own cluster; the service is never enabled here). Python venv (.venv): pkilint, pyhanko-cli, aiosmtpd.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(build-essential pkgconf libssl-dev libpcsclite-dev openssl sqlite3 curl
              softhsm2 opensc opensc-pkcs11 pcscd vsmartcard-vpcd python3-venv wrk hyperfine time
              postgresql postgresql-client
              chromium chromium-driver fonts-dejavu-core zbar-tools libnss3-tools
              qpdf poppler-utils)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 3
fi

# pkilint lives in a project-local venv so the system Python stays untouched.
if [ ! -x .venv/bin/lint_pkix_cert ]; then
  echo "setup: creating .venv with pkilint"
  python3 -m venv .venv 2>/dev/null || { rm -rf .venv; python3 -m virtualenv .venv; }
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q 'pkilint>=0.13,<0.14'
fi
# pyHanko's command line (PAdES and CMS validation by a tool imza was not built with).
if [ ! -x .venv/bin/pyhanko ]; then
  echo "setup: adding pyhanko-cli to .venv"
  .venv/bin/pip install -q 'pyhanko-cli>=0.6,<0.7'
fi
# aiosmtpd: a real SMTP server the tests of the portal's expiry notices mail to.
if [ ! -x .venv/bin/aiosmtpd ]; then
  echo "setup: adding aiosmtpd to .venv"
  .venv/bin/pip install -q 'aiosmtpd>=1.4,<1.5'
fi
echo "setup: ok"
