"""A run: the plan (tasks x agents x epochs), episodes at once up to a bound, the
operator's interrupts, the run directory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from hazmat.agents.graph import RetryPolicy
from hazmat.agents.models import Agent
from hazmat.preflight import backend_for
from hazmat.record.log import Recorder
from hazmat.runner.episode import run_episode
from hazmat.runner.result import EpisodeResult, PolicyFactory, episode_seed, sandbox_spec
from hazmat.sandbox.local.leftovers import claim, release
from hazmat.sandbox.pool import WarmPool
from hazmat.tasks import Task, render_task

__all__ = [
    "PlannedEpisode",
    "RunControl",
    "default_parallelism",
    "execute_plan",
    "plan_episodes",
    "run_tasks",
]

log = structlog.get_logger("hazmat.runner")


@dataclass(frozen=True)
class PlannedEpisode:
    """One cell of the run's cross product: which task, agent and epoch, under which id."""

    episode_id: str
    task: Task
    agent: Agent
    epoch: int


def plan_episodes(tasks: list[Task], agents: list[Agent], epochs: int) -> list[PlannedEpisode]:
    """The cross product tasks x agents x epochs, with stable episode ids (ep0001, ...)."""
    plan: list[PlannedEpisode] = []
    for epoch in range(epochs):
        for task in tasks:
            for agent in agents:
                plan.append(PlannedEpisode(f"ep{len(plan) + 1:04d}", task, agent, epoch))
    return plan


def default_parallelism() -> int:
    """Episodes at once when ``--max-parallel`` is not given: two per core, at most 8."""
    return max(1, min(8, 2 * (os.cpu_count() or 1)))


class RunControl:
    """How the operator steers a run: the first ``interrupt()`` stops starting episodes
    and ends running ones after their current step; the second cancels them at once
    (sandboxes are still cleaned up)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.interrupts = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def interrupt(self) -> None:
        """Ask the run to stop (call from a signal handler on the event loop)."""
        self.interrupts += 1
        self.stop.set()
        if self.interrupts >= 2:
            for task in list(self._tasks):
                task.cancel()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Register a running episode so a second interrupt can cancel it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def execute_plan(
    plan: list[PlannedEpisode],
    recorder: Recorder,
    *,
    backend: str,
    seed: int,
    max_parallel: int | None = None,
    policy_for: PolicyFactory | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_start: Callable[[PlannedEpisode], None] | None = None,
    retry: RetryPolicy | None = None,
    control: RunControl | None = None,
    attempts: dict[str, int] | None = None,
    keep_on_halt: bool = False,
    warm_pool: int = 0,
) -> tuple[list[EpisodeResult], bool]:
    """Run the planned episodes, ``max_parallel`` at a time, into ``recorder``'s run.

    Each episode gets a fresh sandbox and its own seed (derived from ``seed``).
    A harness error in one episode never stops the others. Returns the results
    (in plan order) and whether every planned episode ran to an end. With
    ``warm_pool`` > 0, up to that many sandboxes per spec are kept started ahead
    of the episodes that need them (see :class:`~hazmat.sandbox.pool.WarmPool`).
    """
    control = control or RunControl()
    gate = asyncio.Semaphore(max_parallel or default_parallelism())
    results: dict[str, EpisodeResult] = {}

    async def one(item: PlannedEpisode) -> None:
        async with gate:
            if control.stop.is_set():
                return
            if on_start:
                on_start(item)
            eseed = episode_seed(seed, item.task.id, item.agent.name, item.epoch)
            rendered = render_task(item.task, eseed)
            policy = policy_for(item.task) if policy_for else None
            where = backend_for(item.task, backend)
            res = await run_episode(
                rendered,
                item.agent,
                backend=where,
                recorder=recorder,
                episode_id=item.episode_id,
                epoch=item.epoch,
                policy=policy,
                run_dir=recorder.path,
                retry=retry,
                stop=control.stop,
                attempt=(attempts or {}).get(item.episode_id, 1),
                keep_on_halt=keep_on_halt,
                pool=pool if where == pool_backend else None,
            )
            results[item.episode_id] = res
            if on_episode:
                on_episode(res)

    if backend != "docker":  # local sandboxes: mark whose they are (a kill -9 leaves them)
        claim(recorder.run_id)
    pool_backend = "docker" if backend == "auto" else backend
    pool = WarmPool(pool_backend, warm_pool, run_id=recorder.run_id) if warm_pool > 0 else None
    if pool is not None:
        specs = {}
        for distinct in {id(item.task): item.task for item in plan}.values():
            if backend_for(distinct, backend) != pool_backend:
                continue
            spec = sandbox_spec(render_task(distinct, 0).task)
            specs[WarmPool.base_key(spec)] = spec
        await pool.warm(list(specs.values()), wait=60.0)
    tasks = []
    for item in plan:
        task = asyncio.ensure_future(one(item))
        control.track(task)
        tasks.append(task)
    try:
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if pool is not None:
            await pool.close()
        if backend != "docker":
            release(recorder.run_id)
    for item, outcome in zip(plan, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            log.error("episode_task_failed", episode_id=item.episode_id, error=repr(outcome))
    ordered = [results[i.episode_id] for i in plan if i.episode_id in results]
    finished = len(ordered) == len(plan) and all(r.reason != "interrupted" for r in ordered)
    return ordered, finished


def _run_config(
    tasks: list[Task],
    agents: list[Agent],
    backend: str,
    seed: int,
    epochs: int,
    extra: dict[str, Any] | None,
    *,
    policed: PolicyFactory | None = None,
) -> dict[str, Any]:
    config = {
        "backend": backend,
        "seed": seed,
        "epochs": epochs,
        "task_roots": [t.ref for t in tasks],
        "agent_specs": [a.spec for a in agents],
        "base_url": next((a.base_url for a in agents if a.base_url), None),
        **(extra or {}),
    }
    from hazmat.policy.compose import TaskPolicies

    if isinstance(policed, TaskPolicies) and "policy" not in config:
        config["policy"] = policed.base
    elif policed is not None and "policy" not in config:
        # a policy given in Python (run_tasks(policy_for=...)) cannot be rebuilt from the
        # record: say so, so a replay never stands in allow-all for it
        config["policy_given"] = "python"
    return config


async def run_tasks(
    tasks: list[Task],
    agents: list[Agent],
    *,
    backend: str,
    out_dir: Path,
    seed: int = 0,
    epochs: int = 1,
    max_parallel: int | None = 1,
    policy_for: PolicyFactory | None = None,
    config: dict[str, Any] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_start: Callable[[PlannedEpisode], None] | None = None,
    retry: RetryPolicy | None = None,
    control: RunControl | None = None,
    run_id: str | None = None,
    keep_on_halt: bool = False,
    warm_pool: int = 0,
) -> tuple[Path, list[EpisodeResult]]:
    """Run every task x agent x epoch into a new run directory.

    Returns the run directory and the episode results. The run ends
    ``complete``, or ``interrupted`` when stopped (Ctrl-C) before every episode ended.

    Raises:
        RecordError: the run directory cannot be written.
    """
    recorder = Recorder.create(
        out_dir,
        run_id=run_id,
        config=_run_config(tasks, agents, backend, seed, epochs, config, policed=policy_for),
        tasks=[t.id for t in tasks],
        agents=[a.name for a in agents],
    )
    finished = False
    results: list[EpisodeResult] = []
    try:
        results, finished = await execute_plan(
            plan_episodes(tasks, agents, epochs),
            recorder,
            backend=backend,
            seed=seed,
            max_parallel=max_parallel,
            policy_for=policy_for,
            on_episode=on_episode,
            on_start=on_start,
            retry=retry,
            control=control,
            keep_on_halt=keep_on_halt,
            warm_pool=warm_pool,
        )
    finally:
        recorder.finish("complete" if finished else "interrupted")
    return recorder.path, results
