# imza: the two commands a fresh Debian 12 machine needs.
#   make demo   set up, build, create the demo national PKI in ./imza-data and serve it
#   make test   set up, build, run every test (unit, integration, external verifiers)
# Both install missing Debian/PyPI packages first (scripts/setup.sh, idempotent).

DATA_DIR ?= ./imza-data
LISTEN ?= 127.0.0.1:8080
PORTAL_LISTEN ?= 127.0.0.1:8443
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup build demo test lint bench clean fuzz fuzz-setup fuzz-seeds

setup:
	bash scripts/setup.sh

build: setup
	cargo build --release --workspace

# The services on plain HTTP (the URLs written into the demo's certificates) and the portal on
# HTTPS with the certificate `imza demo` issues for localhost (its phone login a relying party
# of the first one's mobile signature service: demo/portal.toml, demo/portal-rp.key); Ctrl-C
# stops both.
demo: build
	./target/release/imza --data-dir $(DATA_DIR) demo
	trap 'kill 0' INT TERM EXIT; \
	IMZA_PORTAL_MSS_API_KEY="$$(cat $(DATA_DIR)/demo/portal-rp.key)" \
	./target/release/imza --data-dir $(DATA_DIR) serve --listen $(PORTAL_LISTEN) --roles portal \
	  --config $(DATA_DIR)/demo/portal.toml \
	  --tls-cert $(DATA_DIR)/demo/certs/portal-tls-chain.pem --tls-key $(DATA_DIR)/demo/keys/portal-tls.key.pem & \
	./target/release/imza --data-dir $(DATA_DIR) serve --listen $(LISTEN) --roles ocsp,tsa,verify,mss,publish,ca

test: setup
	bash scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: build
	bash bench/issue.sh
	bash bench/crl.sh
	bash bench/ocsp.sh
	bash bench/tsa.sh
	bash bench/mobile.sh
	bash bench/verify.sh
	bash bench/pades.sh
	bash bench/card.sh
	bash bench/national.sh
	bash bench/crl-shards.sh
	bash bench/ecertificates.sh

# Fuzzing (fuzz/, its own Cargo package, outside the workspace): cargo-fuzz and libFuzzer on the
# stable toolchain (RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags), AddressSanitizer on.
# Each target runs FUZZ_SECONDS (default 60), one at a time; a crash fails the run.
#   make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS="cms pades"
FUZZ_SECONDS ?= 60
export FUZZ_SECONDS FUZZ_TARGETS FUZZ_SANITIZER

# setup brings the C++ compiler libFuzzer is built with and the libraries the crates link.
fuzz-setup: setup
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz-seeds:
	bash fuzz/seeds.sh

fuzz: fuzz-setup fuzz-seeds
	bash fuzz/run.sh

clean:
	cargo clean
