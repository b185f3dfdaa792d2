"""Benchmark of the sandboxes against raw baselines. Not a timed test.

Measured in one process run, medians in milliseconds, on this checkout's code:

- ``hazmat_exec_ms``: ``DockerSandbox.exec(["true"])`` over the attached channel;
  ``docker_exec_cli_ms``: ``docker exec CONTAINER true`` (the CLI, a subprocess per
  call) on a container of the same kind (the box of a running hazmat sandbox);
  ``docker_exec_sdk_ms``: the same through the Python SDK (``exec_create`` +
  ``exec_start`` + ``exec_inspect``); ``exec_ratio_vs_docker_exec`` = hazmat exec / CLI
  docker exec (target <= 0.2), ``exec_ratio_vs_docker_exec_sdk`` against the SDK;
- ``hazmat_start_ms``: a fresh default ``DockerSandbox`` (the network sentinel on) from
  ``start()`` to the first command's result (stop not counted); ``docker_run_ms``:
  ``docker run --rm --network none IMAGE true`` (CLI), measured interleaved (one of each
  per round); ``start_ratio_vs_docker_run`` (target <= 1.3); ``sentinel`` says how the
  sentinel ran (``host``: a host process in the box's namespace; ``sidecar``: a container);
- ``warm_start_ms``: the same start through a warm pool (``WarmPool.acquire`` of a
  default spec whose pooled sandbox is ready, to the first result; the pool's
  replacement start is not waited for, then the sandbox is stopped before the next
  round) and ``warm_start_ratio_vs_docker_run`` (target <= 0.2);
- the local backend (``bench/sandbox_local.py``): ``local_start_ms`` against
  bubblewrap's own start ``bwrap_true_ms`` in the same run,
  ``local_start_ratio_vs_bwrap`` (target <= 5), ``local_exec_ms``.

``*_first_start_ms`` is the first start of the process (code loading, staging), not in
the medians. Prints the figures, then a last line of JSON.

    python3 bench/sandbox.py [--starts 10] [--execs 100]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from sandbox_local import bench_local, one_start_ms

from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.sandbox.docker.image import build_image, docker_client
from hazmat.sandbox.pool import WarmPool


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _docker_run_ms(image: str) -> float:
    t0 = time.perf_counter()
    labels = ["--label", "hazmat=1", "--label", "hazmat.run=bench"]
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", *labels, image, "true"], check=True
    )
    return (time.perf_counter() - t0) * 1000


async def _execs(n: int) -> tuple[dict[str, list[float]], str]:
    api = docker_client().api
    res: dict[str, list[float]] = {"hazmat": [], "cli": [], "sdk": []}
    async with create_sandbox("docker", SandboxSpec(), run_id="bench", episode_id="exec") as sb:
        info = sb.info()
        cid = info["container"]
        for _ in range(5):
            await sb.exec(["true"])
        for _ in range(n):
            t0 = time.perf_counter()
            result = await sb.exec(["true"])
            res["hazmat"].append((time.perf_counter() - t0) * 1000)
            assert result.ok
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", cid, "true"], check=True)
            res["cli"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            exec_id = api.exec_create(cid, ["true"])["Id"]
            api.exec_start(exec_id)
            assert api.exec_inspect(exec_id)["ExitCode"] == 0
            res["sdk"].append((time.perf_counter() - t0) * 1000)
    sentinel = info.get("sentinel")
    mode = sentinel.get("mode", "sidecar") if isinstance(sentinel, dict) else str(sentinel)
    return res, mode


async def _starts(n: int, image: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first": [], "hazmat": [], "docker_run": []}
    out["first"].append(await one_start_ms("docker", -1))
    _docker_run_ms(image)
    for i in range(n):
        out["hazmat"].append(await one_start_ms("docker", i))
        out["docker_run"].append(_docker_run_ms(image))
    return out


async def _warm_starts(n: int, image: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"warm": [], "docker_run": []}
    spec = SandboxSpec()
    async with WarmPool("docker", 1, run_id="bench") as pool:
        for i in range(n):
            await pool.warm([spec], wait=120.0)  # a pooled sandbox is ready (not timed)
            t0 = time.perf_counter()
            sb, warm = await pool.acquire(spec, episode_id=f"warm{i}")
            try:
                result = await sb.exec(["true"])
                took = (time.perf_counter() - t0) * 1000
                assert result.ok and warm, (result, warm)
            finally:
                await sb.stop()
            out["warm"].append(took)
            out["docker_run"].append(_docker_run_ms(image))
    return out


def _local(starts: int, execs: int) -> dict[str, Any]:
    try:
        return dict(bench_local(starts=starts, execs=execs))
    except Exception as exc:  # the local backend may not run on this machine
        return {"local_error": f"{type(exc).__name__}: {exc}"}


def bench(starts: int = 10, execs: int = 100) -> dict[str, Any]:
    """Run the benchmark; returns the figures."""
    image = build_image().tag
    subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], check=True)
    res, mode = asyncio.run(_execs(execs))
    cold = asyncio.run(_starts(starts, image))
    warm = asyncio.run(_warm_starts(starts, image))
    docker_run = _ms(cold["docker_run"])
    warm_run = _ms(warm["docker_run"])
    figures: dict[str, Any] = {
        "image": image,
        "hazmat_exec_ms": _ms(res["hazmat"]),
        "docker_exec_cli_ms": _ms(res["cli"]),
        "docker_exec_sdk_ms": _ms(res["sdk"]),
        "exec_ratio_vs_docker_exec": round(_ms(res["hazmat"]) / _ms(res["cli"]), 4),
        "exec_ratio_vs_docker_exec_sdk": round(_ms(res["hazmat"]) / _ms(res["sdk"]), 4),
        "sentinel": mode,
        "hazmat_first_start_ms": round(cold["first"][0], 3),
        "hazmat_start_ms": _ms(cold["hazmat"]),
        "docker_run_ms": docker_run,
        "start_ratio_vs_docker_run": round(_ms(cold["hazmat"]) / docker_run, 4),
        "warm_start_ms": _ms(warm["warm"]),
        "warm_docker_run_ms": warm_run,
        "warm_start_ratio_vs_docker_run": round(_ms(warm["warm"]) / warm_run, 4),
        "starts": starts,
        "execs": execs,
    }
    figures.update(_local(starts, execs))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--execs", type=int, default=100)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    figures = bench(args.starts, args.execs)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
