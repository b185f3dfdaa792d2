"""Benchmark of the local (bubblewrap) backend. Not a timed test.

Measures, in one process run:

- ``local_start_ms``: median of a fresh default sandbox (the network sentinel on) from
  ``start()`` to the first command's result (``true``), over ``--starts`` sandboxes
  (stop not counted);
- ``bwrap_true_ms``: bubblewrap's own start, ``bwrap --unshare-all --ro-bind / /
  --proc /proc --dev /dev --die-with-parent true`` spawned and waited for, measured
  interleaved with the starts above (one of each per round, so load hits both alike);
- ``local_start_ratio_vs_bwrap`` = the two (target <= 5);
- ``local_exec_ms``: median of ``exec(["true"])`` over ``--execs`` calls in one sandbox,
  and ``local_exec_ratio_vs_bwrap_run`` (what each command would cost without the
  persistent channel);
- ``local_first_start_ms``: the first start of the process (code loading, staging of
  bwrap and the guest programs), not in the median.

Prints the figures, then a last line of JSON. ``bench_local()`` returns that dict
(``bench/sandbox.py`` merges it).

    python3 bench/sandbox_local.py [--starts 20] [--execs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hazmat

import structlog

from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.sandbox.local import bwrap_binary


async def one_start_ms(backend: str, i: int) -> float:
    """A fresh default sandbox of ``backend`` from ``start()`` to a ``true`` result (ms)."""
    sb = create_sandbox(backend, SandboxSpec(), run_id="bench", episode_id=f"start{i}")
    t0 = time.perf_counter()
    try:
        await sb.start()
        result = await sb.exec(["true"])
        took = (time.perf_counter() - t0) * 1000
        assert result.ok, result
    finally:
        await sb.stop()
    return took


async def start_to_result_ms(n: int, backend: str = "local") -> list[float]:
    """``n`` times: a fresh sandbox of ``backend`` from ``start()`` to a ``true`` result."""
    return [await one_start_ms(backend, i) for i in range(n)]


def bwrap_true_ms() -> float:
    """bubblewrap's own start: a bare ``bwrap ... true`` spawned and waited for (ms)."""
    argv = [
        str(bwrap_binary()),
        "--unshare-all",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--die-with-parent",
        "true",
    ]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, timeout=30)
    return (time.perf_counter() - t0) * 1000


async def _starts(n: int) -> tuple[float, list[float], list[float]]:
    first = await one_start_ms("local", -1)  # loads code, stages shared files
    bwrap_true_ms()
    local, raw = [], []
    for i in range(n):
        local.append(await one_start_ms("local", i))
        raw.append(bwrap_true_ms())
    return first, local, raw


async def _exec_ms(n: int) -> list[float]:
    out = []
    async with create_sandbox("local", SandboxSpec(), run_id="bench", episode_id="exec") as sb:
        for _ in range(5):  # warm up
            await sb.exec(["true"])
        for _ in range(n):
            t0 = time.perf_counter()
            result = await sb.exec(["true"])
            out.append((time.perf_counter() - t0) * 1000)
            assert result.ok, result
    return out


def bench_local(starts: int = 20, execs: int = 200) -> dict[str, Any]:
    """Run the local benchmark; returns medians in milliseconds and the ratios."""
    first, local, raw = asyncio.run(_starts(starts))
    exec_ = statistics.median(asyncio.run(_exec_ms(execs)))
    start, bwrap = statistics.median(local), statistics.median(raw)
    return {
        "local_first_start_ms": round(first, 2),
        "local_start_ms": round(start, 2),
        "bwrap_true_ms": round(bwrap, 2),
        "local_start_ratio_vs_bwrap": round(start / bwrap, 3),
        "local_exec_ms": round(exec_, 2),
        "local_exec_ratio_vs_bwrap_run": round(exec_ / bwrap, 3),
        "local_starts": starts,
        "local_execs": execs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--execs", type=int, default=200)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = bench_local(args.starts, args.execs)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
