"""Playing the task suite through the real episode engine (runner, policy, tools, sandbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hazmat.agents.models import Agent
from hazmat.policy.compose import task_policies
from hazmat.record.log import Recorder
from hazmat.runner import EpisodeResult, run_episode
from hazmat.tasks import Task, discover_tasks, render_task

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tasks"
SEED = 4242
CONCURRENCY = 6

SUBMIT_NOTHING: dict[str, Any] = {"tool": "submit", "args": {"answer": ""}}


def suite_tasks() -> list[Task]:
    """Every task under tasks/ except the engine's examples, sorted by id."""
    return [t for t in discover_tasks([SUITE]) if t.category != "examples"]


def backend_of(task: Task) -> str:
    """Docker for tasks with services, local for the rest."""
    return "docker" if task.needs_docker else "local"


def task_param(task: Task) -> Any:
    """A pytest param for a task, marked ``docker`` when it needs Docker."""
    marks = [pytest.mark.docker] if task.needs_docker else [pytest.mark.local]
    return pytest.param(task, id=task.id, marks=marks)


def solution_turns(task: Task, seed: int = SEED) -> list[dict[str, Any]]:
    """The rendered reference moves of ``task`` for ``seed``, as scripted turns."""
    rendered = render_task(task, seed)
    return [{"tool": s.tool, "args": dict(s.args)} for s in rendered.task.solution]


def cut_script(turns: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The first ``k`` moves, then an empty submit (unless the cut already submits)."""
    head = list(turns[:k])
    if not head or head[-1]["tool"] != "submit":
        head.append(SUBMIT_NOTHING)
    return head


@dataclass
class Played:
    """One scripted episode's outcome."""

    cut: int
    result: EpisodeResult

    @property
    def reached(self) -> list[str]:
        return [m["id"] for m in self.result.milestones]


async def play_scripts(
    task: Task,
    scripts: Sequence[list[dict[str, Any]]],
    out_dir: Path,
    *,
    seed: int = SEED,
    concurrency: int = CONCURRENCY,
    agents: dict[int, Agent] | None = None,
) -> list[Played]:
    """Play each script as one episode of ``task`` (same seed, task policy), concurrently.

    ``agents`` replaces the scripted agent of some episodes by index (e.g. the real
    ``null`` and ``solution`` agents for the first and the full cut).
    """
    backend = backend_of(task)
    policy = task_policies(None)(task)
    recorder = Recorder.create(
        out_dir,
        config={"test": "suite"},
        tasks=[task.id],
        agents=[f"cut{i}" for i in range(len(scripts))],
        fsync=False,
    )
    gate = asyncio.Semaphore(concurrency)
    rendered = render_task(task, seed)

    async def one(i: int, script: list[dict[str, Any]]) -> Played:
        agent = (agents or {}).get(i) or Agent(name=f"cut{i}", kind="scripted", script=script)
        async with gate:
            res = await run_episode(
                rendered,
                agent,
                backend=backend,
                recorder=recorder,
                episode_id=f"ep{i:04d}",
                policy=policy,
                run_dir=recorder.path,
            )
        return Played(cut=i, result=res)

    try:
        return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(scripts))))
    finally:
        recorder.finish("complete")
