"""pytest plugin (entry point ``hazmat``): task.yaml files as test items, capability runs, gates.

``pytest tasks/`` collects every ``task.yaml`` under the given paths as one item
(``tasks/cyber/privesc/task.yaml::cyber/privesc``) with the task's category,
preparedness category and tags as keywords, so ``-k cyber`` selects a category.
Tasks are collected only when paths are given on the command line: a plain
``pytest`` that falls back to ``testpaths`` never collects tasks (ini option
``hazmat_collect = auto | always | never`` overrides this).

Two modes:

* **Validate** (default): each task's reference solution must reach progress
  1.0 and the null agent 0.0, on ``--hazmat-sandbox`` (default ``local``).
  A task that needs Docker (services) on a non-docker sandbox is **skipped**
  with the reason; under ``HAZMAT_REQUIRE_DOCKER=1`` it **fails** instead, so a
  CI run cannot pass by skipping (run those with ``--hazmat-sandbox docker``).
* **Capability** (``--hazmat-agent openai:MODEL [--hazmat-base-url URL]
  --hazmat-epochs N --hazmat-sandbox docker --hazmat-out DIR``): each item runs
  its episodes and records them. It passes when every episode ran cleanly (no
  harness ``error``). With ``--hazmat-gate THRESHOLDS.yaml`` it also fails when
  the report's gate says stop for the item's category, by the same rule
  (the file's ``decision``, default ``upper_bound``: the capability reached the
  ``stop_at`` level, or its interval cannot rule that level out); the failure
  message states progress, pass@k, depth, the threshold, the intervals, the
  gate's rule and the further epochs that would decide it (the stop signal).

Each item puts ``progress``, ``pass_at_k``, ``depth``, ``end_reasons``,
``halts``, ``refusals``, ``risk_level`` and the run directory into
``user_properties`` (so ``--junitxml`` carries them; with several agents the
names get ``[agent]``). The session summary prints the scorecard; with
``--hazmat-out`` it also writes ``DIR/report.html``. Every item's run is its
own run directory under ``DIR/<worker>/`` (``main``, or ``gw0``, ``gw1`` with
pytest-xdist), so workers never share one.

Fixtures for hand-written tests: ``hazmat_task`` (a loaded task; parametrize
indirectly with a path), ``hazmat_sandbox`` (a started sandbox with blocking
methods; parametrize indirectly with a spec, a task or a path, else it uses
``hazmat_task``'s spec when the test has one), ``hazmat_sandbox_factory`` and
``hazmat_run_episode`` (runs an agent on a task, returns the
:class:`~hazmat.runner.EpisodeResult` with milestones and decisions).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hazmat.errors import HazmatError

__all__ = ["HazmatItem", "SandboxHandle", "TaskFile"]

T = TypeVar("T")

_REQUIRE_DOCKER = "HAZMAT_REQUIRE_DOCKER"


# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hazmat", "hazmat: tasks as tests, capability runs and gates")
    group.addoption(
        "--hazmat-agent",
        action="append",
        default=[],
        metavar="AGENT",
        help="capability mode: run this agent (openai:MODEL, scripted:FILE, ...); repeatable",
    )
    group.addoption(
        "--hazmat-base-url",
        default=None,
        metavar="URL",
        help="OpenAI-compatible server URL for openai:NAME agents",
    )
    group.addoption(
        "--hazmat-epochs",
        type=int,
        default=1,
        metavar="N",
        help="episodes per task and agent in capability mode (default 1)",
    )
    group.addoption(
        "--hazmat-sandbox",
        default="local",
        metavar="BACKEND",
        help="sandbox backend: local (default) or docker",
    )
    group.addoption(
        "--hazmat-out",
        default=None,
        metavar="DIR",
        help="runs directory (default: pytest's temporary directory)",
    )
    group.addoption(
        "--hazmat-gate",
        default=None,
        metavar="THRESHOLDS",
        help="fail items whose capability reaches the stop level of this thresholds YAML",
    )
    group.addoption(
        "--hazmat-seed",
        type=int,
        default=0,
        metavar="SEED",
        help="run seed (episode seeds derive from it)",
    )
    group.addoption(
        "--hazmat-max-parallel",
        type=int,
        default=None,
        metavar="P",
        help="episodes of one item at once (passed to the runner; default: its own)",
    )
    group.addoption(
        "--hazmat-policy",
        default=None,
        metavar="FILE",
        help="policy file (default: each task's policy on the built-in one)",
    )
    parser.addini(
        "hazmat_collect",
        "collect task.yaml files: auto (only for paths given on the command line), always, never",
        default="auto",
    )


class _XdistHooks:
    """Hooks that exist only with pytest-xdist: pass the collect decision to workers."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["hazmat_collect"] = _collect_enabled(node.config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hazmat_task: a task.yaml collected by hazmat")
    config.addinivalue_line("markers", "docker: needs a Docker daemon")
    config.pluginmanager.register(_Summary(config), "hazmat-summary")
    _check_options(config)


def _check_options(config: pytest.Config) -> None:
    """Bad hazmat options are one usage error at start, not a failure per item."""
    from hazmat.agents.models import resolve_agent
    from hazmat.report.thresholds import load_thresholds
    from hazmat.sandbox import get_backend

    try:
        if config.getoption("hazmat_epochs") < 1:
            raise pytest.UsageError("--hazmat-epochs must be at least 1")
        get_backend(str(config.getoption("hazmat_sandbox")))
        for a in config.getoption("hazmat_agent"):
            resolve_agent(a, base_url=config.getoption("hazmat_base_url"))
        gate = _path_opt(config, "hazmat_gate")
        if gate is not None:
            load_thresholds(gate)
        if config.getoption("hazmat_max_parallel") is not None:
            import inspect

            from hazmat.runner import run_tasks

            if "max_parallel" not in inspect.signature(run_tasks).parameters:
                raise pytest.UsageError(
                    "--hazmat-max-parallel: this hazmat runner runs episodes one at a time"
                )
            if config.getoption("hazmat_max_parallel") < 1:
                raise pytest.UsageError("--hazmat-max-parallel must be at least 1")
    except HazmatError as exc:
        raise pytest.UsageError(f"hazmat: {exc.one_line()}") from exc
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "hazmat-xdist")


def _collect_enabled(config: pytest.Config) -> bool:
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict) and "hazmat_collect" in workerinput:
        return bool(workerinput["hazmat_collect"])
    mode = str(config.getini("hazmat_collect")).strip().lower()
    if mode in ("always", "never"):
        return mode == "always"
    return config.args_source == pytest.Config.ArgsSource.ARGS


def _capability(config: pytest.Config) -> bool:
    return bool(config.getoption("hazmat_agent"))


def _path_opt(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    if not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else config.invocation_params.dir / p


def _worker(config: pytest.Config) -> str:
    """This process's xdist worker id (``gw0``...), or ``main`` (not the environment
    variable: a pytest started from inside an xdist worker inherits that)."""
    workerinput = getattr(config, "workerinput", None)
    wid = workerinput.get("workerid") if isinstance(workerinput, dict) else None
    return wid if isinstance(wid, str) else "main"


def _out_dir(config: pytest.Config) -> Path:
    """This worker's runs directory: ``<--hazmat-out or tmp>/<worker>``."""
    base = _path_opt(config, "hazmat_out")
    if base is None:
        factory = getattr(config, "_tmp_path_factory", None)
        base = (
            factory.getbasetemp() / "hazmat-runs"
            if factory is not None
            else Path(tempfile.mkdtemp(prefix="hazmat-runs-"))
        )
    out = base / _worker(config)
    out.mkdir(parents=True, exist_ok=True)
    return out


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _collect_enabled(config):
        return None
    if _capability(config):
        agents = ", ".join(config.getoption("hazmat_agent"))
        gate = config.getoption("hazmat_gate") or "none"
        return [
            f"hazmat: capability mode, agents {agents}, epochs "
            f"{config.getoption('hazmat_epochs')}, sandbox "
            f"{config.getoption('hazmat_sandbox')}, gate {gate}"
        ]
    return [
        f"hazmat: validate mode (solution -> 1.0, null -> 0.0), sandbox "
        f"{config.getoption('hazmat_sandbox')}"
    ]


# --------------------------------------------------------------------------- collection


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


def _docker_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Docker daemon not reachable: {type(exc).__name__}: {exc}"
    return None


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
        problem = _docker_problem()
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


# --------------------------------------------------------------------------- summary


class _Summary:
    """Collects the run directories of items (also from xdist workers) for the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.runs: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "hazmat_run":
                self.runs.append(str(value))

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _summary(self.config, self.runs, terminalreporter)


def _summary(config: pytest.Config, runs: list[str], terminalreporter: Any) -> None:
    """Print the scorecard of the session's runs; with --hazmat-out write report.html."""
    if not runs or not _capability(config):
        return
    from hazmat.report.html import write_html
    from hazmat.report.runs import load_run
    from hazmat.report.scorecard import build_scorecard
    from hazmat.report.text import render_markdown
    from hazmat.report.thresholds import load_thresholds

    try:
        card = build_scorecard(
            [load_run(Path(r)) for r in sorted(set(runs))],
            load_thresholds(_path_opt(config, "hazmat_gate")),
        )
    except HazmatError as exc:
        terminalreporter.write_line(f"hazmat: no scorecard: {exc.one_line()}")
        return
    terminalreporter.section("hazmat scorecard")
    for line in render_markdown([card]).splitlines():
        terminalreporter.write_line(line)
    out = _path_opt(config, "hazmat_out")
    if out is not None:
        try:
            path = write_html([card], out / "report.html")
            terminalreporter.write_line(f"hazmat report: {path}")
        except HazmatError as exc:
            terminalreporter.write_line(f"hazmat: no HTML report: {exc.one_line()}")


# --------------------------------------------------------------------------- fixtures


class _LoopThread:
    """An event loop in a daemon thread, for blocking calls into async sandboxes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="hazmat-sandbox-loop"
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class SandboxHandle:
    """A started sandbox with blocking methods (``exec``, ``shell``, ``read_file``,
    ``write_file``); ``.sandbox`` is the async :class:`~hazmat.sandbox.base.Sandbox`."""

    def __init__(self, sandbox: Any, spec: Any, loop: _LoopThread) -> None:
        self.sandbox = sandbox
        self.spec = spec
        self.backend: str = sandbox.backend
        self._loop = loop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 600) -> T:
        """Run any coroutine on the sandbox's loop and return its result."""
        return self._loop.run(coro, timeout)

    def exec(self, argv: list[str], **kwargs: Any) -> Any:
        """:meth:`Sandbox.exec`, blocking."""
        return self.call(self.sandbox.exec(argv, **kwargs))

    def shell(self, command: str, **kwargs: Any) -> Any:
        """:meth:`Sandbox.shell`, blocking."""
        return self.call(self.sandbox.shell(command, **kwargs))

    def read_file(self, path: str, **kwargs: Any) -> bytes:
        """:meth:`Sandbox.read_file`, blocking."""
        data: bytes = self.call(self.sandbox.read_file(path, **kwargs))
        return data

    def write_file(self, path: str, data: bytes | str, **kwargs: Any) -> Any:
        """:meth:`Sandbox.write_file`, blocking."""
        return self.call(self.sandbox.write_file(path, data, **kwargs))


def _resolve_path(config: pytest.Config, value: str | os.PathLike[str]) -> Path:
    p = Path(value)
    if p.is_absolute() or p.exists():
        return p
    for base in (config.invocation_params.dir, config.rootpath):
        if (base / p).exists():
            return base / p
    return p


def _as_task(config: pytest.Config, value: Any) -> Any:
    from hazmat.tasks import Task, load_task

    if isinstance(value, Task):
        return value
    if isinstance(value, str | os.PathLike):
        return load_task(_resolve_path(config, value))
    raise pytest.UsageError(f"hazmat_task: expected a task path or Task, got {value!r}")


@pytest.fixture
def hazmat_task(request: pytest.FixtureRequest) -> Any:
    """A loaded :class:`~hazmat.tasks.Task`.

    Parametrize indirectly with a task folder or task.yaml path (relative to the
    invocation or root directory) or a Task:
    ``@pytest.mark.parametrize("hazmat_task", ["tasks/examples/find-file"], indirect=True)``.
    Inside a collected task item it is that item's task.
    """
    param = getattr(request, "param", None)
    if param is None:
        node = request.node
        if isinstance(node, HazmatItem):
            return node.task
        raise pytest.UsageError("hazmat_task needs a task: parametrize it indirectly with a path")
    return _as_task(request.config, param)


@pytest.fixture
def hazmat_sandbox_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``factory(spec=None, *, backend=None) -> SandboxHandle``: start sandboxes, all
    stopped at teardown. ``spec`` is a SandboxSpec, a dict, a Task, or a task path."""
    from hazmat.sandbox import SandboxSpec, create_sandbox
    from hazmat.tasks import Task, render_task

    loop: _LoopThread | None = None
    started: list[Any] = []
    config = request.config

    def factory(spec: Any = None, *, backend: str | None = None, seed: int = 0) -> Any:
        nonlocal loop
        if isinstance(spec, str | os.PathLike):
            spec = _as_task(config, spec)
        if isinstance(spec, Task):
            spec = render_task(spec, seed).task.sandbox
        elif isinstance(spec, dict):
            spec = SandboxSpec.model_validate(spec)
        elif spec is None:
            spec = SandboxSpec()
        be = backend or str(config.getoption("hazmat_sandbox"))
        if loop is None:
            loop = _LoopThread()
        n = len(started) + 1
        sb = create_sandbox(
            be, spec, run_id=f"pytest-{_worker(config)}-{os.getpid()}", episode_id=f"fixture{n}"
        )
        loop.run(sb.__aenter__())
        started.append(sb)
        return SandboxHandle(sb, spec, loop)

    try:
        yield factory
    finally:
        if loop is not None:
            for sb in reversed(started):
                try:
                    loop.run(sb.__aexit__(None, None, None), timeout=120)
                except Exception as exc:  # keep stopping the others
                    request.node.warn(pytest.PytestWarning(f"sandbox stop failed: {exc}"))
            loop.close()


@pytest.fixture
def hazmat_sandbox(
    request: pytest.FixtureRequest, hazmat_sandbox_factory: Callable[..., Any]
) -> Any:
    """A started sandbox (:class:`SandboxHandle`), stopped after the test.

    Its spec: the indirect parameter (SandboxSpec, dict, Task or task path), else
    ``hazmat_task``'s sandbox when the test uses that fixture, else a default spec.
    The backend is ``--hazmat-sandbox``.
    """
    param = getattr(request, "param", None)
    if param is None and "hazmat_task" in request.fixturenames:
        param = request.getfixturevalue("hazmat_task")
    return hazmat_sandbox_factory(param)


class EpisodeRunner:
    """The ``hazmat_run_episode`` fixture: ``run(task, agent="solution", **options)``."""

    def __init__(self, config: pytest.Config, node: pytest.Item) -> None:
        self._config = config
        self._node = node
        self.last_run_dir: Path | None = None
        """The run directory of the last episode run."""

    def __call__(
        self,
        task: Any,
        agent: Any = "solution",
        *,
        seed: int | None = None,
        backend: str | None = None,
        policy: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
    ) -> Any:
        """Run ``agent`` (a name like ``solution``, ``null``, ``openai:M``, or an Agent)
        on ``task`` (a Task or a path) in a fresh sandbox; return the EpisodeResult.

        Raises:
            ConfigError: a bad agent name or task path.
        """
        from hazmat.agents.models import Agent, resolve_agent
        from hazmat.policy.compose import task_policies
        from hazmat.runner import run_tasks

        config = self._config
        t = _as_task(config, task)
        a = (
            agent
            if isinstance(agent, Agent)
            else resolve_agent(str(agent), base_url=base_url or config.getoption("hazmat_base_url"))
        )
        be = backend or str(config.getoption("hazmat_sandbox"))
        pol = _resolve_path(config, policy) if policy else _path_opt(config, "hazmat_policy")
        run_dir, results = _run_sync(
            lambda: run_tasks(
                [t],
                [a],
                backend=be,
                out_dir=_out_dir(config),
                seed=int(config.getoption("hazmat_seed") if seed is None else seed),
                policy_for=task_policies(pol),
                config={"pytest": self._node.nodeid},
            )
        )
        self.last_run_dir = run_dir
        return results[0]


@pytest.fixture
def hazmat_run_episode(request: pytest.FixtureRequest) -> EpisodeRunner:
    """Run an agent on a task: ``result = hazmat_run_episode(task, "solution")``.

    The result is the :class:`~hazmat.runner.EpisodeResult` (``progress``,
    ``milestones``, ``decisions``, ``reason``, ``halt``...); the run is recorded
    under this worker's runs directory (``hazmat_run_episode.last_run_dir``).
    """
    return EpisodeRunner(request.config, request.node)
