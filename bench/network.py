"""What the network sentinel costs per step and per start. Not a timed test.

For each backend (local, and docker when a daemon answers), in one process run:

- per step, in one default sandbox (sentinel on): ``exec(["true"])`` alone against
  ``exec(["true"])`` followed by ``network_events()`` (the drain the monitors do after
  every step), ``--steps`` of each, interleaved so drift hits both alike;
  ``drain_ms`` is the drain by itself (nothing to report, the usual case);
- per start: ``start()`` up to the first ``true`` result of a fresh sandbox with
  ``SandboxSpec(sentinel=False)`` against the default spec, ``--starts`` of each,
  interleaved (stop not counted).

Figures are milliseconds (median and p99) and ratios (with sentinel / without).
Every phase is bounded by ``--budget`` seconds. Prints a table, then a last line of JSON.

    python bench/network.py [--steps 200] [--starts 10] [--budget 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from typing import Any

import structlog

from hazmat.sandbox import SandboxSpec, create_sandbox


def _med(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3)


async def step_costs(backend: str, steps: int) -> dict[str, list[float]]:
    """``steps`` times each: exec(true), exec(true) + drain, and the drain alone (ms)."""
    out: dict[str, list[float]] = {"exec": [], "exec_drain": [], "drain": []}
    async with create_sandbox(backend, SandboxSpec(), run_id="bench", episode_id="net-steps") as sb:
        if await sb.network_events() is None:
            raise RuntimeError(f"{backend}: the sandbox has no sentinel ({sb.info()})")
        for _ in range(10):  # warm up
            await sb.exec(["true"])
            await sb.network_events()
        for _ in range(steps):
            t0 = time.perf_counter()
            res = await sb.exec(["true"])
            out["exec"].append((time.perf_counter() - t0) * 1000)
            assert res.ok, res
            t0 = time.perf_counter()
            res = await sb.exec(["true"])
            t1 = time.perf_counter()
            events = await sb.network_events()
            t2 = time.perf_counter()
            out["exec_drain"].append((t2 - t0) * 1000)
            out["drain"].append((t2 - t1) * 1000)
            assert res.ok and events == [], (res, events)
    return out


async def start_costs(backend: str, starts: int) -> dict[str, list[float]]:
    """``starts`` times each: fresh sandbox start to the first ``true`` result (ms), with
    and without the sentinel, interleaved."""
    out: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(starts):
        for label, spec in (("off", SandboxSpec(sentinel=False)), ("on", SandboxSpec())):
            sb = create_sandbox(backend, spec, run_id="bench", episode_id=f"net-start-{label}{i}")
            t0 = time.perf_counter()
            try:
                await sb.start()
                res = await sb.exec(["true"])
                out[label].append((time.perf_counter() - t0) * 1000)
                assert res.ok, res
                watched = sb.sentinel is not None
                assert watched == (label == "on"), (label, sb.info().get("sentinel"))
            finally:
                await sb.stop()
    return out


async def measure(backend: str, steps: int, starts: int, budget: float) -> dict[str, Any]:
    """The figures of one backend (raises TimeoutError past ``budget`` per phase)."""
    st = await asyncio.wait_for(step_costs(backend, steps), budget)
    sc = await asyncio.wait_for(start_costs(backend, starts), budget)
    return {
        "exec_ms": _med(st["exec"]),
        "exec_p99_ms": _p99(st["exec"]),
        "exec_drain_ms": _med(st["exec_drain"]),
        "exec_drain_p99_ms": _p99(st["exec_drain"]),
        "drain_ms": _med(st["drain"]),
        "drain_p99_ms": _p99(st["drain"]),
        "step_ratio": round(_med(st["exec_drain"]) / _med(st["exec"]), 3),
        "step_added_ms": round(_med(st["exec_drain"]) - _med(st["exec"]), 3),
        "start_off_ms": _med(sc["off"]),
        "start_off_p99_ms": _p99(sc["off"]),
        "start_on_ms": _med(sc["on"]),
        "start_on_p99_ms": _p99(sc["on"]),
        "start_ratio": round(_med(sc["on"]) / _med(sc["off"]), 3),
        "start_added_ms": round(_med(sc["on"]) - _med(sc["off"]), 3),
        "steps": len(st["exec"]),
        "starts": len(sc["on"]),
    }


def _docker_answers() -> str | None:
    """None when a Docker daemon answers, else why not."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _table(figures: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("exec(true)", "exec_ms", "exec_p99_ms", ""),
        ("exec(true) + network_events()", "exec_drain_ms", "exec_drain_p99_ms", "step_ratio"),
        ("network_events() alone", "drain_ms", "drain_p99_ms", ""),
        ("start, sentinel=False", "start_off_ms", "start_off_p99_ms", ""),
        ("start, sentinel on (default)", "start_on_ms", "start_on_p99_ms", "start_ratio"),
    ]
    lines = [f"{'backend':8} {'what':32} {'median ms':>10} {'p99 ms':>10} {'ratio':>7}"]
    for backend, f in figures.items():
        for label, med, p99, ratio in rows:
            r = f"{f[ratio]:.3f}" if ratio else ""
            lines.append(f"{backend:8} {label:32} {f[med]:10.3f} {f[p99]:10.3f} {r:>7}")
        lines.append(
            f"{backend:8} sentinel adds {f['step_added_ms']:.3f} ms per step "
            f"({f['steps']} steps), {f['start_added_ms']:.1f} ms per start "
            f"({f['starts']} starts)"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument(
        "--budget", type=float, default=300.0, help="seconds allowed per phase and backend"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    figures: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    backends = ["local"]
    why = _docker_answers()
    if why is None:
        backends.append("docker")
    else:
        print(f"docker: skipped ({why})")
        out["docker_skipped"] = why
    for backend in backends:
        try:
            figures[backend] = await measure(backend, args.steps, args.starts, args.budget)
        except Exception as exc:  # one backend failing still reports the other
            print(f"{backend}: failed ({type(exc).__name__}: {exc})")
            out[f"{backend}_error"] = f"{type(exc).__name__}: {exc}"
    print(_table(figures))
    for backend, f in figures.items():
        out.update({f"{backend}_{k}": v for k, v in f.items()})
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
