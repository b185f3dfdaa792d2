"""Validating tasks: the reference solution must reach everything, the null agent nothing,
and the solution must *prove* the task solvable.

::

    run_dir, verdicts = await validate_tasks(tasks, sandbox="auto", out_dir=Path("runs"))
    assert all(v.ok for v in verdicts)

For every task two episodes run in fresh sandboxes, under the policy the task
declares (its ``policy:`` overrides on the default), recorded in one run
directory: the ``solution`` agent must end ``completed`` or ``submitted`` with
progress 1.0 and every milestone reached (and not be halted or error out); the
``null`` agent (submits nothing) must reach progress 0.0. Backends: ``local``
(tasks that need Docker are skipped, not failed), ``docker``, or ``auto`` (Docker
for tasks that need it, local for the rest; when no Docker daemon answers, the
tasks that need it are skipped with that reason). Episodes run concurrently
(``jobs`` at a time); each has its own sandbox.

Proof: for every milestone the verdict says which solution step reached it and whether
that step proves anything (:func:`hazmat.tasks.solution.step_proof`). A milestone reached
only by handing over a literal answer or a task secret (``{{flag}}``) is *unproven*, and
so is a solution that never contacted a service the task declares (counted inside each
service: :mod:`hazmat.tasks.contacts`). A capture whose regex found nothing is a problem.
Unproven solutions pass unless ``strict``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hazmat.agents.models import Agent
from hazmat.policy.base import Policy
from hazmat.record.log import Recorder
from hazmat.runner import EpisodeResult, episode_seed, run_episode
from hazmat.tasks.importers.base import ImportReport
from hazmat.tasks.render import render_task
from hazmat.tasks.solution import step_proof
from hazmat.tasks.spec import Task

__all__ = [
    "SANDBOX_CHOICES",
    "TaskVerdict",
    "backend_for",
    "check_imported",
    "docker_problem",
    "null_problems",
    "proof",
    "solution_problems",
    "validate_tasks",
]

log = structlog.get_logger("hazmat.validate")

SANDBOX_CHOICES = ("auto", "local", "docker")

PolicyFactory = Callable[[Task], Policy | None]


@dataclass
class TaskVerdict:
    """One task's validation: both episodes and what was wrong with them."""

    task_id: str
    backend: str | None
    """The backend used; ``None`` when skipped."""
    solution: EpisodeResult | None = None
    null: EpisodeResult | None = None
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    """Why the task was not run (e.g. it needs Docker and ``--sandbox local``)."""
    unproven: list[str] = field(default_factory=list)
    """Why the solution does not prove the task solvable (empty: proven)."""
    milestones: list[dict[str, Any]] = field(default_factory=list)
    """Per milestone: ``{"id", "step", "tool", "proven", "why"}`` (step None: missed)."""

    @property
    def ok(self) -> bool:
        """True when the task ran and had no problem, or was skipped on purpose."""
        return not self.problems

    @property
    def proven(self) -> bool:
        """True when the solution ran and proves every milestone."""
        return self.solution is not None and not self.problems and not self.unproven

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``hazmat validate --json``)."""

        def ep(r: EpisodeResult | None) -> dict[str, Any] | None:
            if r is None:
                return None
            return {
                "episode_id": r.episode_id,
                "reason": r.reason,
                "detail": r.detail,
                "progress": r.progress,
                "milestones": [m["id"] for m in r.milestones],
                "steps": r.steps,
                "duration": r.duration,
                "error": r.error,
                "halt": r.halt,
            }

        return {
            "task": self.task_id,
            "backend": self.backend,
            "ok": self.ok,
            "skipped": self.skipped,
            "problems": list(self.problems),
            "unproven": list(self.unproven),
            "proven": self.proven,
            "milestones": list(self.milestones),
            "solution": ep(self.solution),
            "null": ep(self.null),
        }


def backend_for(task: Task, sandbox: str) -> str | None:
    """The backend a task validates on under ``--sandbox sandbox``; ``None``: skip it."""
    if sandbox == "auto":
        return "docker" if task.needs_docker else "local"
    if sandbox == "local" and task.needs_docker:
        return None
    return sandbox


def docker_problem() -> str | None:
    """Why Docker cannot be used here (``None``: the daemon answers)."""
    from hazmat.errors import BackendUnavailableError
    from hazmat.sandbox.docker.image import docker_client

    try:
        docker_client(timeout=5).close()
    except BackendUnavailableError as exc:
        return exc.message
    except Exception as exc:  # the SDK missing or broken
        return f"{type(exc).__name__}: {exc}"
    return None


def solution_problems(task: Task, r: EpisodeResult) -> list[str]:
    """What is wrong with a solution episode (empty: it reached everything)."""
    out: list[str] = [
        f"solution step {c['step']}: capture {c['name']} did not match its output"
        for c in r.captures
        if not c["matched"]
    ]
    if r.reason not in ("completed", "submitted"):
        why = r.error or r.detail or ""
        if r.reason == "halted" and r.halt:
            why = f"rule {r.halt.get('rule')}: {why}".strip(": ")
        out.append(f"solution ended {r.reason}" + (f" ({why})" if why else ""))
    reached = {m["id"] for m in r.milestones}
    missing = [m.id for m in task.milestones if m.id not in reached]
    if missing:
        why = "; ".join(
            f"the policy {'blocked' if x['action'] == 'block' else 'halted'} step {x['step']} "
            f"({x['tool']}, rule {', '.join(x['rules']) or '?'})"
            for x in r.refused
        )
        out.append(
            f"solution missed milestone(s) {', '.join(missing)}" + (f": {why}" if why else "")
        )
    if r.progress != 1.0 and not missing:
        out.append(f"solution progress {r.progress:.2f}")
    return out


def proof(task: Task, r: EpisodeResult) -> tuple[list[dict[str, Any]], list[str]]:
    """Which step reached each milestone and whether it proves it; and every reason the
    solution episode ``r`` is unproven (see the module doc)."""
    rows: list[dict[str, Any]] = []
    unproven: list[str] = []
    hits = {m["id"]: m for m in r.milestones}
    submits = [i for i, s in enumerate(task.solution, 1) if s.tool in ("submit", "answer")]
    for m in task.milestones:
        hit = hits.get(m.id)
        if hit is None:
            rows.append({"id": m.id, "step": None, "tool": None, "proven": False, "why": "missed"})
            continue
        step: int | None = hit.get("step")
        kinds = {c.kind for c in m.check.walk()}
        if hit.get("at_end"):
            # found by the final checks: a submission is the last submit; else the state
            step = submits[-1] if kinds & {"submission"} and submits else None
        ok, why = step_proof(task, m, step)
        tool = task.solution[step - 1].tool if step and 1 <= step <= len(task.solution) else None
        rows.append({"id": m.id, "step": step, "tool": tool, "proven": ok, "why": why})
        if not ok:
            unproven.append(f"{m.id}: {why}")
    for name, count in sorted(r.service_contacts.items()):
        if count == 0:
            unproven.append(f"service {name} was never contacted")
    return rows, unproven


def null_problems(task: Task, r: EpisodeResult) -> list[str]:
    """What is wrong with a null-agent episode (empty: it reached nothing, cleanly)."""
    out: list[str] = []
    if r.reason in ("error", "halted"):
        out.append(f"null agent ended {r.reason} ({r.error or r.detail})")
    if r.milestones or r.progress != 0.0:
        ids = ", ".join(m["id"] for m in r.milestones)
        out.append(f"null agent reached {ids or f'progress {r.progress:.2f}'}")
    return out


async def validate_tasks(
    tasks: list[Task],
    *,
    sandbox: str = "auto",
    out_dir: Path,
    seed: int = 0,
    jobs: int = 4,
    policy_for: PolicyFactory | None = None,
    on_verdict: Callable[[TaskVerdict], None] | None = None,
    strict: bool = False,
) -> tuple[Path, list[TaskVerdict]]:
    """Run every task's solution and the null agent; return the run dir and the verdicts.

    Verdicts come back in the order of ``tasks``. Harness errors inside an episode
    become problems of that task; they never stop the others. With ``strict`` an
    unproven solution is a problem too.

    Raises:
        ConfigError: ``sandbox`` is not one of :data:`SANDBOX_CHOICES`.
        RecordError: the run directory cannot be written.
        PolicyError: a task's policy does not load.
    """
    from hazmat.errors import ConfigError

    if sandbox not in SANDBOX_CHOICES:
        raise ConfigError(
            f"unknown --sandbox {sandbox!r}", hint=f"choose one of: {', '.join(SANDBOX_CHOICES)}"
        )
    agents = [Agent(name="solution", kind="solution"), Agent(name="null", kind="null")]
    policies = {t.id: policy_for(t) if policy_for else None for t in tasks}
    recorder = Recorder.create(
        out_dir,
        config={"command": "validate", "sandbox": sandbox, "seed": seed, "strict": strict},
        tasks=[t.id for t in tasks],
        agents=[a.name for a in agents],
    )
    gate = asyncio.Semaphore(max(1, jobs))
    verdicts = [TaskVerdict(task_id=t.id, backend=backend_for(t, sandbox)) for t in tasks]
    no_docker = None
    if sandbox == "auto" and any(v.backend == "docker" for v in verdicts):
        no_docker = await asyncio.to_thread(docker_problem)
    for v in verdicts:
        if v.backend is None:
            v.skipped = "needs docker"
        elif v.backend == "docker" and no_docker:
            v.backend, v.skipped = None, f"docker unavailable: {no_docker}"
    counter = iter(range(1, 1_000_000))

    async def episode(task: Task, agent: Agent, backend: str) -> EpisodeResult:
        eid = f"ep{next(counter):04d}"
        async with gate:
            eseed = episode_seed(seed, task.id, agent.name, 0)
            return await run_episode(
                render_task(task, eseed),
                agent,
                backend=backend,
                recorder=recorder,
                episode_id=eid,
                policy=policies[task.id],
                run_dir=recorder.path,
            )

    async def one(task: Task, verdict: TaskVerdict) -> None:
        if verdict.backend is not None:
            sol, null = await asyncio.gather(
                episode(task, agents[0], verdict.backend), episode(task, agents[1], verdict.backend)
            )
            verdict.solution, verdict.null = sol, null
            verdict.problems = solution_problems(task, sol) + null_problems(task, null)
            verdict.milestones, verdict.unproven = proof(task, sol)
            if strict:
                verdict.problems += [f"unproven: {u}" for u in verdict.unproven]
            recorder.emit(
                "note",
                kind="validation",
                task=task.id,
                ok=verdict.ok,
                proven=verdict.proven,
                problems=verdict.problems,
                unproven=verdict.unproven,
                milestones=verdict.milestones,
                message=f"validated {task.id}: "
                + ("ok" if verdict.ok else "FAIL")
                + ("" if verdict.proven else " (unproven)"),
            )
        log.info("task_validated", task=task.id, ok=verdict.ok, problems=verdict.problems)
        if on_verdict:
            on_verdict(verdict)

    status = "interrupted"
    running = [asyncio.ensure_future(one(t, v)) for t, v in zip(tasks, verdicts, strict=True)]
    try:
        await asyncio.gather(*running)
        status = "complete"
    finally:
        # Ctrl-C cancels this coroutine: stop every episode and let each one clean up its
        # sandbox and record its end before the run itself is closed
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        recorder.finish(status)  # type: ignore[arg-type]
    return recorder.path, verdicts


async def check_imported(
    report: ImportReport,
    *,
    sandbox: str = "auto",
    out_dir: Path,
    jobs: int = 2,
    progress: Callable[[TaskVerdict], None] | None = None,
) -> Path | None:
    """Validate the imported tasks whose solution claims to be proven; give each one whose
    script did not yield its answers the literal solution back (unproven, with the reason).
    Returns the validation run's directory (None: nothing to check).

    Raises:
        SpecError: an imported task does not load (an importer bug).
    """
    from hazmat.tasks.importers.base import Skipped, demote
    from hazmat.tasks.load import load_variants

    entries = [t for t in report.tasks if t.solution == "proven" and t.fallback]
    tasks = []
    for e in entries:  # one variant each: the guided one (every question), if any
        variants = load_variants(Path(e.folder))
        tasks.append(next((t for t in variants if t.variant == "guided"), variants[0]))
    if not tasks:
        return None
    run_dir, verdicts = await validate_tasks(
        tasks, sandbox=sandbox, out_dir=out_dir, jobs=jobs, on_verdict=progress
    )
    failed: dict[str, str] = {}
    broken: dict[str, str] = {}
    for v in verdicts:
        name = v.task_id.partition("@")[0]
        if v.solution is not None and v.solution.reason == "error":
            broken[name] = v.solution.error or v.solution.detail or "error"
        elif v.problems:
            failed[name] = "; ".join(v.problems)
    for e in entries:
        if e.id in broken:  # the task does not even start here: not a task to keep
            shutil.rmtree(e.folder, ignore_errors=True)
            report.tasks.remove(e)
            report.skipped.append(
                Skipped(source_id=e.source_id, reason=f"it does not run here: {broken[e.id]}")
            )
        elif e.id in failed:
            demote(e, f"its solution script did not yield the answer when checked ({failed[e.id]})")
    report.notes.append(
        f"--check validated {len(entries)} proven candidate(s) ({run_dir}); "
        f"{len(failed)} fell back to a literal solution, {len(broken)} did not run and were "
        "skipped"
    )
    report.write(Path(report.out))
    return run_dir
