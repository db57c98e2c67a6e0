#!/usr/bin/env bash
# Runs each cargo-fuzz target for SECONDS (default 60), starting from the
# committed seed corpus in fuzz/corpus/<target>/ and growing a scratch copy
# (fuzz/corpus-run/, not committed). A crash fails the script and leaves its
# input in fuzz/artifacts/<target>/: add it to fuzz/corpus/<target>/ under a
# name that says what it found, so tests/fuzz_corpus.rs keeps it fixed.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the
# machine's stable toolchain. Installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
for target in framing config plan template hpack_decode h2_session grpc_response grpc_reflection; do
  mkdir -p "corpus-run/$target"
  echo "fuzz: $target for ${secs} s"
  cargo fuzz run "$target" "corpus-run/$target" "corpus/$target" -- -max_total_time="$secs" 2>&1 | tail -1
done
