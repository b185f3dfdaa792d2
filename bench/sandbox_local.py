"""Benchmark of the local (bubblewrap) backend. Not a timed test.

Measures, in one process run:

- ``local_start_ms``: median of ``LocalSandbox.start()`` up to the first command's
  result (``true``), over ``--starts`` fresh sandboxes (stop not counted);
- ``local_exec_ms``: median of ``exec(["true"])`` over ``--execs`` calls in one sandbox;
- the raw baseline: a bare ``bwrap --unshare-all --ro-bind / / true`` spawned per call,
  i.e. what each command would cost without the persistent channel, and the ratio.

Prints the figures, then a last line of JSON. ``bench_local()`` returns that dict
(the lead merges it into ``bench/sandbox.py``).

    python bench/sandbox_local.py [--starts 20] [--execs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from typing import Any

import structlog

from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.sandbox.local import LocalSandbox, bwrap_binary


async def start_to_result_ms(n: int, backend: str = "local") -> list[float]:
    """``n`` times: a fresh sandbox of ``backend`` from ``start()`` to a ``true`` result."""
    out = []
    for i in range(n):
        sb = create_sandbox(backend, SandboxSpec(), run_id="bench", episode_id=f"start{i}")
        t0 = time.perf_counter()
        try:
            await sb.start()
            result = await sb.exec(["true"])
            out.append((time.perf_counter() - t0) * 1000)
            assert result.ok, result
        finally:
            await sb.stop()
    return out


async def _exec_ms(n: int) -> list[float]:
    out = []
    async with LocalSandbox(SandboxSpec(), run_id="bench", episode_id="exec") as sb:
        for _ in range(5):  # warm up
            await sb.exec(["true"])
        for _ in range(n):
            t0 = time.perf_counter()
            result = await sb.exec(["true"])
            out.append((time.perf_counter() - t0) * 1000)
            assert result.ok, result
    return out


def _raw_bwrap_ms(n: int) -> list[float]:
    bwrap = str(bwrap_binary())
    argv = [
        bwrap,
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
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_local(starts: int = 20, execs: int = 200) -> dict[str, Any]:
    """Run the local benchmark; returns medians in milliseconds and the ratio."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    start = statistics.median(asyncio.run(start_to_result_ms(starts)))
    exec_ = statistics.median(asyncio.run(_exec_ms(execs)))
    raw = statistics.median(_raw_bwrap_ms(max(5, starts)))
    return {
        "local_start_ms": round(start, 2),
        "local_exec_ms": round(exec_, 2),
        "raw_bwrap_true_ms": round(raw, 2),
        "local_exec_ratio_vs_bwrap_run": round(exec_ / raw, 3),
        "starts": starts,
        "execs": execs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--execs", type=int, default=200)
    args = parser.parse_args()
    result = bench_local(args.starts, args.execs)
    start, n = result["local_start_ms"], args.starts
    print(f"local start to first result: {start:.1f} ms (median of {n})")
    print(f"local exec true:             {result['local_exec_ms']:.2f} ms (median of {args.execs})")
    print(f"raw bwrap true per call:     {result['raw_bwrap_true_ms']:.1f} ms")
    print(f"exec ratio vs raw bwrap run: {result['local_exec_ratio_vs_bwrap_run']:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
