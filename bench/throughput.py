"""Episodes per minute on Docker at several parallelisms, against the raw container work.

For each parallelism P (default 1, 2, 4): ``hazmat`` runs N episodes (default 50) of a
task whose reference solution is 10 bash steps, P at a time, on the Docker backend,
with the default policy and the record written (fsync on). The raw baseline does the
same container work with the Docker CLI, P at a time: ``docker run -d`` of the same
image, the same 10 commands through ``docker exec``, ``docker rm -f``. The overhead
ratio is hazmat's wall time over the raw wall time at the same P. Memory per
concurrent episode is the runner process's peak RSS growth over its idle RSS,
divided by P. Last, the median episode start (time to a ready sandbox) without and
with a warm pool of started sandboxes (``--warm-pool 2``; the warm median counts
the episodes that got a pooled sandbox). Not a timed test: prints figures, last
line JSON.

    python bench/throughput.py [--episodes 50] [--parallel 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hazmat.agents.models import resolve_agent
from hazmat.policy.compose import task_policies
from hazmat.record.log import configure_logging
from hazmat.runner import run_tasks
from hazmat.sandbox.docker.image import build_image
from hazmat.tasks import load_task

COMMANDS = [f"echo step{i} > /tmp/s{i}.txt && cat /tmp/s{i}.txt" for i in range(9)]

TASK = (
    textwrap.dedent("""
    id: bench/ten-steps
    title: Ten small steps
    category: examples
    instructions: Run the ten steps.
    sandbox:
      files: {/home/agent/notes.txt: "run {{seed}}: {{flag}}"}
    tools: [bash, submit]
    limits: {steps: 20, seconds: 300}
    milestones:
      - id: half
        title: reached step 5
        check: {output: {regex: "step4"}}
      - id: done
        title: submitted
        check: {submission: "done"}
    solution:
""")
    + "".join(f"  - {{tool: bash, command: {json.dumps(c)}}}\n" for c in COMMANDS)
    + "  - {tool: submit, answer: done}\n"
)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def raw_episode(image: str, i: int) -> None:
    name = f"hazmat-bench-raw-{i}-{time.monotonic_ns()}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--label",
            "hazmat=1",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--user",
            "agent",
            "--entrypoint",
            "sleep",
            image,
            "infinity",
        ],
        check=True,
        capture_output=True,
    )
    try:
        for cmd in COMMANDS:
            subprocess.run(
                ["docker", "exec", name, "bash", "-c", cmd], check=True, capture_output=True
            )
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def raw_run(image: str, n: int, parallel: int) -> float:
    t = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: raw_episode(image, i), range(n)))
    return time.perf_counter() - t


async def hazmat_run(task_dir: Path, n: int, parallel: int, out: Path) -> tuple[float, list[Any]]:
    task = load_task(task_dir)
    t = time.perf_counter()
    _, results = await run_tasks(
        [task],
        [resolve_agent("solution")],
        backend="docker",
        out_dir=out,
        epochs=n,
        max_parallel=parallel,
        policy_for=task_policies(None),
    )
    return time.perf_counter() - t, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--parallel", default="1,2,4")
    args = parser.parse_args()
    configure_logging("error")
    image = build_image().tag
    figures: dict[str, Any] = {"episodes": args.episodes, "steps_per_episode": 10}
    with tempfile.TemporaryDirectory(prefix="hazmat-bench-") as tmp:
        task_dir = Path(tmp) / "task"
        task_dir.mkdir()
        (task_dir / "task.yaml").write_text(TASK)
        idle = rss_mb()
        for p in (int(x) for x in args.parallel.split(",")):
            with PeakRss() as peak:
                wall, results = asyncio.run(
                    hazmat_run(task_dir, args.episodes, p, Path(tmp) / f"runs{p}")
                )
            bad = [r for r in results if r.progress != 1.0]
            raw = raw_run(image, args.episodes, p)
            per_min = args.episodes / wall * 60
            figures[f"p{p}_episodes_per_min"] = round(per_min, 1)
            figures[f"p{p}_raw_episodes_per_min"] = round(args.episodes / raw * 60, 1)
            figures[f"p{p}_overhead_ratio"] = round(wall / raw, 3)
            figures[f"p{p}_mem_mb_per_episode"] = round(max(0.0, peak.peak - idle) / p, 1)
            print(
                f"P={p}: hazmat {wall:.1f}s ({per_min:.1f} episodes/min), raw docker "
                f"run+exec {raw:.1f}s, ratio {wall / raw:.2f}x, runner RSS peak "
                f"{peak.peak:.0f} MiB (idle {idle:.0f}), {len(bad)} episodes below 1.0"
            )
        cold, warm = asyncio.run(start_times(task_dir, min(args.episodes, 20), Path(tmp)))
        figures["start_cold_ms"] = round(cold * 1000, 1)
        figures["start_warm_ms"] = round(warm * 1000, 1)
        figures["warm_pool_start_speedup"] = round(cold / warm, 2) if warm else None
        print(
            f"episode start (sandbox ready): cold {cold * 1000:.0f} ms, warm pool "
            f"{warm * 1000:.0f} ms, {cold / warm:.1f}x faster"
        )
    print(json.dumps(figures, sort_keys=True))


async def start_times(task_dir: Path, n: int, tmp: Path) -> tuple[float, float]:
    """Median time to a ready sandbox per episode, without and with a warm pool (P=1)."""
    task = load_task(task_dir)
    medians = []
    for pool in (0, 2):
        run_dir, _ = await run_tasks(
            [task],
            [resolve_agent("solution")],
            backend="docker",
            out_dir=tmp / f"start{pool}",
            epochs=n,
            max_parallel=1,
            warm_pool=pool,
            policy_for=task_policies(None),
        )
        ready = [
            json.loads(line)
            for line in (run_dir / "events.jsonl").read_text().splitlines()
            if '"sandbox_ready"' in line
        ]
        if pool:
            ready = [e for e in ready if e.get("warm")] or ready
        medians.append(statistics.median(e["start_seconds"] for e in ready))
    return medians[0], medians[1]


if __name__ == "__main__":
    main()
