#!/usr/bin/env python3
"""User-space instructions per request of meridian's features, counted by callgrind.

CPU time on a shared 2-core VM moves 10-20% between runs, which hides a 5% cost. callgrind
counts the instructions meridian itself executes: the same binary, config and requests give the
same count whatever else the machine does. For each variant (plain, latency monitors off,
metrics, read policy, users, clients over TLS) meridian runs under `valgrind --tool=callgrind`
in front of a one-node redis-server cluster and serves N and then 2N GETs (or SETs) from
redis-benchmark in two separate runs; (Ir(2N) - Ir(N)) / N is the instructions per request,
start-up and shutdown cancelling out. A standalone redis-server serving the same load under
callgrind is the yardstick (its row's ratio is to meridian's plain row). The kernel's share of
a request (the socket calls, most of the CPU time on loopback) is not counted, so a variant's share of the *whole* request cost is smaller than its
share of these instructions; the report gives both the instructions and the ratio to plain.

Usage: scripts/cost_instructions.py [--requests N] [--binary target/release/meridian]
       [--tests get,set] [--pipeline 16] [--variants plain,nomon,metrics,policy,users,tls] [--no-yardstick] [--keep]
(`cargo build --profile profiling` gives a quickly rebuilt binary for iterating.)
Needs valgrind, redis-server, redis-cli, redis-benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from test_certs import make_test_certs

ROOT = Path(__file__).resolve().parent.parent
START_WAIT_S = 120  # meridian starts slowly under valgrind
BENCH_USER, BENCH_PASSWORD = "bench", "bench-secret"


def free_port() -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 55000:
            return port
    raise SystemExit("no free loopback port below 55000")


def cli(port: int, *args: str) -> str:
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                       timeout=10)
    return r.stdout.strip()


def wait(what: str, ok, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not ok():
        if time.monotonic() > deadline:
            raise SystemExit(f"cost_instructions: {what} within {limit:.0f} s")
        time.sleep(0.2)


def start_node(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
         "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait("redis-server", lambda: cli(port, "PING") == "PONG", 20)
    cli(port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    wait("cluster_state:ok", lambda: "cluster_state:ok" in cli(port, "CLUSTER", "INFO"), 20)
    cli(port, "SET", "key:__rand_int__", "abc")
    return proc, port


def variants(tmp: Path) -> list[dict]:
    digest = hashlib.sha256(BENCH_PASSWORD.encode()).hexdigest()
    ca, cert, key = make_test_certs(tmp / "tls")
    users = (
        "users:\n"
        "  - name: default\n    role: admin\n    keys: ['*']\n"
        f"  - name: {BENCH_USER}\n    passwords: [{digest}]\n    role: write\n"
        "    keys: ['app:*', 'key:*', 'bench:*']\n    read_keys: ['shared:*']\n"
    )
    tls = f"tls:\n  listen: 127.0.0.1:{{tls_port}}\n  cert: {cert}\n  key: {key}\n"
    return [
        {"key": "plain", "name": "plain (no metrics; predixy's 4 latency monitors)",
         "yaml": "admin:\n  listen: \"\"\n", "auth": []},
        {"key": "nomon", "name": "latency monitors off (latency_monitors: [])",
         "yaml": "admin:\n  listen: \"\"\nlatency_monitors: []\n", "auth": []},
        {"key": "metrics", "name": "metrics on (admin endpoint on)", "yaml": "admin:\n  listen: 127.0.0.1:0\n",
         "auth": []},
        {"key": "policy", "name": "read policy on (local_dc, one DC), metrics off",
         "yaml": "admin:\n  listen: \"\"\nlocal_dc: here\n"
                 "datacenters: { here: { cidrs: [127.0.0.0/8] } }\n"
                 "latency_ms: { here: { here: 0.3 } }\n",
         "auth": []},
        {"key": "users", "name": "users on (a user with key patterns), metrics off",
         "yaml": "admin:\n  listen: \"\"\n" + users,
         "auth": ["--user", BENCH_USER, "-a", BENCH_PASSWORD]},
        {"key": "tls", "name": "clients over TLS (TLS 1.3, rustls), metrics off",
         "yaml": "admin:\n  listen: \"\"\n" + tls, "auth": ["--tls", "--cacert", str(ca)],
         "tls": True},
    ]


def callgrind_total(path: Path) -> int:
    text = path.read_text(errors="replace")
    m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    if not m:
        raise SystemExit(f"cost_instructions: no instruction total in {path}")
    return int(m.group(1))


PIPELINE = 1


def measured(tmp: Path, tag: str, server: list[str], what: str, ready, load: list[str]) -> int:
    """Runs `server` under callgrind, waits until `ready()`, drives it with the redis-benchmark
    arguments `load`, stops it with SIGTERM and returns the instructions it executed."""
    out = tmp / f"{tag}.callgrind"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         *server],
        stdout=subprocess.DEVNULL, stderr=(tmp / f"{tag}.log").open("w"))
    try:
        wait(f"{what} under valgrind", ready, START_WAIT_S)
        bench = ["redis-benchmark", "-c", "1", "-P", str(PIPELINE), "-r", "1000", "--threads", "1",
                 "-q", *load]
        r = subprocess.run(bench, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0 or "requests per second" not in r.stdout + r.stderr:
            raise SystemExit(f"cost_instructions: redis-benchmark failed: {r.stdout} {r.stderr}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return callgrind_total(out)


def one_run(args, tmp: Path, node: int, variant: dict, test: str, n: int, tag: str) -> int:
    """meridian with `variant`'s config in front of the node, serving `n` requests of `test`."""
    port = free_port()
    # The load goes to the TLS listener when the variant has one.
    load_port = free_port() if variant.get("tls") else port
    cfg = tmp / f"{tag}.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\nworkers: 1\ncluster:\n  seeds: [\"127.0.0.1:{node}\"]\n"
        "  refresh_interval: 600s\nhealth:\n  probe_interval: 600s\n"
        + variant["yaml"].replace("{tls_port}", str(load_port)))
    return measured(tmp, tag, [str(args.binary), "serve", "-c", str(cfg)], "meridian",
                    lambda: cli(port, "PING") in ("PONG", "NOAUTH"),
                    ["-p", str(load_port), "-t", test, "-n", str(n), *variant["auth"]])


def redis_run(tmp: Path, test: str, n: int, tag: str) -> int:
    """A standalone redis-server under callgrind serving the same load: the yardstick (no
    persistence, so no forked child whose instructions would land in another file)."""
    port = free_port()
    server = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", str(tmp)]
    return measured(tmp, tag, server, "redis-server", lambda: cli(port, "PING") == "PONG",
                    ["-p", str(port), "-t", test, "-n", str(n)])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target/release/meridian")
    p.add_argument("--requests", type=int, default=20000, help="N (default 20000)")
    p.add_argument("--tests", default="get,set", help="redis-benchmark tests (default get,set)")
    p.add_argument("--variants", default="",
                   help="only these variants, by key: plain,nomon,metrics,policy,users,tls "
                        "(default all; the first one run is the ÷ base)")
    p.add_argument("--no-yardstick", action="store_true",
                   help="skip the standalone redis-server row")
    p.add_argument("--pipeline", type=int, default=1,
                   help="requests per round trip (redis-benchmark -P; default 1)")
    p.add_argument("--keep", action="store_true",
                   help="keep the callgrind files (for callgrind_annotate); prints where")
    args = p.parse_args(argv)
    global PIPELINE
    PIPELINE = max(1, args.pipeline)
    for tool in ("valgrind", "redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"cost_instructions: {tool} not found", file=sys.stderr)
            return 2
    if not args.binary.exists():
        print(f"cost_instructions: {args.binary} missing (cargo build --release)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="meridian-cost-"))
    node_proc, node = start_node(tmp)
    rows = []
    try:
        for test in args.tests.split(","):
            base = None
            wanted = [k for k in args.variants.split(",") if k]
            for i, v in enumerate(variants(tmp)):
                if wanted and v["key"] not in wanted:
                    continue
                n = args.requests
                small = one_run(args, tmp, node, v, test, n, f"{test}-{i}-a")
                big = one_run(args, tmp, node, v, test, 2 * n, f"{test}-{i}-b")
                per = (big - small) / n
                base = per if base is None else base
                rows.append((test.upper(), v["name"], per, per / base))
                print(f"[cost] {test.upper():<4} {v['name']:<50} {per:>9.0f} instructions/request"
                      f"  (÷ plain {per / base:.3f})", file=sys.stderr, flush=True)
            if args.no_yardstick:
                continue
            n = args.requests
            small = redis_run(tmp, test, n, f"{test}-redis-a")
            big = redis_run(tmp, test, 2 * n, f"{test}-redis-b")
            per = (big - small) / n
            rows.append((test.upper(), "standalone redis-server serving the load itself", per,
                         per / base))
    finally:
        node_proc.terminate()
        node_proc.wait(timeout=20)
        if args.keep:
            print(f"cost_instructions: callgrind files kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"meridian user-space instructions per request (callgrind), git {commit}, "
          f"N={args.requests}, redis-benchmark -c 1 -P {PIPELINE} (one client, so no batching "
          "differences), workers 1\n")
    print("| test | variant | instructions/request | ÷ plain |")
    print("|---|---|---:|---:|")
    for test, name, per, ratio in rows:
        print(f"| {test} | {name} | {per:,.0f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
