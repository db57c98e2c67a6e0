# Userflux: `make demo` shows a run against the demo gateway; `make test`
# is what CI runs. Rust builds with cargo; the Python analytics live in
# analytics/.venv (created by `make setup`); nothing is installed globally.

CARGO ?= cargo
PYTHON ?= python3
VENV := analytics/.venv

.PHONY: all build release setup demo test lint test-rust test-python fmt bench fixtures clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

## The Python analytics in analytics/.venv (matplotlib, jinja2; pytest, ruff, jsonschema for tests).
setup: $(VENV)/.installed

$(VENV)/.installed: analytics/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e 'analytics[dev]'
	touch $@

## Start the gateway on a free loopback port and userfluxd on runs/, run
## examples/demo.json through it, print the summary, write the report.
## Built in the `demo` profile (target/demo/): optimized, without the release
## profile's LTO and single codegen unit, which cost a cold 2-core build
## ~7 minutes (see Cargo.toml); measure with `make release`.
## The venv is made while cargo builds (pip waits on the network, cargo on
## the CPU): 30 s of a cold 2-core make demo.
demo:
	$(MAKE) setup > .demo-setup.log 2>&1 & setup=$$!; \
	$(CARGO) build --profile demo -p userflux-engine -p userfluxd -p userfluxctl -p userflux-gateway; built=$$?; \
	wait $$setup || { cat .demo-setup.log; exit 1; }; rm -f .demo-setup.log; exit $$built
	USERFLUX_BIN=target/demo scripts/demo.sh

## Formatting, lints (rustdoc's too: a broken doc link fails), then every test: Rust (unit and end-to-end over the
## real binaries) and Python (analytics).
test: lint test-rust test-python

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace
	cd analytics && .venv/bin/ruff check . && .venv/bin/ruff format --check .

test-rust:
	$(CARGO) build --workspace
	$(CARGO) test --workspace

test-python: setup
	cd analytics && .venv/bin/pytest -q

fmt:
	$(CARGO) fmt --all
	cd analytics && .venv/bin/ruff format .

bench:
	$(CARGO) bench --bench hot_path

## Re-record the analytics test fixtures from real runs.
fixtures: release
	analytics/tests/make_fixtures.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV)
