"""Harness overhead per agent step, against a bare loop that calls the sandbox directly.

For each backend (local, and docker when a daemon answers): one sandbox; a bare
loop runs ``bash: true`` N times straight through ``Sandbox.shell``; then the
agent loop (scripted model -> policy gate -> tools -> record) runs the same tool
call N times, with the default policy and the recorder writing (fsync on). The
per-step overhead is the median step time of the loop minus the median time of
the bare call. Not a timed test: prints figures, last line JSON.

    python bench/episode.py [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hazmat.agents.graph import EpisodeLoop, LoopLimits, StepRecord
from hazmat.agents.scripted import ScriptedChatModel
from hazmat.policy.engine import load_policy
from hazmat.record.log import Recorder, configure_logging
from hazmat.sandbox import SandboxSpec, create_sandbox
from hazmat.tools import make_tools


async def measure(backend: str, steps: int, out: Path) -> dict[str, Any]:
    spec = SandboxSpec()
    async with create_sandbox(backend, spec, run_id="bench", episode_id="bench") as sb:
        for _ in range(10):  # warm up
            await sb.shell("true")
        bare = []
        for _ in range(steps):
            t = time.perf_counter()
            await sb.shell("true")
            bare.append(time.perf_counter() - t)

        recorder = Recorder.create(out, config={"bench": "episode", "backend": backend})
        rec = recorder.bind("ep0001")
        rec.start(task_id="bench/true", agent="scripted", seed=0)
        marks: list[float] = []
        tool_times: list[float] = []
        shell = sb.shell

        async def timed_shell(command: str, *, timeout: float | None = None) -> Any:
            t = time.perf_counter()
            try:
                return await shell(command, timeout=timeout)
            finally:
                tool_times.append(time.perf_counter() - t)

        sb.shell = timed_shell  # type: ignore[method-assign]

        async def on_step(step: StepRecord) -> bool:
            marks.append(time.perf_counter())
            return False

        model = ScriptedChatModel(turns=[{"tool": "bash", "command": "true"}], repeat=True)
        loop = EpisodeLoop(
            model=model,
            tools=make_tools(["bash", "submit"]),
            sandbox=sb,
            policy=load_policy("default").session(secrets={}),
            emit=rec.emit,
            instructions="run true",
            limits=LoopLimits(steps=steps + 1, seconds=None),
            on_step=on_step,
        )
        t0 = time.perf_counter()
        await loop.run()
        total = time.perf_counter() - t0
        rec.end("limit", steps=steps + 1)
        recorder.finish()
    step_times = [b - a for a, b in itertools.pairwise(marks)]
    own = [st - tt for st, tt in zip(step_times, tool_times[1:], strict=False)]
    bare_ms = statistics.median(bare) * 1000
    step_ms = statistics.median(step_times) * 1000
    own_ms = statistics.median(own) * 1000
    p90 = sorted(own)[int(len(own) * 0.9)] * 1000
    return {
        "backend": backend,
        "steps": len(step_times),
        "bare_shell_ms": round(bare_ms, 3),
        "loop_step_ms": round(step_ms, 3),
        "overhead_ms": round(own_ms, 3),
        "overhead_p90_ms": round(p90, 3),
        "ratio_vs_bare": round(step_ms / bare_ms, 3),
        "loop_total_s": round(total, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    configure_logging("error")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hazmat-bench-") as tmp:
        backends = ["local"]
        try:
            import docker

            docker.from_env(timeout=5).ping()
            backends.append("docker")
        except Exception as exc:
            print(f"docker: skipped ({type(exc).__name__}: {exc})")
        for backend in backends:
            r = await measure(backend, args.steps, Path(tmp) / backend)
            print(
                f"{backend:7} bare shell(true) {r['bare_shell_ms']:.2f} ms | loop step "
                f"{r['loop_step_ms']:.2f} ms | harness overhead {r['overhead_ms']:.2f} ms/step "
                f"(p90 {r['overhead_p90_ms']:.2f}) | "
                f"ratio {r['ratio_vs_bare']:.2f}x over {r['steps']} steps"
            )
            figures[f"{backend}_overhead_ms"] = r["overhead_ms"]
            figures[f"{backend}_ratio_vs_bare"] = r["ratio_vs_bare"]
            figures[f"{backend}_bare_ms"] = r["bare_shell_ms"]
            figures[f"{backend}_step_ms"] = r["loop_step_ms"]
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
