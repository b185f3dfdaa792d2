"""The example tasks and the expensive checks against a real sandbox.

These need a working backend: ``local`` (bubblewrap) once ``hazmat.sandbox.local``
imports, ``docker`` when a daemon answers (``@pytest.mark.docker``). The moves are
played with the real built-in tools; the agent loop is not involved, so these tests
pin down the task side alone: the solution reaches every milestone, the null agent
none, and a solution cut after any step reaches exactly a prefix of the milestones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hazmat.sandbox import Sandbox, SandboxSpec, create_sandbox
from hazmat.tasks import (
    Check,
    CheckContext,
    MilestoneTracker,
    Score,
    SolutionStep,
    TraceStep,
    discover_tasks,
    evaluate_check,
    load_task,
    render_task,
)
from hazmat.tools.builtin import BUILTIN_TOOLS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[2] / "tasks" / "examples"
TASKS = [t.root.name for t in discover_tasks([EXAMPLES]) if t.root is not None]

BACKENDS = [
    pytest.param("local", marks=pytest.mark.local),
    pytest.param("docker", marks=pytest.mark.docker),
]


async def play(
    task_dir: Path, backend: str, moves: list[SolutionStep] | None, seed: int = 1234
) -> Score:
    """Play ``moves`` (None: the task's solution) in a fresh sandbox, score like the loop."""
    task = load_task(task_dir)
    rendered = render_task(task, seed)
    rt = rendered.task
    steps = rt.solution if moves is None else moves
    tools = {name: BUILTIN_TOOLS[name]() for name in rt.tools if name in BUILTIN_TOOLS}
    tracker = MilestoneTracker(rt)
    trace: list[TraceStep] = []
    submission: str | None = None
    sandbox = create_sandbox(backend, rt.sandbox, run_id="test-tasks", episode_id=task_dir.name)
    async with sandbox as sb:
        ctx = CheckContext.make(rt, secrets=rendered.secrets, sandbox=sb, seed=seed)
        for n, step in enumerate(steps, 1):
            out = await tools[step.tool].run(sb, step.args)
            assert not out.is_error, (step, out.text)
            trace.append(out.trace_step(n, step.args))
            if out.submission is not None:
                submission = out.submission
            ctx = CheckContext.make(
                rt,
                trace=trace,
                submission=submission,
                secrets=rendered.secrets,
                sandbox=sb,
                seed=seed,
            )
            await tracker.after_step(ctx)
            if submission is not None:
                break
        await tracker.finish(ctx)
    return tracker.score()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", TASKS)
async def test_solution_reaches_every_milestone(backend: str, name: str) -> None:
    score = await play(EXAMPLES / name, backend, None)
    assert score.progress == 1.0, score
    assert score.completed and score.errors == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", TASKS)
async def test_null_agent_reaches_nothing(backend: str, name: str) -> None:
    score = await play(EXAMPLES / name, backend, [SolutionStep(tool="submit", args={"answer": ""})])
    assert score.progress == 0.0 and score.depth == 0, score


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", TASKS)
async def test_cut_solution_reaches_a_prefix(backend: str, name: str) -> None:
    """Each milestone is independently checkable: a cut solution reaches milestones in order."""
    task = render_task(load_task(EXAMPLES / name), 1234).task
    previous = -1
    for cut in range(len(task.solution) + 1):
        score = await play(EXAMPLES / name, backend, list(task.solution[:cut]), seed=1234)
        reached = [m.reached for m in score.milestones]
        assert reached == sorted(reached, reverse=True), (cut, reached)  # a prefix
        assert score.depth >= previous
        previous = score.depth
    assert previous == len(task.milestones)


@pytest.fixture(params=BACKENDS)
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    backend: str = request.param
    spec = SandboxSpec(
        files={
            "/tmp/scorer/secret.conf": {"content": "password = hunter2\n", "mode": 0o600},
            "/home/agent/notes.txt": "line one\nHZM{feed}\n",
        }
    )
    async with create_sandbox(backend, spec, run_id="test-tasks", episode_id="checks") as sb:
        yield sb


async def _ev(check: dict[str, Any], sb: Sandbox) -> bool | None:
    task = load_task(EXAMPLES / "find-file")
    return await evaluate_check(Check.model_validate(check), CheckContext.make(task, sandbox=sb))


async def test_sandbox_and_file_checks(sandbox: Sandbox) -> None:
    sb = sandbox
    assert await _ev({"sandbox": "true"}, sb) is True
    assert await _ev({"sandbox": "false"}, sb) is False
    # the scorer runs as root, in a fresh process
    assert await _ev({"sandbox": {"command": "id -u", "stdout_regex": "^0$"}}, sb) is True
    assert await _ev({"sandbox": {"command": "id -u", "stdout_regex": "^1"}}, sb) is False
    assert await _ev({"sandbox": {"command": "sleep 5", "timeout": 0.5}}, sb) is False
    assert await _ev({"file": "/home/agent/notes.txt"}, sb) is True
    assert await _ev({"file": {"path": "/home/agent/nope", "exists": False}}, sb) is True
    assert await _ev({"file": {"path": "/home/agent/nope", "contains": "x"}}, sb) is False
    assert await _ev({"file": {"path": "/home/agent/notes.txt", "contains": "HZM{feed}"}}, sb)
    assert await _ev({"file": {"path": "/home/agent/notes.txt", "regex": r"(?m)^HZM\{\w+\}$"}}, sb)
    assert not await _ev({"file": {"path": "/home/agent/notes.txt", "regex": "^HZM"}}, sb)
    # a root-only file is readable by the scorer
    assert await _ev({"file": {"path": "/tmp/scorer/secret.conf", "contains": "hunter2"}}, sb)


async def test_scorer_is_invisible_to_the_agent_shell(sandbox: Sandbox) -> None:
    sb = sandbox
    await sb.shell("cd /tmp && export MARK=agent")
    assert await _ev({"sandbox": "cd / && export MARK=scorer && touch /tmp/scored"}, sb)
    after = await sb.shell("pwd; echo $MARK; history | grep -c scorer || true")
    assert after.stdout_text.split() == ["/tmp", "agent", "0"]


async def test_python_check_reads_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(
        "async def has_note(ctx):\n"
        "    text = await ctx.sandbox.read_text('/home/agent/notes.txt')\n"
        "    missing = await ctx.sandbox.read_text('/home/agent/missing')\n"
        "    return missing is None and text is not None and ctx.secrets['flag'] in text\n"
    )
    (tmp_path / "task.yaml").write_text(
        "id: t/py\ntitle: py\ncategory: examples\ninstructions: x\n"
        "milestones: [{id: a, check: {python: has_note}}]\n"
    )
    task = load_task(tmp_path)
    ctx = CheckContext.make(task, sandbox=sandbox, secrets={"flag": "HZM{feed}"})
    assert await evaluate_check(task.milestones[0].check, ctx) is True
