#!/usr/bin/env bash
# Flame graph of meridian's worker thread under the unpipelined GET load (redis-benchmark -c 50)
# in front of a one-node redis-server cluster on loopback, written to docs/flamegraph-get.svg
# (or $1). Needs perf (Debian's linux-perf) and inferno (`cargo install inferno`); samples the
# CPU clock, so it works where hardware counters are not available. Everything it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/flamegraph-get.svg}"
seconds="${SECONDS_TO_SAMPLE:-8}"
for tool in perf redis-server redis-cli redis-benchmark inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "flamegraph.sh: $tool not found" >&2; exit 2; }
done
cargo build --release -q
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
node=$(free_port)
while ((node > 55000)); do node=$(free_port); done
gw=$(free_port)
redis-server --port "$node" --bind 127.0.0.1 --cluster-enabled yes --save "" --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$node" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$node" cluster addslotsrange 0 16383 >/dev/null
for _ in $(seq 100); do
  redis-cli -p "$node" cluster info | grep -q cluster_state:ok && break
  sleep 0.1
done
printf 'listen: 127.0.0.1:%s\nworkers: 1\ncluster:\n  seeds: ["127.0.0.1:%s"]\nadmin:\n  listen: 127.0.0.1:0\n' \
  "$gw" "$node" >"$tmp/meridian.yaml"
target/release/meridian serve -c "$tmp/meridian.yaml" >"$tmp/meridian.log" 2>&1 &
meridian=$!
pids+=("$meridian")
for _ in $(seq 100); do redis-cli -p "$gw" ping >/dev/null 2>&1 && break; sleep 0.1; done
worker=""
for t in /proc/"$meridian"/task/*; do
  [[ "$(cat "$t/comm")" == meridian-w0 ]] && worker="${t##*/}"
done
[[ -n "$worker" ]] || { echo "flamegraph.sh: no worker thread in meridian $meridian" >&2; exit 1; }
redis-benchmark -p "$gw" -t set -r 100000 -n 100000 -c 50 --threads 1 -q >/dev/null
redis-benchmark -p "$gw" -t get -r 100000 -n 100000000 -c 50 --threads 1 -q >/dev/null 2>&1 &
pids+=($!)
sleep 2
perf record -q -F 499 -g --call-graph dwarf,16384 -t "$worker" -o "$tmp/perf.data" -- sleep "$seconds"
perf script -i "$tmp/perf.data" 2>/dev/null | inferno-collapse-perf >"$tmp/collapsed.txt"
inferno-flamegraph --title "meridian worker thread, GET unpipelined, redis-benchmark -c 50" \
  --width 1400 <"$tmp/collapsed.txt" >"$out"
echo "flame graph written to $out"
