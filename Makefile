# Userflux: `make demo` shows a run against the demo gateway; `make test`
# is what CI runs. Everything builds with cargo; nothing is installed globally.

CARGO ?= cargo

.PHONY: all build release demo test lint fmt bench clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

## Start the gateway on a free loopback port, run examples/demo.json against
## it, print the summary and the run directory, stop the gateway.
demo: release
	scripts/demo.sh

## Formatting, lints, then every test (unit and end-to-end over the real binaries).
test: lint
	$(CARGO) build --workspace
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
