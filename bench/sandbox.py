"""Benchmark of the sandboxes against raw Docker baselines. Not a timed test.

Measured in one process run, medians in milliseconds:

- ``hazmat_exec_ms``: ``DockerSandbox.exec(["true"])`` over the attached channel;
- ``docker_exec_cli_ms``: ``docker exec CONTAINER true`` (the CLI, a subprocess per
  call) on a container of the same kind (same image, same hardening: it is the box of
  a running hazmat sandbox); ``docker_exec_sdk_ms``: the same through the Python SDK
  (``exec_create`` + ``exec_start`` + ``exec_inspect``);
- ``exec_ratio_vs_docker_exec`` = hazmat exec / CLI docker exec (target <= 0.2), and
  ``exec_ratio_vs_docker_exec_sdk`` against the SDK;
- ``hazmat_start_ms``: ``DockerSandbox.start()`` up to the first command's result
  (stop not counted); ``docker_run_ms``: ``docker run --rm IMAGE true`` (CLI);
  ``start_ratio_vs_docker_run`` (target <= 1.3);
- ``local_exec_ms`` / ``local_start_ms`` from ``bench/sandbox_local.py``.

Prints the figures, then a last line of JSON.

    python bench/sandbox.py [--starts 10] [--execs 100]
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

import structlog

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.docker import DockerSandbox
from hazmat.sandbox.docker.image import build_image, docker_client

sys.path.insert(0, str(Path(__file__).parent))
from sandbox_local import bench_local, start_to_result_ms


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _docker_run(n: int, image: str) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--label",
                "hazmat=1",
                "--label",
                "hazmat.run=bench",
                image,
                "true",
            ],
            check=True,
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _execs(n: int) -> dict[str, list[float]]:
    api = docker_client().api
    res: dict[str, list[float]] = {"hazmat": [], "cli": [], "sdk": []}
    async with DockerSandbox(SandboxSpec(), run_id="bench", episode_id="exec") as sb:
        cid = sb.info()["container"]
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
    return res


def _local(starts: int, execs: int) -> dict[str, Any]:
    try:
        return dict(bench_local(starts=starts, execs=execs))
    except Exception as exc:  # the local backend may not run on this machine
        return {"local_error": f"{type(exc).__name__}: {exc}"}


def bench(starts: int = 10, execs: int = 100) -> dict[str, Any]:
    """Run the Docker benchmark (and the local one if present); returns the figures."""
    image = build_image().tag
    subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], check=True)
    res = asyncio.run(_execs(execs))
    hazmat_start = asyncio.run(start_to_result_ms(starts, "docker"))
    docker_run = _docker_run(starts, image)
    figures: dict[str, Any] = {
        "image": image,
        "hazmat_exec_ms": _ms(res["hazmat"]),
        "docker_exec_cli_ms": _ms(res["cli"]),
        "docker_exec_sdk_ms": _ms(res["sdk"]),
        "exec_ratio_vs_docker_exec": round(_ms(res["hazmat"]) / _ms(res["cli"]), 4),
        "exec_ratio_vs_docker_exec_sdk": round(_ms(res["hazmat"]) / _ms(res["sdk"]), 4),
        "hazmat_start_ms": _ms(hazmat_start),
        "docker_run_ms": _ms(docker_run),
        "start_ratio_vs_docker_run": round(_ms(hazmat_start) / _ms(docker_run), 4),
        "starts": starts,
        "execs": execs,
    }
    local = _local(starts, execs)
    for key in ("local_exec_ms", "local_start_ms", "local_error"):
        if key in local:
            figures[key] = local[key]
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
