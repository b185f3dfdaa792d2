"""Collection and items: a ``task.yaml`` becomes one :class:`HazmatItem`, validated
(solution -> 1.0, null -> 0.0) or measured and gated (capability mode); skips of tasks
that need Docker, and failure messages meant for people.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hazmat.errors import HazmatError
from hazmat.pytest_plugin.options import _capability, _collect_enabled, _out_dir, _path_opt, _worker

__all__ = ["HazmatFailure", "HazmatItem", "TaskFile"]

T = TypeVar("T")

_REQUIRE_DOCKER = "HAZMAT_REQUIRE_DOCKER"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "task.yaml" or not _collect_enabled(parent.config):
        return None
    result: TaskFile = TaskFile.from_parent(parent, path=file_path)
    return result


class TaskFile(pytest.File):
    """A ``task.yaml``: yields one :class:`HazmatItem`."""

    def collect(self) -> Iterator[pytest.Item]:
        from hazmat.tasks.load import load_task

        task = load_task(self.path)
        item: HazmatItem = HazmatItem.from_parent(self, name=task.id, task=task)
        yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, HazmatError):
            return excinfo.value.one_line()
        return super().repr_failure(excinfo)


class HazmatFailure(Exception):
    """An item's failure with a message meant for people (no traceback)."""


class HazmatItem(pytest.Item):
    """One task: validated (default mode) or measured and gated (capability mode)."""

    def __init__(self, *, task: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        words = {task.category, *task.tags}
        if task.preparedness:
            words.add(task.preparedness)
        self.extra_keyword_matches.update(words)
        self.add_marker(pytest.mark.hazmat_task)
        if task.needs_docker:
            self.add_marker(pytest.mark.docker)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"hazmat task {self.task.id} [{self.task.category}]"

    def runtest(self) -> None:
        config = self.config
        backend = str(config.getoption("hazmat_sandbox"))
        _check_backend(self.task, backend)
        if _capability(config):
            self._capability(backend)
        else:
            self._validate(backend)

    def _run(self, agents: list[Any], backend: str, epochs: int) -> tuple[Path, list[Any]]:
        from hazmat.policy.compose import task_policies
        from hazmat.runner import run_tasks

        config = self.config
        extra: dict[str, Any] = {}
        if config.getoption("hazmat_max_parallel") is not None:
            extra["max_parallel"] = int(config.getoption("hazmat_max_parallel"))
        run_dir, results = _run_sync(
            lambda: run_tasks(
                [self.task],
                agents,
                backend=backend,
                out_dir=_out_dir(config),
                seed=int(config.getoption("hazmat_seed")),
                epochs=epochs,
                policy_for=task_policies(_path_opt(config, "hazmat_policy")),
                config={"pytest": self.nodeid, "worker": _worker(config)},
                **extra,
            )
        )
        self.user_properties.append(("hazmat_run", str(run_dir)))
        return run_dir, results

    def _validate(self, backend: str) -> None:
        from hazmat.agents.models import resolve_agent

        run_dir, results = self._run([resolve_agent("solution"), resolve_agent("null")], backend, 1)
        self._properties(run_dir, None)
        problems = []
        for r in results:
            want = 1.0 if r.agent == "solution" else 0.0
            if r.reason == "error" or abs(r.progress - want) > 1e-9:
                what = "reference solution" if r.agent == "solution" else "null agent"
                problems.append(
                    f"{what} reached progress {r.progress:.2f} (expected {want:.1f}); end "
                    f"{r.reason}{': ' + (r.error or r.detail) if (r.error or r.detail) else ''};"
                    f" milestones {[m['id'] for m in r.milestones] or 'none'}"
                )
        if problems:
            raise HazmatFailure(
                f"task {self.task.id}: " + "; ".join(problems) + f"\nrecord: {run_dir}"
            )

    def _capability(self, backend: str) -> None:
        from hazmat.agents.models import resolve_agent

        config = self.config
        base_url = config.getoption("hazmat_base_url")
        agents = [resolve_agent(a, base_url=base_url) for a in config.getoption("hazmat_agent")]
        epochs = int(config.getoption("hazmat_epochs"))
        run_dir, results = self._run(agents, backend, epochs)
        gate = _path_opt(config, "hazmat_gate")
        card = self._properties(run_dir, gate)
        errors = [r for r in results if r.reason == "error"]
        if errors:
            lines = [
                f"{r.episode_id} ({r.agent}, epoch {r.epoch}): {r.error or r.detail}"
                for r in errors
            ]
            raise HazmatFailure(
                f"task {self.task.id}: {len(errors)} of {len(results)} "
                "episode(s) did not run cleanly (harness error):\n  "
                + "\n  ".join(lines)
                + f"\nrecord: {run_dir}"
            )
        if gate is None:
            return
        stops = [r for r in card.categories if r.stop and r.gated]  # the report's gate
        if stops:
            raise HazmatFailure(
                "\n".join(_stop_message(card, r, gate) for r in stops) + f"\nrecord: {run_dir}"
            )

    def _properties(self, run_dir: Path, gate: Path | None) -> Any:
        from hazmat.report.runs import load_run
        from hazmat.report.scorecard import build_scorecard
        from hazmat.report.thresholds import load_thresholds

        card = build_scorecard([load_run(run_dir)], load_thresholds(gate))
        many = len(card.cards) > 1
        for c in card.cards:
            risk = next((r for r in card.categories if r.agent == c.agent), None)
            sfx = f"[{c.agent}]" if many else ""
            props: list[tuple[str, object]] = [
                ("agent", c.agent),
                ("epochs", c.epochs),
                ("progress", c.mean_progress),
                ("pass_at_k", c.pass_at_k),
                ("k", c.k),
                ("pass_at_1", c.pass_at.get("1", 0.0)),
                ("depth", f"{c.max_depth}/{c.milestones_total}"),
                ("depth_id", c.max_depth_id or ""),
                ("end_reasons", _kv(c.end_reasons)),
                ("halts", _kv(c.halts)),
                ("refusals", c.refusals),
                ("risk_level", risk.level if risk else ""),
            ]
            self.user_properties.extend((name + sfx, value) for name, value in props)
        return card

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, HazmatFailure | HazmatError):
            value = excinfo.value
            return value.one_line() if isinstance(value, HazmatError) else str(value)
        return super().repr_failure(excinfo)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Skips of task items point at the task.yaml, not at this plugin."""
    report = yield
    if isinstance(item, HazmatItem) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (str(item.path), None, report.longrepr[2])  # type: ignore[assignment]
    return report


def _kv(d: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _stop_message(card: Any, risk: Any, gate: Path) -> str:
    from hazmat.report.text import epochs_text, est

    c = card.card(risk.tasks[0], risk.agent)
    conds = " or ".join(f"{m} >= {v:g}" for m, v in risk.thresholds.get(risk.stop_at, {}).items())
    if risk.decision == "stop: cannot rule out":
        head = (
            f"STOP (cannot rule out {risk.upper_level.upper()}): {risk.agent} on {c.task_id} "
            f"(category {risk.category}) is at risk level {risk.level.upper()}, but its "
            f"{card.confidence:.0%} interval reaches stop_at {risk.stop_at}"
        )
        why = risk.reason
    else:
        head = (
            f"STOP: {risk.agent} on {c.task_id} (category {risk.category}) is at risk level "
            f"{risk.level.upper()}, at or above stop_at {risk.stop_at}"
        )
        why = f"triggered by {risk.why}"
    e = c.estimates
    shown = [("progress", "mean_progress"), ("pass@1", "pass_at_1")]
    if c.k > 1:
        shown.append((f"pass@{c.k}", "pass_at_k"))
    measured = ", ".join(f"{name} {est(e.get(key))}" for name, key in shown)
    rule = card.rule.text if card.rule is not None else "point"
    excluded = ", ".join(f"{k} {v}" for k, v in c.excluded.items())
    return (
        f"{head}: progress {c.mean_progress:.2f}, pass@{c.k} {c.pass_at_k:.2f} "
        f"(pass@1 {c.pass_at.get('1', 0.0):.2f}), depth {c.max_depth}/{c.milestones_total}"
        f"{' (' + c.max_depth_id + ')' if c.max_depth_id else ''}; "
        f"threshold {risk.stop_at}: {conds or 'n/a'} ({gate}); {why}\n"
        f"  measured over {c.epochs} epochs ({card.confidence:.0%} intervals): {measured}"
        f"{'; excluded (harness faults): ' + excluded if excluded else ''}\n"
        f"  gate rule: {rule}\n"
        f"  further epochs that would decide it: {epochs_text(risk)}"
    )


def _check_backend(task: Any, backend: str) -> None:
    """Skip (or fail under HAZMAT_REQUIRE_DOCKER=1) when the task cannot run here."""
    problem = None
    if task.needs_docker and backend != "docker":
        services = ", ".join(task.sandbox.services) or "declared needs_docker"
        problem = (
            f"task {task.id} needs docker (services: {services}); "
            f"run it with --hazmat-sandbox docker"
        )
    elif backend == "docker":
        from hazmat.validate import docker_problem

        problem = docker_problem()
    if problem is None:
        return
    if os.environ.get(_REQUIRE_DOCKER) == "1":
        raise HazmatFailure(f"{problem} ({_REQUIRE_DOCKER}=1: Docker tasks must run)")
    pytest.skip(problem)


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code (in a thread when a loop is running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
