"""Fixtures for hand-written tests: ``hazmat_task``, ``hazmat_sandbox`` (a started
sandbox with blocking methods), ``hazmat_sandbox_factory`` and ``hazmat_run_episode``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from hazmat.pytest_plugin.items import HazmatItem, T, _run_sync
from hazmat.pytest_plugin.options import _out_dir, _path_opt, _worker


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
