#!/usr/bin/env bash
# Runs the RESP fuzz targets (tests/fuzz) for a bounded time each.
#
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   space-separated targets (default: all)
#
# Only a stable toolchain is installed, so RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz
# needs (sanitizer, coverage instrumentation).
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-request_parser reply_scanner}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in $targets; do
    echo "== fuzzing $target for ${seconds}s"
    cargo fuzz run --fuzz-dir tests/fuzz "$target" -- -max_total_time="$seconds"
done
