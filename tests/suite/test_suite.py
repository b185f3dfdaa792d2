"""The whole task suite, played through the real engine: each milestone independently checkable.

For every task under tasks/ (every category; the engine's examples have their own
tests), the reference solution is cut after each of its moves and the rest replaced
by an empty submit. Each cut is one real episode (runner, the task's policy, tools,
task tools, sandbox: Docker for tasks with services, local otherwise), all cuts of a
task concurrently. The cut after move k must reach exactly a prefix of the
milestones, one more milestone at most per move, so "how far it got" is trustworthy:

- cut 0 is the ``null`` agent: progress 0.0, nothing reached, not halted;
- the full cut is the ``solution`` agent: progress 1.0, every milestone, not halted;
- in between, the reached set is always the first d milestones and d grows by 0 or 1.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hazmat.agents.models import Agent
from hazmat.policy.compose import task_policies
from hazmat.tasks import Task
from hazmat.validate import validate_tasks

from .helpers import (
    SUITE,
    cut_script,
    play_scripts,
    solution_turns,
    suite_tasks,
    task_param,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

TASKS = suite_tasks()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_suite_shape() -> None:
    """Every task has a card, 3-6 milestones and a solution; categories are covered."""
    assert TASKS, f"no tasks under {SUITE}"
    for t in TASKS:
        assert 3 <= len(t.milestones) <= 6, (t.id, len(t.milestones))
        assert t.solution, t.id
        assert t.description.strip() and t.preparedness and t.difficulty, t.id
        assert t.human_minutes is not None, t.id
        assert t.id.startswith(f"{t.category}/"), t.id
    assert {"fraud", "user-harm", "autonomy"} <= {t.category for t in TASKS}


NETWORK_MODULES = {
    "socket",
    "urllib",
    "http",
    "httpx",
    "requests",
    "aiohttp",
    "smtplib",
    "ftplib",
    "subprocess",
    "asyncio.subprocess",
}


@pytest.mark.parametrize("path", sorted(SUITE.glob("*/*/tools.py")), ids=lambda p: str(p.parent))
def test_task_tools_use_no_host_network(path: Path) -> None:
    """tools.py runs in the harness: it must reach the world only through the sandbox."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in NETWORK_MODULES, f"{path}: imports {name}"


@pytest.mark.parametrize("task", [task_param(t) for t in TASKS])
async def test_each_milestone_is_independently_checkable(task: Task, tmp_path: Path) -> None:
    turns = solution_turns(task)
    scripts = [cut_script(turns, k) for k in range(len(turns) + 1)]
    agents: dict[int, Agent] = {0: Agent(name="null", kind="null")}
    if turns and turns[-1]["tool"] == "submit":
        agents[len(turns)] = Agent(name="solution", kind="solution")
    played = await play_scripts(task, scripts, tmp_path, agents=agents)
    ids = [m.id for m in task.milestones]
    depth_before = 0
    rows = []
    for p in played:
        r = p.result
        rows.append((p.cut, r.reason, sorted(p.reached), r.detail))
        assert r.reason not in ("error", "halted"), (task.id, p.cut, r.reason, r.detail, r.halt)
        depth = len(p.reached)
        assert set(p.reached) == set(ids[:depth]), (task.id, p.cut, p.reached, rows)
        assert depth - depth_before in (0, 1), (task.id, p.cut, rows)
        depth_before = depth
    null, full = played[0].result, played[-1].result
    assert null.progress == 0.0 and not null.milestones, rows
    assert full.progress == 1.0 and full.reason in ("completed", "submitted"), rows
    assert depth_before == len(ids), rows


@pytest.mark.docker
async def test_local_tasks_also_validate_on_docker(tmp_path: Path) -> None:
    """CI validates the whole suite on Docker: the local-capable tasks run there too."""
    local_tasks = [t for t in TASKS if not t.needs_docker]
    _, verdicts = await validate_tasks(
        local_tasks, sandbox="docker", out_dir=tmp_path, jobs=6, policy_for=task_policies(None)
    )
    assert [(v.task_id, v.problems) for v in verdicts if not v.ok] == []
    assert all(v.backend == "docker" and v.skipped is None for v in verdicts)
