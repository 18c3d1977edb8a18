# imza: the two commands a fresh Debian 12 machine needs.
#   make demo   set up, build, create the demo national PKI in ./imza-data and serve it
#   make test   set up, build, run every test (unit, integration, external verifiers)
# Both install missing Debian/PyPI packages first (scripts/setup.sh, idempotent).

DATA_DIR ?= ./imza-data
LISTEN ?= 127.0.0.1:8080
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup build demo test lint bench clean

setup:
	bash scripts/setup.sh

build: setup
	cargo build --release --workspace

demo: build
	./target/release/imza --data-dir $(DATA_DIR) demo
	./target/release/imza --data-dir $(DATA_DIR) serve --listen $(LISTEN)

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
	bash bench/card.sh
	bash bench/national.sh
	bash bench/crl-shards.sh

clean:
	cargo clean
