#!/usr/bin/env bash
# Runs meridian's whole test suite: unit tests, and integration tests against real
# redis-server clusters that the tests start on loopback ports and remove afterwards; the
# criterion benches run once each in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Integration tests each start their own cluster; two at a time fits a 2-core machine.
export RUST_TEST_THREADS="${TEST_THREADS:-2}"
cargo test --all-targets --no-fail-fast
