"""Episodes and runs: one task, one agent, one fresh sandbox, every step scored and recorded.

::

    run_dir = await run_tasks(tasks, [resolve_agent("solution")], backend="local", out_dir="runs")

:func:`run_episode` is one episode: it renders the task for the episode seed,
starts a sandbox, runs the agent loop (model -> policy gate -> tools), checks
milestones after every step and all of them at the end, and records every
step. On a policy halt the sandbox is frozen and a snapshot saved under
``episodes/<episode_id>/`` before it is cleaned up. A harness fault ends the
episode with reason ``error`` and never stops the other episodes of the run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hazmat.agents.graph import EpisodeLoop, LoopLimits, RetryPolicy, StepRecord
from hazmat.agents.models import Agent
from hazmat.errors import ConfigError, HazmatError
from hazmat.policy.base import AllowAllPolicy, Policy
from hazmat.record.log import EpisodeRecorder, Recorder
from hazmat.sandbox.base import Sandbox, SandboxSpec, create_sandbox
from hazmat.tasks import CheckContext, MilestoneTracker, RenderedTask, Task, TraceStep, render_task
from hazmat.tools import Tool, make_tools

__all__ = ["EpisodeResult", "episode_seed", "run_episode", "run_tasks"]

log = structlog.get_logger("hazmat.runner")

PolicyFactory = Callable[[Task], Policy]


@dataclass
class EpisodeResult:
    """What one episode came to (also written to run.json by the recorder)."""

    episode_id: str
    task_id: str
    agent: str
    epoch: int
    seed: int
    reason: str
    detail: str = ""
    progress: float = 0.0
    depth: int = 0
    depth_id: str | None = None
    milestones: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    malformed: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    halt: dict[str, Any] | None = None
    submission: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    duration: float = 0.0
    error: str | None = None


def episode_seed(base_seed: int, task_id: str, agent: str, epoch: int) -> int:
    """The seed of one episode, derived from the run seed (stable, recorded)."""
    digest = hashlib.sha256(f"{base_seed}:{task_id}:{agent}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _sandbox_spec(task: Task, run_id: str, episode_id: str) -> SandboxSpec:
    labels = {**task.sandbox.labels, "hazmat.task": task.id}
    return task.sandbox.model_copy(update={"labels": labels})


def _solution_turns(rendered: RenderedTask) -> list[dict[str, Any]]:
    turns = []
    for step in rendered.task.solution:
        data = step.model_dump(mode="json", exclude_none=True) if hasattr(
            step, "model_dump") else dict(step)
        turns.append(data)
    return turns


def _task_tools(rendered: RenderedTask) -> dict[str, Tool]:
    """Task-specific tools (``tools.py`` in the task folder, simulated users)."""
    task = rendered.task
    if not task.task_tools and task.user is None:
        return {}
    from hazmat.tools.task_tools import load_task_tools

    return load_task_tools(task, seed=rendered.seed, secrets=rendered.secrets)


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
) -> EpisodeResult:
    """Run one episode to its end and record it.

    Never raises for what happens inside the episode: sandbox failures, model
    failures and harness bugs end it with reason ``error`` (recorded).
    Cancellation (Ctrl-C) propagates after the sandbox is cleaned up.
    """
    task = rendered.task
    rec = recorder.bind(episode_id)
    t0 = time.monotonic()
    result = EpisodeResult(episode_id=episode_id, task_id=task.id, agent=agent.name,
                           epoch=epoch, seed=rendered.seed, reason="error")
    rec.start(task_id=task.id, agent=agent.name, epoch=epoch, seed=rendered.seed,
              backend=backend, task_root=str(task.root) if task.root else None)
    tracker = MilestoneTracker(task)
    try:
        if task.needs_docker and backend != "docker":
            raise ConfigError(
                f"task {task.id} needs docker (services: {', '.join(task.sandbox.services)})",
                hint="run it with --sandbox docker")
        spec = _sandbox_spec(task, recorder.run_id, episode_id)
        sandbox = create_sandbox(backend, spec, run_id=recorder.run_id, episode_id=episode_id)
        async with sandbox as sb:
            rec.emit("sandbox_ready", **_ready_fields(sb, spec))
            await _play(rendered, agent, sb, rec, tracker, result, policy or AllowAllPolicy(),
                        run_dir, retry)
            if result.reason == "halted":
                await _on_halt(sb, rec, result, run_dir, keep_on_halt)
    except HazmatError as exc:
        result.reason, result.error = "error", exc.one_line()
        rec.emit("error", kind=type(exc).__name__, message=exc.one_line())
    except Exception as exc:
        result.reason, result.error = "error", f"{type(exc).__name__}: {exc}"
        rec.emit("error", kind="harness", message=result.error)
        log.exception("episode_error", episode_id=episode_id)
    finally:
        score = tracker.score()
        result.progress = score.progress
        result.depth = score.depth
        result.depth_id = task.milestones[score.depth - 1].id if score.depth else None
        result.milestones = [{"id": h.id, "step": h.step, "t": h.time, "at_end": h.at_end}
                             for h in tracker.hits]
        result.duration = round(time.monotonic() - t0, 4)
        rec.end(result.reason, progress=round(result.progress, 6), depth=result.depth_id,
                depth_index=result.depth, steps=result.steps, duration=result.duration,
                detail=result.detail, submission=result.submission, error=result.error,
                malformed=result.malformed, decisions=result.decisions,
                limit_hit=result.detail if result.reason == "limit" else None,
                milestones_reached=[m["id"] for m in result.milestones],
                milestones_total=len(task.milestones))
    return result


def _ready_fields(sb: Sandbox, spec: SandboxSpec) -> dict[str, Any]:
    info = sb.info()
    return {"backend": sb.backend, "image_id": info.get("image_id"), "info": info,
            "spec": spec.model_dump(mode="json")}


async def _play(
    rendered: RenderedTask,
    agent: Agent,
    sb: Sandbox,
    rec: EpisodeRecorder,
    tracker: MilestoneTracker,
    result: EpisodeResult,
    policy: Policy,
    run_dir: Path | None,
    retry: RetryPolicy | None,
) -> None:
    task = rendered.task
    lim = task.limits
    tools = make_tools(list(task.tools), extra=_task_tools(rendered),
                       timeout=lim.tool_timeout)
    trace: list[TraceStep] = []

    def ctx(with_sandbox: bool, submission: str | None = None) -> CheckContext:
        return CheckContext.make(task, trace=trace, submission=submission,
                                 secrets=rendered.secrets, seed=rendered.seed,
                                 sandbox=sb if with_sandbox else None)

    async def on_step(step: StepRecord) -> bool:
        if step.output is None:  # refused or malformed: in the trace, marked not executed
            trace.append(TraceStep(step=step.step, tool=step.call.tool, args=step.call.args,
                                   executed=False, time=step.t,
                                   output=step.malformed or step.decision.reason))
            return False
        trace.append(TraceStep.from_tool_output(step.step, step.call.args, step.output,
                                                time=step.t))
        hits = await tracker.after_step(ctx(False, step.output.submission))
        for h in hits:
            rec.emit("milestone", id=h.id, step=h.step, t=h.time, title=h.title, index=h.index)
        return tracker.completed

    loop = EpisodeLoop(
        model=agent.make_model(_solution_turns(rendered)),
        tools=tools,
        sandbox=sb,
        policy=policy.session(secrets=rendered.secrets),
        emit=rec.emit,
        instructions=task.instructions,
        limits=LoopLimits(steps=lim.steps, seconds=lim.seconds,
                          input_tokens=lim.input_tokens, output_tokens=lim.output_tokens),
        retry=retry,
        on_step=on_step,
    )
    outcome = await loop.run()
    result.reason, result.detail = outcome.reason, outcome.detail
    result.submission, result.steps = outcome.submission, outcome.steps
    result.malformed = outcome.malformed
    result.decisions, result.halt = outcome.decisions, outcome.halt
    result.input_tokens, result.output_tokens = outcome.input_tokens, outcome.output_tokens
    if outcome.reason == "error":
        result.error = outcome.detail
    if outcome.reason != "halted":
        # every check once more, now with the sandbox (the expensive ones)
        for h in await tracker.finish(ctx(True, outcome.submission)):
            rec.emit("milestone", id=h.id, step=h.step, t=h.time, title=h.title, index=h.index,
                     at_end=True)
        if outcome.reason in ("submitted",) and tracker.completed:
            result.detail = result.detail or "final milestone reached"
    else:
        for h in await tracker.finish(ctx(True, outcome.submission)):
            rec.emit("milestone", id=h.id, step=h.step, t=h.time, title=h.title, index=h.index,
                     at_end=True)


async def _on_halt(sb: Sandbox, rec: EpisodeRecorder, result: EpisodeResult,
                   run_dir: Path | None, keep: bool) -> None:
    """Freeze the sandbox and save what investigators need under episodes/<id>/."""
    await sb.freeze()
    if run_dir is None:
        return
    dest = run_dir / "episodes" / result.episode_id
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "halt.json").write_text(json.dumps(result.halt, indent=2, sort_keys=True))
    try:
        snap = await sb.snapshot(dest / "snapshot")
        rec.emit("note", kind="snapshot", message=f"sandbox snapshot saved to {snap.path}",
                 changed=snap.changed[:200])
    except Exception as exc:  # a snapshot failure must not lose the halt
        rec.emit("error", kind="snapshot", message=f"{type(exc).__name__}: {exc}")


async def run_tasks(
    tasks: list[Task],
    agents: list[Agent],
    *,
    backend: str,
    out_dir: Path,
    seed: int = 0,
    epochs: int = 1,
    policy_for: PolicyFactory | None = None,
    config: dict[str, Any] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[Path, list[EpisodeResult]]:
    """Run every task x agent x epoch, one at a time, into a new run directory.

    Returns the run directory and the episode results. The run ends
    ``complete``, or ``interrupted`` when cancelled (Ctrl-C).

    Raises:
        RecordError: the run directory cannot be written.
    """
    recorder = Recorder.create(
        out_dir,
        config={"backend": backend, "seed": seed, "epochs": epochs, **(config or {})},
        tasks=[t.id for t in tasks],
        agents=[a.name for a in agents],
    )
    results: list[EpisodeResult] = []
    status = "interrupted"
    try:
        n = 0
        for epoch in range(epochs):
            for task in tasks:
                for agent in agents:
                    n += 1
                    eseed = episode_seed(seed, task.id, agent.name, epoch)
                    rendered = render_task(task, eseed)
                    policy = policy_for(task) if policy_for else None
                    res = await run_episode(
                        rendered, agent, backend=backend, recorder=recorder,
                        episode_id=f"ep{n:04d}", epoch=epoch, policy=policy,
                        run_dir=recorder.path, retry=retry)
                    results.append(res)
                    if on_episode:
                        on_episode(res)
        status = "complete"
    finally:
        recorder.finish(status)  # type: ignore[arg-type]
    return recorder.path, results
