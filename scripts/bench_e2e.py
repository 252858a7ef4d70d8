#!/usr/bin/env python3
"""End-to-end benchmark: redis-benchmark straight at a Redis Cluster vs. through meridian.

Starts a throw-away Redis Cluster (3 masters, no replicas) from `redis-server` on free loopback
ports, starts meridian in front of it, and runs `redis-benchmark` in turn against the cluster
(`--cluster`, "direct", A) and through meridian (plain mode, B), A B A B ..., for these rows:

  SET, GET            unpipelined, 50 clients, random keys (-r)
  SET -P 16, GET -P 16 pipelined 16 deep
  MGET of 10 keys     literal keys spread over >= 5 slots on all masters (meridian only:
                      redis-benchmark --cluster cannot send a cross-slot MGET)

With --baseline BINARY a second meridian (e.g. an older build) runs on its own port in front of
the same cluster with the same config, as C in the rotation (A B C A B C ...). Unless
--no-standalone is given, a standalone (non-cluster) redis-server started by the script takes
the SET/GET rows too, as D (A B C D ...): its CPU per request is what meridian's is measured
against (issue 11: meridian CPU / redis CPU <= 1.25 unpipelined, <= 0.6 pipelined). Only one
target is driven at a time; the others sit idle (their CPU during each run is recorded as a
check).

Both sides use the same client, `redis-benchmark --threads 1` (see --client-threads: with its
default of one thread per master, --cluster rounds every run up to a multiple of 250 ms).
For each row and target it reports the median over the rounds of rps, p50, p99 and p99.9, the
ratio to direct, and the CPU time per request of the process the load went to (utime+stime from
/proc/PID/stat around each run: the three masters together for direct, meridian's or the
baseline's process, the standalone redis-server), then per row the ratios meridian/baseline and
meridian/standalone redis of CPU per request with the kernel's share of it and the context
switches per request (voluntary: the process slept; involuntary: it was preempted, e.g. by a
process its own send woke on the same CPU; from /proc/PID/task/*/status), plus each meridian's
peak RSS. Everything it starts is stopped again and its temp dir removed, also on error, timeout or Ctrl-C.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import random
import resource
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from test_certs import make_test_certs

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = REPO / "target" / "release" / "meridian"
PORT_RANGE = (30000, 32000)  # bus port = port + 10000, so 40000-41999 must be free too
MASTERS = 3
SLOTS = 16384
LATENCY_COLUMNS = ["avg", "min", "p50", "p95", "p99", "max"]  # redis-benchmark's latency summary
MGET_KEYS = 10
MGET_MIN_SLOTS = 5

# Targets from issue 2, item 11 (workers: 1, 2 cores, 50 clients).
TARGET_RATIO = {"SET": 1.0, "GET": 1.0, "SET -P 16": 1.0, "GET -P 16": 1.1}
TARGET_MGET_RPS = 60_000
TARGET_CPU_US = {"SET": 9.0, "GET": 9.0, "SET -P 16": 1.1, "GET -P 16": 1.1}
# Issue 11: meridian's CPU per request / a standalone redis-server's CPU per request, at most.
TARGET_CPU_VS_REDIS = {"SET": 1.25, "GET": 1.25, "SET -P 16": 0.6, "GET -P 16": 0.6}
# The targets of a run, in rotation order, and how the report names them.
SIDES = ("direct", "meridian", "baseline", "standalone")
SIDE_LABEL = {"direct": "direct (--cluster)", "meridian": "meridian", "baseline": "baseline",
              "standalone": "standalone redis"}


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


class Interrupted(BaseException):
    """Raised from the signal handler so that `finally` blocks tear everything down."""


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def crc16_xmodem(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """Cluster slot of a key, honouring the first non-empty `{hash tag}` like Redis does."""
    raw = key.encode()
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc16_xmodem(raw) % SLOTS


def parse_benchmark_report(text: str) -> list[dict]:
    """Tests of a redis-benchmark report (its default output, not --csv or -q) as dicts.

    Per test: `test` (str), `rps` (throughput summary), `avg` `min` `p50` `p95` `p99` `max`
    (latency summary, ms), `completed` (requests) and `p999` (ms). redis-benchmark 7.0 prints no
    p99.9 in its summary or its --csv line (and -q only rps and p50); only its "Latency by
    percentile distribution" has one, as HDR histogram lines `P% <= V milliseconds (cumulative
    count N)` at percentiles halving the distance to 100% (... 99.805, 99.902, 99.951 ...).
    `p999` is the first V there whose cumulative count reaches 99.9% of the requests: an upper
    bound of p99.9 that is at most the p99.902. None when the report has no such section.
    """
    rows: list[dict] = []
    cur: dict | None = None
    section = ""
    dist: list[tuple[float, int]] = []
    names: list[str] | None = None

    def finish() -> None:
        if cur is None:
            return
        total = max((n for _, n in dist), default=0)
        cur["p999"] = next((v for v, n in dist if n * 1000 >= total * 999), None) if total else None

    # splitlines() also splits at the \r that separates the progress lines.
    for line in text.splitlines():
        s = line.strip()
        m = re.fullmatch(r"====== (.*) ======", s)
        if m:
            finish()
            cur, section, dist, names = {"test": m.group(1)}, "", [], None
            rows.append(cur)
            continue
        if cur is None:
            continue
        if s.endswith(":") and not s.startswith(("throughput", "latency")):
            section = s
        elif m := re.fullmatch(r"(\d+) requests completed in [\d.]+ seconds", s):
            cur["completed"] = int(m.group(1))
        elif section.startswith("Latency by percentile") and (
            m := re.fullmatch(r"[\d.]+% <= ([\d.]+) milliseconds \(cumulative count (\d+)\)", s)
        ):
            dist.append((float(m.group(1)), int(m.group(2))))
        elif m := re.fullmatch(r"throughput summary: ([\d.]+) requests per second", s):
            cur["rps"] = float(m.group(1))
        elif s.split() == LATENCY_COLUMNS:
            names = LATENCY_COLUMNS
        elif names:
            try:
                cur.update({k: float(v) for k, v in zip(names, s.split(), strict=True)})
            except ValueError:
                pass
            names = None
    finish()
    return [r for r in rows if "rps" in r and all(k in r for k in LATENCY_COLUMNS)]


def median(values: list[float]) -> float | None:
    """Median, or None when there is nothing to take it of."""
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child pre-exec hook: get SIGTERM if this script is killed hard (no orphaned servers)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(cmd: list[str], timeout: float, check: bool = True, cwd: Path | None = None):
    """Run a command with a hard timeout; raise BenchError on timeout or (if check) failure."""
    try:
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    except OSError as exc:
        raise BenchError(f"cannot run {cmd[0]}: {exc}") from exc
    if check and res.returncode != 0:
        raise BenchError(
            f"exit {res.returncode}: {' '.join(cmd)}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
        )
    return res


def stop_process(proc: subprocess.Popen | None, name: str, grace: float = 10.0) -> None:
    """SIGTERM, wait `grace` seconds, then SIGKILL; never raises."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s; killing it")
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    except OSError:
        pass


def tail(path: Path | None, lines: int = 20) -> str:
    """Last lines of a log file (colour codes removed), for error messages."""
    try:
        text = re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace")) if path else ""
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def port_free(port: int) -> bool:
    """True when the port can be bound on 127.0.0.1 right now (races are handled by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis_cli(port: int, *args: str, timeout: float = 10.0, check: bool = True) -> str:
    """One `redis-cli` command against 127.0.0.1:port; returns its stdout."""
    res = run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], timeout, check)
    return res.stdout


# ---------------------------------------------------------------------------------------------
# Cluster + meridian
# ---------------------------------------------------------------------------------------------


@dataclass
class Meridian:
    """One meridian process: the one under test ("meridian") or the --baseline one."""

    name: str
    binary: Path
    proc: subprocess.Popen | None = None
    port: int = 0
    log: Path | None = None
    # Set with --tls for the meridian under test: its CA file (clients use its TLS port).
    tls_ca: Path | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass
class Env:
    """Everything started by the benchmark, so that teardown can find it."""

    tmp: Path
    redis: list[tuple[int, subprocess.Popen]] = field(default_factory=list)  # the cluster
    standalone: list[tuple[int, subprocess.Popen]] = field(default_factory=list)  # at most one
    meridian: Meridian | None = None
    baseline: Meridian | None = None

    def meridians(self) -> list[Meridian]:
        """The meridians started so far, the one under test first."""
        return [m for m in (self.meridian, self.baseline) if m is not None]

    def teardown(self) -> None:
        """Stop both meridians, then every redis-server, then remove the temp dir."""
        for m in self.meridians():
            stop_process(m.proc, m.name)
        for port, proc in self.redis + self.standalone:
            stop_process(proc, f"redis-server :{port}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_redis(env: Env, rng: random.Random, deadline_s: float = 10.0,
                cluster: bool = True) -> int:
    """Start one redis-server on a free port; retries on port races.

    `cluster`: a cluster-enabled node (kept in env.redis); otherwise the standalone server
    (kept in env.standalone).
    """
    procs = env.redis if cluster else env.standalone
    for _ in range(30):
        port = rng.randrange(*PORT_RANGE)
        if any(p == port for p, _ in env.redis + env.standalone) or not (
            port_free(port) and port_free(port + 10000)
        ):
            continue
        node_dir = env.tmp / f"redis-{port}"
        node_dir.mkdir()
        logfile = node_dir / "redis.log"
        cmd = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            *(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-node-timeout", "5000"] if cluster else []),
            "--dir", str(node_dir), "--logfile", str(logfile),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        procs.append((port, proc))
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and proc.poll() is None:
            if redis_cli(port, "PING", timeout=3, check=False).strip() == "PONG":
                return port
            time.sleep(0.05)
        # Lost a race for the port (or failed otherwise): forget this one and try another port.
        stop_process(proc, f"redis-server :{port}", grace=3)
        procs.remove((port, proc))
        log(f"redis-server on {port} did not come up, retrying elsewhere: {tail(logfile, 3)}")
    raise BenchError("could not start a redis-server on any free port in 30000-31999")


def cluster_slot_owners(port: int) -> list[tuple[int, int, int]]:
    """(first slot, last slot, master port) ranges, from this node's CLUSTER NODES view."""
    out = redis_cli(port, "CLUSTER", "NODES", timeout=5, check=False)
    ranges = []
    for line in out.splitlines():
        parts = line.split()
        # <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot> ...
        if len(parts) < 8 or "master" not in parts[2].split(","):
            continue
        m = re.match(r"[^:]*:(\d+)@", parts[1])
        if not m:
            continue
        for tok in parts[8:]:
            if tok.startswith("["):  # importing/migrating marker, not ownership
                continue
            a, _, b = tok.partition("-")
            if a.isdigit() and (not b or b.isdigit()):
                ranges.append((int(a), int(b or a), int(m.group(1))))
    return ranges


def create_cluster(env: Env, rng: random.Random) -> list[int]:
    """Start MASTERS nodes, join them with `redis-cli --cluster create`, wait until all agree."""
    ports = [start_redis(env, rng) for _ in range(MASTERS)]
    log(f"redis-server nodes on {ports}; creating the cluster")
    run(
        ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
         "--cluster-replicas", "0", "--cluster-yes"],
        timeout=60,
    )  # fmt: skip
    end = time.monotonic() + 60
    while True:
        ok = True
        for p in ports:
            info = redis_cli(p, "CLUSTER", "INFO", timeout=5, check=False)
            covered = sum(b - a + 1 for a, b, _ in cluster_slot_owners(p))
            if (
                "cluster_state:ok" not in info
                or f"cluster_known_nodes:{MASTERS}" not in info
                or covered != SLOTS
            ):
                ok = False
                break
        if ok:
            return ports
        if time.monotonic() > end:
            raise BenchError("cluster did not reach cluster_state:ok on all nodes within 60s")
        time.sleep(0.2)


def ensure_binary(binary: Path, name: str = "meridian") -> None:
    """Build meridian with cargo if the default binary is missing (never the baseline)."""
    if binary.exists():
        return
    if name != "meridian" or binary.resolve() != DEFAULT_BINARY:
        raise BenchError(f"{name} binary not found: {binary}")
    log("target/release/meridian missing; running cargo build --release (up to 30 min)")
    run(["cargo", "build", "--release"], timeout=1800, cwd=REPO)
    if not binary.exists():
        raise BenchError(f"cargo build succeeded but {binary} is still missing")


def write_config(env: Env, seeds: list[int], workers: int, read_policy: bool = False) -> Path:
    """The meridian config file, shared by the meridian under test and the baseline.

    `listen: 127.0.0.1:0`, so each one gets its own ephemeral port. With `read_policy`, every
    node is placed in one DC and `local_dc` is set, so reads go through the DC-aware read policy
    engine instead of plain master routing.
    """
    cfg = env.tmp / "meridian.yaml"
    policy = (
        "local_dc: here\n"
        "datacenters: { here: { cidrs: [127.0.0.0/8] } }\n"
        "latency_ms: { here: { here: 0.3 } }\n"
    ) if read_policy else ""
    cfg.write_text(
        "listen: 127.0.0.1:0\n"
        f"workers: {workers}\n"
        "cluster:\n"
        f"  seeds: [{', '.join(f'127.0.0.1:{p}' for p in seeds)}]\n"
        + policy
    )
    return cfg


def make_tls_files(env: Env) -> tuple[Path, str]:
    """A CA and a certificate for 127.0.0.1 it signed (openssl), and the `tls:` YAML using them."""
    ca, cert, key = make_test_certs(env.tmp / "tls")
    return ca, f"tls:\n  listen: 127.0.0.1:0\n  cert: {cert}\n  key: {key}\n"


def extra_config(env: Env, cfg: Path, extra: Path | None, admin: bool, tls_yaml: str = "") -> Path:
    """`cfg` for the meridian under test only (not the baseline, which may predate these keys):
    its admin endpoint on an ephemeral port (per-request metrics on) or off (`--admin-off`),
    and the YAML of `extra` appended."""
    out = env.tmp / "meridian-test.yaml"
    text = cfg.read_text() + f"admin: {{ listen: \"{'127.0.0.1:0' if admin else ''}\" }}\n"
    if extra is not None:
        text += extra.read_text()
    text += tls_yaml
    out.write_text(text)
    return out


def start_meridian(env: Env, m: Meridian, cfg: Path) -> None:
    """Start meridian `m` (already registered in env) and wait for its `listening on` line."""
    m.log = env.tmp / f"{m.name}.log"
    with open(m.log, "wb") as errlog:
        m.proc = subprocess.Popen(
            [str(m.binary), "serve", "-c", str(cfg)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=errlog, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
    proc = m.proc
    assert proc.stdout is not None
    buf = b""
    end = time.monotonic() + 30
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise BenchError(
                f"{m.name} did not report `listening on` within 30s (exit={proc.poll()})\n"
                f"{tail(m.log)}"
            )
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode(errors="replace")
    match = re.fullmatch(r"meridian: listening on 127\.0\.0\.1:(\d+)", line.strip())
    if not match:
        raise BenchError(f"unexpected first stdout line from {m.name}: {line!r}")
    m.port = int(match.group(1))
    if m.tls_ca is not None:
        # The TLS line follows the plain one: benchmark the TLS port.
        end = time.monotonic() + 30
        rest = buf.split(b"\n", 1)[1]
        while b"tls listening on" not in rest or not rest.split(b"tls listening on", 1)[1].count(b"\n"):
            if time.monotonic() > end or proc.poll() is not None:
                raise BenchError(f"{m.name} did not report `tls listening on`\n{tail(m.log)}")
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                rest += os.read(proc.stdout.fileno(), 4096)
        tls_line = rest.split(b"tls listening on", 1)[1].split(b"\n", 1)[0].decode()
        m.port = int(tls_line.strip().rsplit(":", 1)[1])

    # Keep reading stdout so that meridian can never block on a full pipe.
    def drain() -> None:
        try:
            while os.read(proc.stdout.fileno(), 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, name=f"{m.name}-stdout", daemon=True).start()


def check_meridian_alive(env: Env) -> None:
    """Fail loudly (with its log) when a meridian or the standalone redis-server has exited."""
    for m in env.meridians():
        if m.proc is not None and m.proc.poll() is not None:
            raise BenchError(f"{m.name} exited with {m.proc.returncode}\n{tail(m.log)}")
    for port, proc in env.standalone:
        if proc.poll() is not None:
            raise BenchError(f"standalone redis-server :{port} exited with {proc.returncode}")


# ---------------------------------------------------------------------------------------------
# /proc readings
# ---------------------------------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[int, int]:
    """(utime, stime) of a process (all threads), in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # comm may contain spaces; skip past it
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all threads), in clock ticks."""
    return sum(cpu_split(pid))


def ctx_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of a process, summed over its threads.

    Voluntary: the thread went to sleep (nothing to do). Involuntary: it was preempted while it
    had work, e.g. by a process its own `sendto` woke on the same CPU. Both cost kernel time
    that shows in stime, and neither is a syscall of the process's own choosing.
    """
    vol = invol = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return vol, invol


def status_kb(pid: int, key: str) -> int | None:
    """A `kB` value (VmRSS, VmHWM) from /proc/PID/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler:
    """Samples VmRSS of a process every 200 ms in a daemon thread and keeps the maximum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        """Take one reading now."""
        kb = status_kb(self.pid, "VmRSS")
        if kb is not None:
            self.max_kb = max(self.max_kb, kb)

    def start(self) -> None:
        """Start sampling."""
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (bounded wait)."""
        self._stop.set()
        self._thread.join(timeout=2)


# ---------------------------------------------------------------------------------------------
# Benchmark rows
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the result table."""

    name: str
    pipeline: int
    test: str | None = None  # -t argument for the built-in tests
    command: list[str] | None = None  # explicit command (MGET)
    direct: bool = True  # False: cannot run against the cluster directly
    standalone: bool = True  # False: not part of the standalone row set
    requests: int = 0
    runs: dict[str, list[dict]] = field(default_factory=lambda: {s: [] for s in SIDES})
    errors: list[str] = field(default_factory=list)

    def sides(self, env: Env) -> list[str]:
        """The targets of one round, in rotation order: A (direct) B (meridian) C D."""
        return [
            s for s, on in zip(SIDES, (self.direct, True, env.baseline is not None,
                                       self.standalone and bool(env.standalone)))
            if on
        ]  # fmt: skip


def benchmark_cmd(args, row: Row, port: int, cluster: bool, requests: int,
                  auth: bool = False, tls_ca: Path | None = None) -> list[str]:
    """The redis-benchmark command line of one run (default output: it has the p99.9).

    `auth`: authenticate as --user/--password; `tls_ca`: connect over TLS trusting that CA
    (both for the meridian under test only)."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port)]
    if tls_ca is not None:
        cmd += ["--tls", "--cacert", str(tls_ca)]
    if cluster:
        cmd.append("--cluster")
    if auth and args.password is not None:
        cmd += (["--user", args.user] if args.user else []) + ["-a", args.password]
    cmd += ["-c", str(args.clients), "-n", str(requests), "-d", str(args.data_size)]
    if row.pipeline > 1:
        cmd += ["-P", str(row.pipeline)]
    if args.client_threads:
        cmd += ["--threads", str(args.client_threads)]
    if row.command:
        cmd += row.command
    else:
        cmd += ["-r", str(args.keyspace), "-t", row.test]
    return cmd


def run_timeout(args, requests: int) -> float:
    """Hard limit of one redis-benchmark run: generous, but a hung run cannot stall the bench."""
    return args.run_timeout or 30 + requests / 4000


def system_busy_ticks() -> int:
    """Busy (non-idle, non-iowait) clock ticks of all CPUs, from /proc/stat."""
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(vals) - vals[3] - vals[4]


def wait_for_idle(env: Env, max_wait: float, threshold: float = 0.2, quiet: bool = False) -> float:
    """Wait (up to max_wait s) until other processes use < threshold cores; returns the last load.

    Our own idle servers count as "other" here, but they use ~0.01 cores between runs.
    """
    end = time.monotonic() + max_wait
    while True:
        before, t0 = system_busy_ticks(), time.monotonic()
        time.sleep(1.0)
        load = (system_busy_ticks() - before) / CLK_TCK / (time.monotonic() - t0)
        if load < threshold or time.monotonic() >= end:
            return load
        if not quiet:
            log(f"machine busy ({load:.2f} cores used by other processes); waiting")
        check_meridian_alive(env)


def keyspace_hit_ratio(ports: list[int]) -> float | None:
    """keyspace_hits / (hits + misses) summed over the masters (GET and MGET hit real values?)."""
    hits = misses = 0
    for p in ports:
        info = redis_cli(p, "INFO", "stats", timeout=5, check=False)
        for name, val in re.findall(r"^keyspace_(hits|misses):(\d+)", info, flags=re.M):
            if name == "hits":
                hits += int(val)
            else:
                misses += int(val)
    return hits / (hits + misses) if hits + misses else None


def server_pids(env: Env) -> dict[str, list[int]]:
    """The processes whose CPU each target's runs are charged with (direct: all masters)."""
    pids = {"direct": [p.pid for _, p in env.redis]}
    for m in env.meridians():
        pids[m.name] = [m.pid]
    if env.standalone:
        pids["standalone"] = [p.pid for _, p in env.standalone]
    return pids


def own_ticks(env: Env) -> int:
    """CPU ticks of everything this benchmark runs: servers, meridians, finished redis-benchmarks."""
    total = 0
    for pid in [pid for pids in server_pids(env).values() for pid in pids]:
        try:
            total += cpu_ticks(pid)
        except (OSError, ValueError, IndexError):
            pass
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + round((ru.ru_utime + ru.ru_stime) * CLK_TCK)


def side_port(env: Env, side: str, seed_port: int) -> int:
    """The port a target is benchmarked on."""
    if side == "direct":
        return seed_port
    if side == "standalone":
        return env.standalone[0][0]
    m = env.meridian if side == "meridian" else env.baseline
    assert m is not None
    return m.port


def bench_once(args, env: Env, row: Row, side: str, seed_port: int, requests: int) -> dict:
    """One redis-benchmark run against `side`; with the CPU every server used per request.

    `<target>_cpu_us_per_req` is recorded for every target in every run: for the one driven it
    is the measurement, for the others (idle) a check that they really are idle. For direct
    runs `cluster_cpu_us_per_req` is the measurement.
    """
    tls_ca = env.meridian.tls_ca if side == "meridian" and env.meridian else None
    cmd = benchmark_cmd(args, row, side_port(env, side, seed_port), side == "direct", requests,
                        auth=side == "meridian", tls_ca=tls_ca)
    pids = server_pids(env)

    def ticks() -> dict[str, int]:
        return {name: sum(cpu_ticks(p) for p in ps) for name, ps in pids.items()}

    def sys_ticks() -> dict[str, int]:
        return {name: sum(cpu_split(p)[1] for p in ps) for name, ps in pids.items()}

    def switches() -> dict[str, tuple[int, int]]:
        out = {}
        for name, ps in pids.items():
            counts = [ctx_switches(p) for p in ps]
            out[name] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
        return out

    shares = side in ("meridian", "baseline") and args.workers > 1
    port = side_port(env, side, seed_port)
    workers_before = worker_requests(port) if shares else None
    before, kernel_before, switched_before = ticks(), sys_ticks(), switches()
    sys_before, own_before = system_busy_ticks(), own_ticks(env)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = run(cmd, run_timeout(args, requests), check=False)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, kernel_after, switched_after = ticks(), sys_ticks(), switches()
    sys_after, own_after = system_busy_ticks(), own_ticks(env)
    parsed = parse_benchmark_report(res.stdout)
    if res.returncode != 0 or not parsed or parsed[-1]["rps"] <= 0:
        raise BenchError(
            f"redis-benchmark failed (exit {res.returncode}): {' '.join(cmd)}\n"
            f"stdout: {res.stdout[-1000:]}\nstderr: {res.stderr[-1000:]}"
        )
    out = dict(parsed[-1])
    if workers_before is not None:
        after_w = worker_requests(port)
        if after_w is not None and len(after_w) == len(workers_before):
            out["worker_requests"] = [a - b for a, b in zip(after_w, workers_before)]
    out["side"] = side
    out["requests"] = requests
    out["wall_s"] = round(wall, 3)
    for name in pids:
        used = after[name] - before[name]
        key = "cluster" if name == "direct" else name
        out[f"{key}_cpu_ticks"] = used
        out[f"{key}_cpu_us_per_req"] = used * 1e6 / CLK_TCK / requests
        # The kernel's part of that CPU (stime): on loopback a sender also runs the receiver's
        # TCP input, so a proxy that sends each request and reply twice pays it twice.
        if used > 0:
            out[f"{key}_sys_share"] = (kernel_after[name] - kernel_before[name]) / used
        # Sleeps and preemptions per request: how often the scheduler stepped in.
        out[f"{key}_vol_switches_per_req"] = (
            switched_after[name][0] - switched_before[name][0]) / requests
        out[f"{key}_invol_switches_per_req"] = (
            switched_after[name][1] - switched_before[name][1]) / requests
    client_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out["client_cpu_us_per_req"] = client_s * 1e6 / requests
    out["client_cpu_cores"] = round(client_s / max(wall, 1e-3), 3)
    # CPU used by processes that are not part of the benchmark, in cores: noise indicator.
    foreign = (sys_after - sys_before) - (own_after - own_before)
    out["foreign_cpu_cores"] = round(max(foreign, 0) / CLK_TCK / max(wall, 1e-3), 3)
    return out


def worker_requests(port: int) -> list[int] | None:
    """Requests each meridian worker served so far (INFO workers), by worker id; None when the
    binary has no such section (an older baseline)."""
    text = redis_cli(port, "INFO", "workers", check=False)
    counts = {}
    for line in text.splitlines():
        name, _, fields = line.strip().partition(":")
        if not name.startswith("worker") or not name[6:].isdigit():
            continue
        for kv in fields.split(","):
            key, _, value = kv.partition("=")
            if key == "requests" and value.isdigit():
                counts[int(name[6:])] = int(value)
    if not counts:
        return None
    return [counts.get(i, 0) for i in range(max(counts) + 1)]


def own_cpu_key(side: str) -> str:
    """The per-run key holding the CPU per request of the target the run drove."""
    return "cluster_cpu_us_per_req" if side == "direct" else f"{side}_cpu_us_per_req"


def switch_key(side: str, kind: str) -> str:
    """The per-run key holding the driven target's voluntary or involuntary context switches
    per request (`kind`: vol, invol)."""
    return f"{'cluster' if side == 'direct' else side}_{kind}_switches_per_req"


def run_row(args, env: Env, row: Row, seed_port: int) -> None:
    """Rounds of A (direct) B (meridian) [C (baseline)] [D (standalone)] for one row.

    Errors are recorded, not raised.
    """
    for rnd in range(1, args.rounds + 1):
        for side in row.sides(env):
            if args.wait_idle > 0:
                wait_for_idle(env, min(args.wait_idle, 60), quiet=True)
            try:
                r = bench_once(args, env, row, side, seed_port, row.requests)
            except BenchError as exc:
                row.errors.append(f"round {rnd} {side}: {exc}")
                log(f"{row.name:<12} round {rnd} {side:<10} FAILED: {str(exc).splitlines()[0]}")
                check_meridian_alive(env)
                continue
            row.runs[side].append(r)
            p999 = f"{r['p999']:.3f}" if r["p999"] is not None else "n/a"
            log(
                f"{row.name:<12} round {rnd} {side:<10} {r['rps']:>11,.0f} rps  "
                f"p50 {r['p50']:.3f}  p99 {r['p99']:.3f}  p99.9 {p999} ms  "
                f"cpu {r[own_cpu_key(side)]:.2f} us/req  "
                f"switches/req {r[switch_key(side, 'vol')]:.3f} vol "
                f"{r[switch_key(side, 'invol')]:.3f} invol  "
                f"(client {r['client_cpu_cores']:.2f}, other {r['foreign_cpu_cores']:.2f} cores)"
            )
        check_meridian_alive(env)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    return a / b if a is not None and b else None


def summarize(row: Row, sides: list[str]) -> dict:
    """Medians over the rounds of one row.

    Per target `<side>_rps`, `_p50_ms`, `_p99_ms`, `_p999_ms`, `_client_cpu_us_per_req`,
    `_cluster_cpu_us_per_req` (the masters' CPU during that target's runs) and
    `<side>_cpu_us_per_req` (the driven process's own); then the ratios.
    """

    def med(side: str, key: str) -> float | None:
        return median([r[key] for r in row.runs[side] if r.get(key) is not None])

    out: dict = {"test": row.name, "requests_per_run": row.requests, "sides": sides}
    for side in SIDES:
        if side not in sides and side not in ("direct", "meridian"):
            continue
        out[f"{side}_rps"] = med(side, "rps")
        for q in ("p50", "p99", "p999"):
            out[f"{side}_{q}_ms"] = med(side, q)
        out[f"{side}_cluster_cpu_us_per_req"] = med(side, "cluster_cpu_us_per_req")
        out[f"{side}_client_cpu_us_per_req"] = med(side, "client_cpu_us_per_req")
        if side != "direct":
            out[f"{side}_cpu_us_per_req"] = med(side, own_cpu_key(side))
            out[f"{side}_sys_share"] = med(side, f"{side}_sys_share")
        for kind in ("vol", "invol"):
            out[f"{side}_{kind}_switches_per_req"] = med(side, switch_key(side, kind))
    out["ratio"] = ratio(out["meridian_rps"], out["direct_rps"])
    if "baseline_rps" in out:
        out["baseline_ratio"] = ratio(out["baseline_rps"], out["direct_rps"])
        out["cpu_ratio_vs_baseline"] = ratio(out["meridian_cpu_us_per_req"],
                                             out["baseline_cpu_us_per_req"])
    if "standalone_rps" in out:
        redis_cpu = out["standalone_cpu_us_per_req"]
        out["meridian_cpu_vs_standalone"] = ratio(out["meridian_cpu_us_per_req"], redis_cpu)
        if "baseline_cpu_us_per_req" in out:
            out["baseline_cpu_vs_standalone"] = ratio(out["baseline_cpu_us_per_req"], redis_cpu)
    # CPU (ms) each idle process used at most during one run aimed at another target.
    idle = {}
    for name in ("meridian", "baseline", "standalone"):
        key = f"{name}_cpu_ticks"
        vals = [r[key] for s in SIDES if s != name for r in row.runs[s] if key in r]
        if vals:
            idle[name] = max(vals) * 1000 / CLK_TCK
    out["idle_cpu_ms_max"] = idle
    # Each worker's share of the requests over all rounds (workers > 1 only).
    for side in ("meridian", "baseline"):
        per = [r["worker_requests"] for r in row.runs.get(side, []) if "worker_requests" in r]
        if per:
            sums = [sum(col) for col in zip(*per)]
            total = sum(sums)
            out[f"{side}_worker_shares"] = [n / total for n in sums] if total else None
    out["rounds_ok"] = {s: len(row.runs[s]) for s in SIDES if row.runs[s]}
    out["errors"] = row.errors
    return out


def pick_mget_keys(seed_port: int) -> list[tuple[str, int, int]]:
    """MGET_KEYS literal key names spread round-robin over the masters, each in its own slot."""
    owners = cluster_slot_owners(seed_port)

    def owner(slot: int) -> int:
        for a, b, p in owners:
            if a <= slot <= b:
                return p
        raise BenchError(f"slot {slot} has no owner in CLUSTER SLOTS")

    masters = sorted({p for _, _, p in owners})
    chosen: list[tuple[str, int, int]] = []
    used: set[int] = set()
    i = 0
    while len(chosen) < MGET_KEYS and i < 10_000:
        want = masters[len(chosen) % len(masters)]
        key = f"bench:mget:{i}"
        slot = key_slot(key)
        if slot not in used and owner(slot) == want:
            chosen.append((key, slot, want))
            used.add(slot)
        i += 1
    if len(chosen) < MGET_KEYS or len(used) < MGET_MIN_SLOTS:
        raise BenchError("could not pick MGET keys over enough slots")
    return chosen


def populate(args, env: Env, seed_port: int, mget_keys: list[tuple[str, int, int]]) -> None:
    """Fill the keyspaces so that GET and MGET hit existing values; check both meridians read them."""
    value = "x" * args.data_size
    for key, _, master in mget_keys:
        redis_cli(master, "SET", key, value)
    keys = [k for k, _, _ in mget_keys]
    for m in env.meridians():
        got = redis_cli(m.port, "MGET", *keys).splitlines()
        if got != [value] * len(keys):
            raise BenchError(f"{m.name} MGET sanity check failed: got {got!r}")
        if redis_cli(m.port, "SET", "bench:probe", value).strip() != "OK" or (
            redis_cli(m.port, "GET", "bench:probe").strip() != value
        ):
            raise BenchError(f"{m.name} SET/GET sanity check failed")

    # Random-key runs: direct cluster mode uses `key:{tag}:N` per node, plain mode `key:N`,
    # so each keyspace is filled once (~5 writes per key: > 99% of keys present). The baseline
    # shares meridian's (same cluster, same keys); the standalone server has its own.
    fill = Row("fill", 16, test="set")
    sides = [("direct", 5 * MASTERS * args.keyspace), ("meridian", 5 * args.keyspace)]
    if env.standalone:
        sides.append(("standalone", 5 * args.keyspace))
    for side, n in sides:
        r = bench_once(args, env, fill, side, seed_port, n)
        log(f"filled keyspace {side}: {n:,} SETs at {r['rps']:,.0f} rps")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def binary_info(binary: Path, repo: Path) -> dict:
    """Version, path, mtime of a meridian binary and the git HEAD of `repo` (or None)."""
    commit = run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], 10, check=False)
    return {
        "version": run([str(binary), "--version"], 10, check=False).stdout.strip(),
        "binary": str(binary),
        "mtime": dt.datetime.fromtimestamp(binary.stat().st_mtime, dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip() if commit.returncode == 0 else None,
    }


def machine_info(binary: Path, baseline: Path | None) -> dict:
    """nproc, CPU model, kernel, redis and meridian (and baseline) versions, date."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rv = run(["redis-server", "--version"], 10, check=False).stdout
    m = re.search(r"v=(\S+)", rv)
    mer = binary_info(binary, REPO)
    bench_v = run(["redis-benchmark", "--version"], 10, check=False).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "redis_server": m.group(1) if m else rv.strip(),
        "redis_benchmark": bench_v,
        "meridian": mer["version"],
        "binary": mer["binary"],
        "binary_mtime": mer["mtime"],
        "meridian_commit": mer["commit"],
        # Its commit is the git HEAD of the checkout the binary lies in, if any.
        "baseline": binary_info(baseline, baseline.resolve().parent) if baseline else None,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt_rps(v: float | None) -> str:
    return f"{v:,.0f}" if v else "n/a"


def fmt_ms(v: float | None) -> str:
    return f"{v:.3f}" if v is not None else "n/a"


def fmt_num(v: float | None, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if v is not None else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(summary: list[dict]) -> list[str]:
    """Issue 2 item 11 and issue 11 targets, each with a verdict."""
    out = []
    for s in summary:
        name = s["test"]
        if name in TARGET_RATIO and s["ratio"] is not None:
            ok = s["ratio"] >= TARGET_RATIO[name]
            out.append(f"{name}: ratio {s['ratio']:.2f} >= {TARGET_RATIO[name]:.1f}: {verdict(ok)}")
        if name in TARGET_CPU_US and s["meridian_cpu_us_per_req"] is not None:
            cpu, lim = s["meridian_cpu_us_per_req"], TARGET_CPU_US[name]
            out.append(f"{name}: CPU {cpu:.2f} <= {lim} us/req: {verdict(cpu <= lim)}")
        if name in TARGET_CPU_VS_REDIS and s.get("meridian_cpu_vs_standalone") is not None:
            r, lim = s["meridian_cpu_vs_standalone"], TARGET_CPU_VS_REDIS[name]
            out.append(f"{name}: CPU / standalone redis CPU {r:.2f} <= {lim} (issue 11): "
                       f"{verdict(r <= lim)}")
        if name.startswith("MGET") and s["meridian_rps"] is not None:
            ok = s["meridian_rps"] >= TARGET_MGET_RPS
            out.append(f"{name}: {s['meridian_rps']:,.0f} >= {TARGET_MGET_RPS:,} rps: {verdict(ok)}")
            if s["meridian_cpu_us_per_req"] is not None:
                cpu = s["meridian_cpu_us_per_req"]
                out.append(f"{name}: CPU {cpu:.2f} us per MGET (no own target; the unpipelined "
                           f"<= {TARGET_CPU_US['GET']} would be {'met' if cpu <= TARGET_CPU_US['GET'] else 'missed'})")
    return out


def report(args, info: dict, summary: list[dict], rss: dict, mget_keys, cmdline: str,
           noise: dict) -> str:
    """The Markdown report printed on stdout."""
    base = info["baseline"]
    standalone = any("standalone" in s["sides"] for s in summary)
    sides = [s for s in SIDES if any(s in row["sides"] for row in summary)]
    rotation = " ".join(f"{'ABCD'[i]}({SIDE_LABEL[s]})" for i, s in enumerate(sides))
    idle = {}
    for s in summary:
        for name, ms in s["idle_cpu_ms_max"].items():
            idle[name] = max(idle.get(name, 0.0), ms)
    lines = [
        f"meridian end-to-end benchmark — {info['date']}",
        "",
        *(
            [f"**Warning: other processes used {noise['median']:.2f} of {info['nproc']} cores "
             "during the runs; the numbers are distorted (use --wait-idle on a quiet machine).**",
             ""]
            if noise["median"] > 0.25 else []
        ),
        f"- machine: {info['nproc']} CPUs, {info['cpu_model']}, Linux {info['kernel']}",
        f"- redis-server {info['redis_server']}, 3 masters, no replicas; "
        f"{info['meridian']} (binary built {info['binary_mtime']}, git HEAD "
        f"{info['meridian_commit'] or 'n/a'}), workers: {args.workers}",
        *(
            [f"- baseline: {base['version']}, {base['binary']} (built {base['mtime']}, git HEAD "
             f"of its checkout {base['commit'] or 'n/a'}), same config, own port"]
            if base else []
        ),
        *(
            ["- standalone redis: one redis-server without cluster mode (no persistence), "
             "SET/GET rows only"]
            if standalone else []
        ),
        f"- redis-benchmark -c {args.clients} -d {args.data_size}, -r {args.keyspace} for GET/SET; "
        f"{args.rounds} rounds of {rotation} in turn, medians shown",
        f"- requests per run: {args.requests:,} unpipelined, {args.requests * 5:,} with -P 16",
        (f"- redis-benchmark --threads {args.client_threads} on all sides"
         if args.client_threads else
         f"- redis-benchmark threads: its defaults, {MASTERS} with --cluster (one per master), "
         "1 otherwise"),
        f"- command: `{cmdline}`",
        f"- load average before the run: {info['loadavg_before']}; CPU used by other processes "
        f"during the runs: median {noise['median']:.2f}, max {noise['max']:.2f} cores",
        f"- read hit ratio on the cluster (keyspace_hits / hits+misses): "
        f"{info['hit_ratio'] * 100:.1f}%" if info.get("hit_ratio") is not None else "- hit ratio: n/a",
        "- idle check, most CPU an idle target used during one run aimed at another: "
        + ", ".join(f"{SIDE_LABEL[n]} {ms:.0f} ms" for n, ms in idle.items())
        + f" (1 tick = {1000 / CLK_TCK:.0f} ms)",
        "",
        "| test | target | rps | ÷ direct | p50 ms | p99 ms | p99.9 ms | CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        for side in s["sides"]:
            cpu = s["direct_cluster_cpu_us_per_req"] if side == "direct" else s[f"{side}_cpu_us_per_req"]
            lines.append(
                f"| {s['test']} | {SIDE_LABEL[side]} | {fmt_rps(s[f'{side}_rps'])} "
                f"| {fmt_num(ratio(s[f'{side}_rps'], s['direct_rps']))} "
                f"| {fmt_ms(s[f'{side}_p50_ms'])} | {fmt_ms(s[f'{side}_p99_ms'])} "
                f"| {fmt_ms(s[f'{side}_p999_ms'])} | {fmt_num(cpu)} |"
            )
    lines += [
        "",
        "CPU µs/req: utime+stime from /proc/PID/stat around each run, per request, of the "
        "process(es) the load went to: the 3 masters together for direct, meridian's own process "
        "(not the cluster behind it) for meridian and baseline, the redis-server for standalone "
        "redis. p99.9: the first step of redis-benchmark's latency percentile distribution at or "
        "above 99.9% of the requests (at most the p99.902).",
    ]
    if base or standalone:
        head = ["test", "meridian µs/req"]
        if base:
            head += ["baseline µs/req", "meridian ÷ baseline"]
        if standalone:
            head += ["standalone redis µs/req", "meridian ÷ redis"]
            head += ["baseline ÷ redis"] if base else []
            head += ["target ÷ redis", "kernel share meridian / redis",
                     "sleeps + preemptions per req meridian / redis"]
        lines += ["", "CPU per request:", "", "| " + " | ".join(head) + " |",
                  "|---|" + "---:|" * (len(head) - 1)]
        for s in summary:
            cells = [s["test"], fmt_num(s["meridian_cpu_us_per_req"])]
            if base:
                cells += [fmt_num(s.get("baseline_cpu_us_per_req")),
                          fmt_num(s.get("cpu_ratio_vs_baseline"))]
            if standalone:
                cells += [fmt_num(s.get("standalone_cpu_us_per_req")),
                          fmt_num(s.get("meridian_cpu_vs_standalone"))]
                cells += [fmt_num(s.get("baseline_cpu_vs_standalone"))] if base else []
                lim = TARGET_CPU_VS_REDIS.get(s["test"])
                cells += [f"≤ {lim}" if lim else "n/a"]
                shares = [s.get("meridian_sys_share"), s.get("standalone_sys_share")]
                cells += [" / ".join(f"{v * 100:.0f}%" if v is not None else "n/a"
                                     for v in shares)]
                switched = []
                for side in ("meridian", "standalone"):
                    vol = s.get(f"{side}_vol_switches_per_req")
                    invol = s.get(f"{side}_invol_switches_per_req")
                    switched.append(f"{vol:.2f} + {invol:.2f}" if vol is not None
                                    and invol is not None else "n/a")
                cells += [" / ".join(switched)]
            lines.append("| " + " | ".join(cells) + " |")
    if args.workers > 1:
        lines += ["", f"Requests per worker (INFO workers, all rounds; target 40–60% each with "
                  f"{args.workers} workers):", ""]
        for s in summary:
            for side in ("meridian", "baseline"):
                shares = s.get(f"{side}_worker_shares")
                if shares:
                    cells = ", ".join(f"worker{i} {v * 100:.1f}%" for i, v in enumerate(shares))
                    lines.append(f"- {s['test']}, {SIDE_LABEL[side]}: {cells}")
    keys = ", ".join(f"{k} (slot {sl})" for k, sl, _ in mget_keys)
    rss_line = (f"meridian RSS: max sampled VmRSS {rss['max_rss_kb'] / 1024:.1f} MiB, "
                f"peak VmHWM {(rss['hwm_kb'] or 0) / 1024:.1f} MiB")
    if "baseline" in rss:
        b = rss["baseline"]
        rss_line += (f"; baseline: {b['max_rss_kb'] / 1024:.1f} MiB, "
                     f"{(b['hwm_kb'] or 0) / 1024:.1f} MiB")
    lines += [
        "",
        f"MGET: 10 keys over {len({sl for _, sl, _ in mget_keys})} slots on all {MASTERS} masters "
        f"({keys}). Direct is n/a: `redis-benchmark --cluster` sends a command to one node and "
        "cannot run a cross-slot MGET (CROSSSLOT); through meridian it is split by slot.",
        *(
            ["Caveat: with more than one redis-benchmark thread (--cluster uses one per master "
             "unless told otherwise), idle threads stop only on a 250 ms timer, so each such run "
             "is rounded up to a multiple of 250 ms and its rps understated (see wall_s in --json)."]
            if args.client_threads != 1 else []
        ),
        rss_line + ".",
        "",
        "Targets (issue 2, item 11; issue 11 for CPU / standalone redis):",
        *[f"- {t}" for t in targets(summary)],
    ]
    errors = [f"- {s['test']}: {e.splitlines()[0]}" for s in summary for e in s["errors"]]
    if errors:
        lines += ["", "Failed runs:", *errors]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str]) -> argparse.Namespace:
    def rounds(v: str) -> int:
        n = int(v)
        if n < 3:
            raise argparse.ArgumentTypeError("at least 3 rounds (the median needs them)")
        return n

    def non_negative(v: str) -> int:
        n = int(v)
        if n < 0:
            raise argparse.ArgumentTypeError("must be >= 0")
        return n

    def positive(v: str) -> int:
        n = int(v)
        if n < 1:
            raise argparse.ArgumentTypeError("must be >= 1")
        return n

    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: scripts/bench_e2e.py --quick   |   scripts/bench_e2e.py --json bench.json"
        "   |   scripts/bench_e2e.py --baseline ../old/target/release/meridian",
    )
    p.add_argument("--binary", type=Path, default=DEFAULT_BINARY,
                   help="meridian binary (default: target/release/meridian, built if missing)")
    p.add_argument("--baseline", type=Path, default=None, metavar="BINARY",
                   help="a second meridian binary (e.g. an older build) to compare with: started "
                   "on its own port in front of the same cluster with the same config and run in "
                   "the same rotation (direct, meridian, baseline, ...); adds its rps, latencies, "
                   "CPU per request and the ratio meridian/baseline of CPU per request")
    p.add_argument("--no-standalone", dest="standalone", action="store_false",
                   help="skip the standalone row set (a non-cluster redis-server started by the "
                   "script, driven with the SET/GET loads, whose CPU per request meridian's is "
                   "divided by)")
    p.add_argument("--extra-yaml", type=Path, default=None, metavar="FILE",
                   help="YAML appended to the config of the meridian under test only (e.g. users:)")
    p.add_argument("--user", default=None,
                   help="user the load to the meridian under test authenticates as (with "
                   "--password; e.g. a user of --extra-yaml, to measure the cost of users)")
    p.add_argument("--password", default=None,
                   help="password for --user (or for AUTH <password> without --user)")
    p.add_argument("--tls", action="store_true",
                   help="clients reach the meridian under test over TLS: a CA and certificate "
                   "are made with openssl, a `tls:` listener is added to its config and "
                   "redis-benchmark runs with --tls (the baseline stays plain: TLS vs plain, "
                   "same run with --baseline set to the same binary)")
    p.add_argument("--workers", type=positive, default=1, help="meridian workers (default 1)")
    p.add_argument("--read-policy", action="store_true",
                   help="route reads through the DC-aware read policy engine (local_dc set, "
                        "one DC) to compare its CPU cost with plain master routing")
    p.add_argument("--admin-off", action="store_true",
                   help="run meridian without its admin endpoint, so without per-request "
                        "metrics, to compare their CPU cost")
    p.add_argument("--rounds", type=rounds, default=3, help="rounds per row, each running every target once, >= 3 (default 3)")
    p.add_argument("--requests", type=positive, default=None,
                   help="requests per unpipelined run (default 200000; --quick: 20000); "
                   "pipelined runs use 5x this")
    p.add_argument("--clients", type=positive, default=50, help="redis-benchmark -c (default 50)")
    p.add_argument("--data-size", type=positive, default=3, help="value size, bytes (default 3)")
    p.add_argument("--keyspace", type=positive, default=100_000,
                   help="redis-benchmark -r for GET/SET (default 100000)")
    p.add_argument("--client-threads", type=non_negative, default=1, metavar="N",
                   help="redis-benchmark --threads N on all sides (default 1: the same client "
                   "on all sides, and exact timing; 0 = redis-benchmark's own default, which is "
                   "one thread per master with --cluster, whose idle threads stop only on a "
                   "250 ms timer and so round every direct run up to a multiple of 250 ms)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: same rows and >= 3 rounds, but 10x fewer requests")
    p.add_argument("--run-timeout", type=float, default=None,
                   help="hard limit per redis-benchmark run, s (default 30 + requests/4000)")
    p.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                   help="before measuring, wait up to this long for other processes to use "
                   "< 0.2 cores, and up to min(this, 60 s) again before every run "
                   "(default 0: do not wait)")
    p.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = p.parse_args(argv)
    if args.requests is None:
        args.requests = 20_000 if args.quick else 200_000
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"bench_e2e: {tool} not found in PATH (apt-get install redis-server redis-tools)",
                  file=sys.stderr)  # fmt: skip
            return 2

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    env = Env(tmp=Path(tempfile.mkdtemp(prefix="meridian-bench-")))
    samplers: list[RssSampler] = []
    rng = random.Random()
    cmdline = " ".join(["scripts/bench_e2e.py", *argv])
    loadavg_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        ensure_binary(args.binary)
        if args.baseline:
            ensure_binary(args.baseline, "baseline")
        ports = create_cluster(env, rng)
        if args.standalone:
            port = start_redis(env, rng, cluster=False)
            log(f"standalone redis-server pid {env.standalone[0][1].pid} on 127.0.0.1:{port}")
        cfg = write_config(env, ports, args.workers, args.read_policy)
        env.meridian = Meridian("meridian", args.binary)
        if args.baseline:
            env.baseline = Meridian("baseline", args.baseline)
        tls_yaml = ""
        if args.tls:
            env.meridian.tls_ca, tls_yaml = make_tls_files(env)
        for m in env.meridians():
            start_meridian(env, m, extra_config(env, cfg, args.extra_yaml, not args.admin_off, tls_yaml) if m is env.meridian else cfg)
            log(f"{m.name} ({m.binary}) pid {m.pid} listening on 127.0.0.1:{m.port}")
        if args.wait_idle > 0:
            load = wait_for_idle(env, args.wait_idle)
            log(f"other processes use {load:.2f} cores; starting")
            check_meridian_alive(env)
        samplers = [RssSampler(m.pid) for m in env.meridians()]
        for sampler in samplers:
            sampler.start()
        seed = ports[0]
        mget_keys = pick_mget_keys(seed)
        populate(args, env, seed, mget_keys)

        unp, pip = args.requests, args.requests * 5
        rows = [
            Row("SET", 1, test="set", requests=unp),
            Row("GET", 1, test="get", requests=unp),
            Row("SET -P 16", 16, test="set", requests=pip),
            Row("GET -P 16", 16, test="get", requests=pip),
            Row("MGET 10 keys", 1, command=["MGET", *[k for k, _, _ in mget_keys]],
                direct=False, standalone=False, requests=unp),
        ]  # fmt: skip
        for row in rows:
            run_row(args, env, row, seed)
        for sampler in samplers:
            sampler.stop()
            sampler.sample()
        summary = [summarize(r, r.sides(env)) for r in rows]
        rss = {"max_rss_kb": samplers[0].max_kb, "hwm_kb": status_kb(env.meridian.pid, "VmHWM")}
        if env.baseline:
            rss["baseline"] = {"max_rss_kb": samplers[1].max_kb,
                               "hwm_kb": status_kb(env.baseline.pid, "VmHWM")}
        info = machine_info(args.binary, args.baseline)
        loads = [r["foreign_cpu_cores"] for row in rows for runs in row.runs.values() for r in runs]
        noise = {"median": median(loads) or 0.0, "max": max(loads, default=0.0)}
        info["loadavg_before"] = loadavg_before
        info["hit_ratio"] = keyspace_hit_ratio(ports)
        print(report(args, info, summary, rss, mget_keys, cmdline, noise), flush=True)
        if args.json:
            raw = {
                "machine": info,
                "command": cmdline,
                "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "cluster_ports": ports,
                "standalone_port": env.standalone[0][0] if env.standalone else None,
                "meridian_ports": {m.name: m.port for m in env.meridians()},
                "mget_keys": [{"key": k, "slot": s, "master_port": p} for k, s, p in mget_keys],
                "meridian_rss": rss,
                "foreign_cpu_cores": noise,
                "clk_tck": CLK_TCK,
                "summary": summary,
                "runs": {r.name: {s: runs for s, runs in r.runs.items() if runs} for r in rows},
            }
            args.json.write_text(json.dumps(raw, indent=2) + "\n")
            log(f"raw numbers written to {args.json}")
        failed = any(r.errors for r in rows)
        return 1 if failed else 0
    except BenchError as exc:
        print(f"bench_e2e: {exc}", file=sys.stderr)
        for m in env.meridians():
            if m.proc is None:
                continue
            state = m.proc.poll()
            print(f"bench_e2e: {m.name} {'is running' if state is None else f'exited with {state}'}"
                  f"; last lines of its log:\n{tail(m.log, 30)}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"bench_e2e: interrupted ({exc}); cleaning up", file=sys.stderr)
        return 130
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        print(f"bench_e2e: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the teardown short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for sampler in samplers:
            sampler.stop()
        env.teardown()
        log("cluster, meridian(s) and redis-servers stopped, temp dir removed")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
