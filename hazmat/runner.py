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

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hazmat.agents.graph import EpisodeLoop, Guidance, LoopLimits, RetryPolicy, StepRecord
from hazmat.agents.models import Agent
from hazmat.errors import ConfigError, HazmatError
from hazmat.policy.base import AllowAllPolicy, Decision, Observation, Policy
from hazmat.policy.compose import declared_hosts
from hazmat.preflight import backend_for, docker_why
from hazmat.record.events import SNAPSHOT_FILES
from hazmat.record.log import EpisodeRecorder, Recorder
from hazmat.sandbox import (
    Detachable,
    Freezable,
    Sandbox,
    SandboxSpec,
    create_sandbox,
    lacks,
)
from hazmat.sandbox.pool import WarmPool
from hazmat.tasks import CheckContext, MilestoneTracker, RenderedTask, Task, TraceStep, render_task
from hazmat.tasks.contacts import accepted_connections, contacts_since
from hazmat.tasks.environment import Environment, ensure_environment, environment_of
from hazmat.tasks.questions import QuestionState
from hazmat.tasks.solution import SolutionScript
from hazmat.tasks.spec import TaskSandbox
from hazmat.tools import Tool, make_tools

__all__ = [
    "EpisodeResult",
    "backend_for",
    "episode_seed",
    "resume_run",
    "run_episode",
    "run_tasks",
]

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
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Calls the policy blocked before they ran: ``{"step", "tool", "action", "rules"}``."""
    scores: dict[str, float] = field(default_factory=dict)
    """Values of the scored milestones (aggregated as the task says)."""
    service_contacts: dict[str, int | None] = field(default_factory=dict)
    """TCP connections each service accepted while the agent worked (None: unknown)."""
    captures: list[dict[str, Any]] = field(default_factory=list)
    """The solution's captures: ``{"step", "name", "matched"}``."""
    environment: str | None = None
    """The task environment's hash (``sandbox.build``), when it has one."""


def episode_seed(base_seed: int, task_id: str, agent: str, epoch: int) -> int:
    """The seed of one episode, derived from the run seed (stable, recorded)."""
    digest = hashlib.sha256(f"{base_seed}:{task_id}:{agent}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def task_environment(task: Task) -> Environment | None:
    """The task's environment (``sandbox.build``), or None when it uses the plain image.

    Raises:
        SpecError: the environment's Dockerfile cannot be used.
    """
    build = getattr(task.sandbox, "build", None)  # a replay may set a plain SandboxSpec
    return environment_of(build) if build is not None else None


def _sandbox_spec(task: Task, env: Environment | None = None) -> SandboxSpec:
    labels = {**task.sandbox.labels, "hazmat.task": task.id}
    if env is None:
        env = task_environment(task)
    spec: SandboxSpec = task.sandbox
    if isinstance(spec, TaskSandbox):
        spec = spec.sandbox_spec(env.tag if env is not None else None)
    return spec.model_copy(update={"labels": labels})


def _solution_turns(rendered: RenderedTask) -> list[dict[str, Any]]:
    turns = []
    for step in rendered.task.solution:
        data = (
            step.model_dump(mode="json", exclude_none=True)
            if hasattr(step, "model_dump")
            else dict(step)
        )
        turns.append(data)
    return turns


def chat_model(spec: str, base_url: str | None) -> Any:
    """A chat model from ``PROVIDER:MODEL`` (the factory judge checks get)."""
    from hazmat.agents.models import resolve_agent

    return resolve_agent(spec, base_url=base_url).make_model()


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
    stop: asyncio.Event | None = None,
    attempt: int = 1,
    keep: Callable[[Sandbox], Awaitable[None]] | None = None,
    pool: WarmPool | None = None,
    monitors: bool = True,
) -> EpisodeResult:
    """Run one episode to its end and record it.

    Never raises for what happens inside the episode: sandbox failures, model
    failures and harness bugs end it with reason ``error`` (recorded).
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
        spec = _sandbox_spec(task, env)
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
            await _play(
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
            if result.reason == "halted":
                await _on_halt(sb, rec, result, run_dir)
                if keep_on_halt and keep is None:
                    kept = await _keep_halted(sb, rec, recorder.run_id)
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


def _watched_paths(policy: Policy) -> tuple[str, ...]:
    """The task's monitor/audit paths (``settings.watch`` of its policy), if any."""
    spec = getattr(policy, "spec", None)
    settings = getattr(spec, "settings", None)
    return tuple(getattr(settings, "watch", ()) or ())


def _ready_fields(sb: Sandbox, spec: SandboxSpec) -> dict[str, Any]:
    info = sb.info()
    return {
        "backend": sb.backend,
        "image_id": info.get("image_id"),
        "info": info,
        "spec": spec.model_dump(mode="json"),
    }


def _instructions(task: Task, questions: QuestionState | None) -> str:
    """What the agent is told: the instructions, the hints, the user's opening, the
    questions (all of them, or the first in guided mode)."""
    text = task.instructions
    if task.hints:
        text += "\n\nHints:\n" + "\n".join(f"- {h}" for h in task.hints)
    if task.user is not None and task.user.opening and task.user.opening not in text:
        text += f"\n\nThe user's first message:\n{task.user.opening}"
    if questions is not None:
        text += "\n\n" + questions.intro()
    return text


def _agent_model(agent: Agent, rendered: RenderedTask) -> tuple[Any, SolutionScript | None]:
    """The episode's chat model; for the solution agent with captures, its script too."""
    if agent.kind == "solution" and any(s.capture for s in rendered.task.solution):
        from hazmat.agents.solution import CapturingSolutionModel

        script = SolutionScript(list(rendered.task.solution))
        return CapturingSolutionModel.of(script, label=agent.name), script
    return agent.make_model(_solution_turns(rendered)), None


async def _play(
    rendered: RenderedTask,
    agent: Agent,
    sb: Sandbox,
    rec: EpisodeRecorder,
    tracker: MilestoneTracker,
    result: EpisodeResult,
    policy: Policy,
    retry: RetryPolicy | None,
    stop: asyncio.Event | None,
    monitors: bool,
) -> None:
    task = rendered.task
    lim = task.limits
    extra = _task_tools(rendered)
    questions = QuestionState(task.questions) if task.questions is not None else None
    if questions is not None:
        from hazmat.tools.answer import AnswerTool

        extra["answer"] = AnswerTool(questions, timeout=lim.tool_timeout)
    tools = make_tools(list(task.tools), extra=extra, timeout=lim.tool_timeout)
    trace: list[TraceStep] = []
    model, script = _agent_model(agent, rendered)
    every_step = any(m.every_step for m in task.milestones)
    services = sorted(task.sandbox.services)
    contacts_at_start = await accepted_connections(sb, services) if services else {}

    def ctx(with_sandbox: bool, submission: str | None = None) -> CheckContext:
        return CheckContext.make(
            task,
            make_model=chat_model,
            trace=trace,
            submission=submission,
            secrets=rendered.secrets,
            seed=rendered.seed,
            sandbox=sb if with_sandbox else None,
        )

    def emit_hits(hits: list[Any], at_end: bool = False) -> None:
        for h in hits:
            extra_fields = {"at_end": True} if at_end else {}
            rec.emit(
                "milestone",
                id=h.id,
                step=h.step,
                t=h.time,
                title=h.title,
                index=h.index,
                **extra_fields,
            )
        for sample in tracker.take_samples():
            rec.emit("note", kind="milestone_score", **sample.model_dump())

    async def on_step(step: StepRecord) -> bool:
        if step.output is None and step.decision.action in ("block", "halt"):
            result.refused.append(
                {
                    "step": step.step,
                    "tool": step.call.tool,
                    "action": step.decision.action,
                    "rules": [
                        m.rule for m in step.decision.rules if m.action == step.decision.action
                    ],
                }
            )
        if step.output is None:  # refused or malformed: in the trace, marked not executed
            trace.append(
                TraceStep(
                    step=step.step,
                    tool=step.call.tool,
                    args=step.call.args,
                    executed=False,
                    time=step.t,
                    output=step.malformed or step.decision.reason,
                )
            )
            return False
        trace.append(step.output.trace_step(step.step, step.call.args, time=step.t))
        if script is not None:
            for cap in script.observe(step.step, trace[-1].output):
                result.captures.append(
                    {"step": cap.step, "name": cap.name, "matched": cap.value is not None}
                )
                rec.emit(
                    "note",
                    kind="capture",
                    step=cap.step,
                    name=cap.name,
                    regex=cap.regex,
                    value=cap.value,
                    message=f"solution step {cap.step} captured {cap.name}"
                    if cap.value is not None
                    else f"solution step {cap.step}: capture {cap.name} did not match",
                )
        hits = await tracker.after_step(ctx(every_step, step.output.submission))
        emit_hits(hits)
        # with questions, the episode goes on until none is left open
        return tracker.completed and (questions is None or questions.settled)

    async def guide(steps: int) -> Guidance:
        assert questions is not None
        text, done = questions.after_steps(steps)
        for note in questions.notes:
            rec.emit("note", **{**note, "kind": f"question_{note['kind']}"})
        questions.notes.clear()
        if done:
            out_of_budget = (
                questions.guided
                and bool(questions.closed)
                and (questions.closed[-1] not in questions.answered)
            )
            if out_of_budget:
                rec.emit("limit", which="question_steps", question=questions.closed[-1])
                return Guidance(end=("limit", "question_steps"))
            return Guidance(end=("submitted", "every question was answered"))
        return Guidance(message=text)

    session = policy.session(secrets=rendered.secrets, hosts=declared_hosts(rendered.task))
    observe = None
    if monitors:
        from hazmat.policy.monitors import SandboxMonitor
        from hazmat.policy.monitors import observe as run_monitors

        monitor = SandboxMonitor(watch=_watched_paths(policy), secrets=rendered.secrets)
        await monitor.start(sb)

        async def observe(obs: Observation) -> tuple[Decision, list[dict[str, Any]]]:
            return await run_monitors(session, monitor, sb, obs)

    loop = EpisodeLoop(
        model=model,
        tools=tools,
        sandbox=sb,
        policy=session,
        emit=rec.emit,
        instructions=_instructions(task, questions),
        observe=observe,
        limits=LoopLimits(
            steps=lim.steps,
            seconds=lim.seconds,
            input_tokens=lim.input_tokens,
            output_tokens=lim.output_tokens,
        ),
        retry=retry,
        on_step=on_step,
        stop=stop,
        guide=guide if questions is not None else None,
    )
    outcome = await loop.run()
    result.reason, result.detail = outcome.reason, outcome.detail
    result.submission, result.steps = outcome.submission, outcome.steps
    result.malformed = outcome.malformed
    result.decisions, result.halt = outcome.decisions, outcome.halt
    result.input_tokens, result.output_tokens = outcome.input_tokens, outcome.output_tokens
    if outcome.reason == "error":
        result.error = outcome.detail
    if outcome.reason == "interrupted":
        return
    if services:
        contacts = contacts_since(contacts_at_start, await accepted_connections(sb, services))
        result.service_contacts = contacts
        rec.emit(
            "note",
            kind="service_contacts",
            contacts=contacts,
            message="TCP connections each service accepted during the episode",
        )
    # every check once more, now with the sandbox (the expensive ones)
    emit_hits(await tracker.finish(ctx(True, outcome.submission)), at_end=True)
    if outcome.reason == "submitted" and tracker.completed:
        result.detail = result.detail or "final milestone reached"


async def _keep_halted(sb: Sandbox, rec: EpisodeRecorder, run_id: str) -> bool:
    """``--keep-on-halt``: leave a halted sandbox paused for inspection (backends that
    are :class:`~hazmat.sandbox.Detachable`)."""
    if not isinstance(sb, Detachable):
        rec.emit(
            "note",
            kind="not_kept",
            message=f"{lacks(sb, Detachable)}; the snapshot under episodes/ holds its state",
        )
        return False
    container = await sb.detach()
    rec.emit(
        "note",
        kind="kept",
        container=container,
        attach=f"hazmat sandbox shell --attach {container[:12]}",
        cleanup=f"hazmat cleanup --run {run_id}",
        message="the halted sandbox was kept, paused",
    )
    return True


async def _on_halt(
    sb: Sandbox, rec: EpisodeRecorder, result: EpisodeResult, run_dir: Path | None
) -> None:
    """Freeze the sandbox and save what investigators need under episodes/<id>/."""
    if isinstance(sb, Freezable):
        await sb.freeze()
    else:
        rec.emit("note", kind="snapshot", message=f"{lacks(sb, Freezable)}: it kept running")
    if run_dir is None:
        return
    dest = run_dir / "episodes" / result.episode_id
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "halt.json").write_text(json.dumps(result.halt, indent=2, sort_keys=True))
    try:
        snap = await sb.snapshot(dest / "snapshot")
        rec.emit(
            "note",
            kind="snapshot",
            message=f"sandbox snapshot saved to {snap.path}",
            changed=snap.changed[:200],
        )
    except Exception as exc:  # a snapshot failure must not lose the halt
        rec.emit("error", kind="snapshot", message=f"{type(exc).__name__}: {exc}")
    try:
        procs = await sb.processes() if isinstance(sb, Freezable) else None
        if procs is not None:
            (dest / "processes.json").write_text(json.dumps(procs, indent=1))
    except Exception as exc:
        rec.emit("error", kind="snapshot", message=f"processes: {type(exc).__name__}: {exc}")
    if sb.sentinel is not None:  # the sentinel is outside the frozen processes
        try:
            await sb.network_events()
            lines = sb.sentinel.write_log(dest / "network.jsonl")
            rec.emit(
                "note",
                kind="snapshot",
                message=f"network sentinel log saved to {dest / 'network.jsonl'} ({lines} events)",
            )
        except Exception as exc:
            rec.emit("error", kind="snapshot", message=f"network log: {type(exc).__name__}: {exc}")
    rec.emit(
        "note",
        kind=SNAPSHOT_FILES,
        files=_digests(dest, run_dir),
        message="the halt snapshot's files and their sha256 (hazmat verify checks them)",
    )


def _digests(folder: Path, run_dir: Path) -> dict[str, str]:
    """``{path relative to the run directory: sha256}`` of every file under ``folder``."""
    out: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        out[str(path.relative_to(run_dir))] = digest.hexdigest()
    return out


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

    pool_backend = "docker" if backend == "auto" else backend
    pool = WarmPool(pool_backend, warm_pool, run_id=recorder.run_id) if warm_pool > 0 else None
    if pool is not None:
        specs = {}
        for distinct in {id(item.task): item.task for item in plan}.values():
            if backend_for(distinct, backend) != pool_backend:
                continue
            spec = _sandbox_spec(render_task(distinct, 0).task)
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
) -> dict[str, Any]:
    return {
        "backend": backend,
        "seed": seed,
        "epochs": epochs,
        "task_roots": [t.ref for t in tasks],
        "agent_specs": [a.spec for a in agents],
        "base_url": next((a.base_url for a in agents if a.base_url), None),
        **(extra or {}),
    }


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
        config=_run_config(tasks, agents, backend, seed, epochs, config),
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


async def resume_run(
    run_dir: Path,
    *,
    retry_errors: bool = False,
    max_parallel: int | None = 1,
    policy_for: PolicyFactory | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_start: Callable[[PlannedEpisode], None] | None = None,
    control: RunControl | None = None,
    resolve: Callable[[str, str | None], Agent] | None = None,
    on_plan: Callable[[list[PlannedEpisode], list[PlannedEpisode]], None] | None = None,
) -> tuple[Path, list[EpisodeResult], list[str]]:
    """Finish an interrupted run in place.

    Completed episodes are kept; unfinished ones (and, with ``retry_errors``,
    those that ended in ``error``) run again from the start in fresh sandboxes,
    under the same episode id, and the record says so (a ``note`` per rerun and
    ``attempt`` on the new ``episode_start``). Returns the run directory, the
    results of every episode of the run, and the ids that were run again.
    ``on_plan(plan, todo)``, when given, learns the whole plan and what runs again
    before anything starts.

    Raises:
        ConfigError: the run cannot be resumed (complete without errors to retry,
            or its tasks are gone).
        RecordError: the record does not verify, or another process is writing it.
    """
    from hazmat.agents.models import resolve_agent
    from hazmat.record.summary import load_run_record
    from hazmat.tasks import load_task

    record = load_run_record(run_dir)  # the events say what to resume, not run.json
    cfg = record.config
    roots = cfg.get("task_roots")
    specs = cfg.get("agent_specs")
    if not isinstance(roots, list) or not isinstance(specs, list):
        raise ConfigError(f"{run_dir}: run.json has no task_roots/agent_specs to resume from")
    from hazmat.tasks.variants import split_ref

    tasks = []
    for root in roots:
        folder, variant = split_ref(str(root)) if root is not None else ("", None)
        if not Path(root or "").exists() and variant is not None:
            root = folder
        else:
            variant = None
        if root is None or not Path(root).exists():
            raise ConfigError(f"{run_dir}: task folder {root} is gone; cannot resume")
        tasks.append(load_task(Path(root), variant))
    make = resolve or (lambda spec, url: resolve_agent(spec, base_url=url))
    agents = [make(str(spec), cfg.get("base_url")) for spec in specs]
    plan = plan_episodes(tasks, agents, int(cfg.get("epochs", 1)))
    done = {e.episode_id: e for e in record.episodes}
    keep = {
        eid
        for eid, e in done.items()
        if e.status is not None and not (retry_errors and e.status == "error")
    }
    todo = [p for p in plan if p.episode_id not in keep]
    if not todo:
        raise ConfigError(
            f"{run_dir}: nothing to resume: every episode has ended",
            hint="--retry-errors reruns the episodes that ended in error",
        )
    if on_plan:
        on_plan(plan, todo)
    recorder = Recorder.open(run_dir)
    starts = _episode_starts(run_dir)
    attempts: dict[str, int] = {}
    for item in todo:
        prev = done.get(item.episode_id)
        attempts[item.episode_id] = starts.get(item.episode_id, 0) + 1
        why = (
            "it ended in error"
            if prev is not None and prev.status == "error"
            else "it was interrupted"
            if prev is not None
            else "it never started"
        )
        recorder.emit(
            "note",
            episode_id=item.episode_id,
            kind="rerun",
            message=f"episode {item.episode_id} runs again from the start: {why}",
        )
    finished = False
    try:
        _, finished = await execute_plan(
            todo,
            recorder,
            backend=str(cfg.get("backend", "local")),
            seed=int(cfg.get("seed", 0)),
            max_parallel=max_parallel,
            policy_for=policy_for,
            on_episode=on_episode,
            on_start=on_start,
            control=control,
            attempts=attempts,
        )
    finally:
        recorder.finish("complete" if finished else "interrupted")
    final = load_run_record(run_dir)
    results = [_result_from_record(e) for e in final.episodes]
    return run_dir, results, [p.episode_id for p in todo]


def _episode_starts(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with (run_dir / "events.jsonl").open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"episode_start"' not in line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "episode_start":
                eid = str(ev.get("episode_id"))
                counts[eid] = counts.get(eid, 0) + 1
    return counts


def _result_from_record(e: Any) -> EpisodeResult:
    return EpisodeResult(
        episode_id=e.episode_id,
        task_id=e.task_id,
        agent=e.agent,
        epoch=e.epoch,
        seed=e.seed or 0,
        reason=e.status or "interrupted",
        progress=e.progress,
        depth_id=e.depth,
        steps=e.steps,
        duration=e.duration or 0.0,
        error=e.error,
        halt=e.halt.model_dump() if e.halt else None,
        milestones=[m.model_dump() for m in e.milestones],
    )
