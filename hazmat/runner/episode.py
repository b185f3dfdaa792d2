"""One episode: a fresh sandbox, the agent loop, the end recorded whatever happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from hazmat.agents.graph import RetryPolicy
from hazmat.agents.models import Agent
from hazmat.errors import ConfigError, HazmatError
from hazmat.policy.base import AllowAllPolicy, Policy
from hazmat.preflight import docker_why
from hazmat.record.log import Recorder
from hazmat.runner.halt import keep_halted, on_halt
from hazmat.runner.limits import blame_limit, note_pressure
from hazmat.runner.play import play
from hazmat.runner.result import EpisodeResult, sandbox_spec, task_environment
from hazmat.sandbox import Sandbox, SandboxSpec, create_sandbox
from hazmat.sandbox.pool import WarmPool
from hazmat.tasks import MilestoneTracker, RenderedTask
from hazmat.tasks.environment import ensure_environment

__all__ = ["run_episode"]

log = structlog.get_logger("hazmat.runner")


async def run_episode(
    rendered: RenderedTask,
    agent: Agent,
    *,
    backend: str,
    recorder: Recorder,
    episode_id: str,
    epoch: int = 0,
    policy: Policy | None = None,
    run_dir: Path | None = None,
    keep_on_halt: bool = False,
    retry: RetryPolicy | None = None,
    stop: asyncio.Event | None = None,
    attempt: int = 1,
    keep: Callable[[Sandbox], Awaitable[None]] | None = None,
    pool: WarmPool | None = None,
    monitors: bool = True,
) -> EpisodeResult:
    """Run one episode to its end and record it.

    Never raises for what happens inside the episode: sandbox failures, model
    failures and harness bugs end it with reason ``error`` (recorded); a sandbox lost
    to a resource its own processes exhausted ends it ``limit`` with the resource
    (:func:`~hazmat.runner.limits.blame_limit`).
    With a ``policy``, sandbox monitors run after every step and feed its ``after``
    rules (``monitors=False`` turns them off). ``pool``, when given, supplies the
    sandbox (warm when it has one ready).
    ``keep``, when given, receives the live sandbox after the episode ended normally
    and takes it over (the runner does not stop it); replay's ``--keep`` uses it.
    When ``stop`` is set the episode ends after its current step, without an
    ``episode_end`` (reason ``interrupted``: a resume runs it again).
    Cancellation (a second Ctrl-C) propagates after the sandbox is cleaned up.
    """
    task = rendered.task
    rec = recorder.bind(episode_id)
    t0 = time.monotonic()
    result = EpisodeResult(
        episode_id=episode_id,
        task_id=task.id,
        agent=agent.name,
        epoch=epoch,
        seed=rendered.seed,
        reason="error",
    )
    rec.start(
        task_id=task.id,
        agent=agent.name,
        epoch=epoch,
        seed=rendered.seed,
        backend=backend,
        task_root=str(task.root) if task.root else None,
        attempt=attempt,
        category=task.category,
        milestones=[{"id": m.id, "title": m.title, "weight": m.weight} for m in task.milestones],
    )
    tracker = MilestoneTracker(task)
    cancelled = False
    try:
        if task.needs_docker and backend != "docker":
            raise ConfigError(
                f"task {task.id} needs docker ({docker_why(task)})",
                hint="run it with --sandbox docker",
            )
        env = task_environment(task)
        if env is not None:
            result.environment = env.hash
            rec.emit(
                "note",
                kind="environment",
                environment=env.hash,
                tag=env.tag,
                recipe=env.recipe,
                message=f"task environment {env.tag}",
            )
            await ensure_environment(env, backend=backend)
        spec = sandbox_spec(task, env)
        t_start = time.monotonic()
        warm = False
        if pool is not None:
            sb, warm = await pool.acquire(spec, episode_id=episode_id)
        else:
            sb = create_sandbox(backend, spec, run_id=recorder.run_id, episode_id=episode_id)
            try:
                await sb.start()
            except BaseException:
                await sb.stop()
                raise
        kept = False
        try:
            rec.emit(
                "sandbox_ready",
                **_ready_fields(sb, spec),
                warm=warm,
                start_seconds=round(time.monotonic() - t_start, 4),
                environment=sb.environment,
            )
            try:
                await play(
                    rendered,
                    agent,
                    sb,
                    rec,
                    tracker,
                    result,
                    policy or AllowAllPolicy(),
                    retry,
                    stop,
                    monitors and policy is not None,
                )
            except HazmatError as exc:  # e.g. the end-of-episode checks found it gone
                if not await blame_limit(sb, rec, result, exc):
                    raise
            if result.reason == "error":  # the agent's own resource use, or a harness fault
                await blame_limit(sb, rec, result)
            await note_pressure(sb, rec, result)
            if result.reason == "halted":
                await on_halt(sb, rec, result, run_dir)
                if keep_on_halt and keep is None:
                    kept = await keep_halted(sb, rec, recorder.run_id)
            if keep is not None:
                await keep(sb)
                kept = True
        finally:
            if not kept:
                await sb.stop()
    except asyncio.CancelledError:
        cancelled = True
        raise
    except HazmatError as exc:
        result.reason, result.error = "error", exc.one_line()
        rec.emit("error", kind=type(exc).__name__, message=exc.one_line())
    except Exception as exc:
        result.reason, result.error = "error", f"{type(exc).__name__}: {exc}"
        rec.emit("error", kind="harness", message=result.error)
        log.exception("episode_error", episode_id=episode_id)
    finally:
        score = tracker.score()
        result.scores = dict(score.scores)
        result.progress = score.progress
        result.depth = score.depth
        result.depth_id = task.milestones[score.depth - 1].id if score.depth else None
        result.milestones = [
            {"id": h.id, "step": h.step, "t": h.time, "at_end": h.at_end} for h in tracker.hits
        ]
        result.duration = round(time.monotonic() - t0, 4)
        if cancelled or result.reason == "interrupted":
            result.reason = "interrupted"
            rec.emit(
                "note",
                kind="episode_interrupted",
                steps=result.steps,
                message="the episode was interrupted before it ended; "
                "`hazmat run --resume` runs it again from the start",
            )
        else:
            rec.end(
                result.reason,
                progress=round(result.progress, 6),
                depth=result.depth_id,
                depth_index=result.depth,
                steps=result.steps,
                duration=result.duration,
                detail=result.detail,
                submission=result.submission,
                error=result.error,
                malformed=result.malformed,
                decisions=result.decisions,
                limit_hit=result.detail if result.reason == "limit" else None,
                milestones_reached=[m["id"] for m in result.milestones],
                milestones_total=len(task.milestones),
                **({"scores": result.scores} if result.scores else {}),
            )
    return result


def _ready_fields(sb: Sandbox, spec: SandboxSpec) -> dict[str, Any]:
    info = sb.info()
    return {
        "backend": sb.backend,
        "image_id": info.get("image_id"),
        "info": info,
        "spec": spec.model_dump(mode="json"),
    }
