#!/usr/bin/env bash
# The demo: installs redis-server when missing, builds meridian, and brings up the three-region
# lab of topologies/three-regions.yaml on loopback (3 DCs, 3 shards, one gateway per DC, real
# inter-DC latency through delay relays). It prints how to connect; Ctrl-C removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
exec target/release/meridian lab up topologies/three-regions.yaml --foreground
