#!/usr/bin/env python3
"""Per-function instructions per request from two callgrind runs of the same load.

`scripts/cost_instructions.py --keep` leaves, per variant, a run serving N requests
(`<test>-<i>-a.callgrind`) and one serving 2N (`...-b.callgrind`). Their difference, divided by
N, is what one request costs, function by function, start-up and shutdown cancelling out:

    scripts/callgrind_diff.py A.callgrind B.callgrind N [--inclusive] [--top 60]

Inclusive counts (a function with everything it calls) show where the time goes by layer;
exclusive ones (the default) show the hot functions themselves. Needs callgrind_annotate.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys


def per_function(path: str, inclusive: bool) -> dict[str, int]:
    """Instructions by function name (file:function) in one callgrind output file."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}",
         path],
        capture_output=True, text=True, check=True).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)", line)
        if not m or m.group(2).startswith("=>") or "PROGRAM TOTALS" in m.group(2):
            continue
        name = re.sub(r"\s*\[.*\]$", "", m.group(2))
        name = re.sub(r"^/rustc/\w+/library/", "", name)
        name = re.sub(r"^.*/registry/src/[^/]+/", "", name)
        counts[name] = counts.get(name, 0) + int(m.group(1).replace(",", ""))
    return counts


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("small", help="callgrind file of the run serving N requests")
    p.add_argument("big", help="callgrind file of the run serving 2N requests")
    p.add_argument("n", type=int, help="N")
    p.add_argument("--inclusive", action="store_true", help="count callees in")
    p.add_argument("--top", type=int, default=60, help="rows shown (default 60)")
    args = p.parse_args(argv)
    a = per_function(args.small, args.inclusive)
    b = per_function(args.big, args.inclusive)
    rows = sorted(((b.get(k, 0) - a.get(k, 0)) / args.n, k) for k in set(a) | set(b))
    for per, name in reversed(rows[-args.top:]):
        print(f"{per:9.1f}  {name[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
