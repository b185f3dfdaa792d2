"""hazmat: a containment lab for dangerous-capability evaluations of AI agents.

The names a script uses, imported on first use (``import hazmat`` loads nothing else,
so ``hazmat --help`` stays fast)::

    import asyncio
    from pathlib import Path

    import hazmat

    tasks = hazmat.discover_tasks([Path("tasks/examples")])
    agent = hazmat.resolve_agent("solution")
    run_dir, results = asyncio.run(
        hazmat.run_tasks(tasks, [agent], backend="local", out_dir=Path("runs"))
    )
    print(hazmat.verify_run(run_dir).ok)
    print(hazmat.load_run(run_dir).episodes)

- run tasks: :func:`discover_tasks`, :func:`load_task`, :func:`resolve_agent`,
  :func:`load_policy`, :func:`run_tasks`;
- read and check a run: :func:`load_run`, :func:`verify_run`;
- sandboxes: :class:`Sandbox`, :class:`SandboxSpec`, :class:`ExecResult`,
  :func:`create_sandbox` (more in :mod:`hazmat.sandbox`);
- errors: every error hazmat raises on purpose is a :class:`HazmatError`
  (:mod:`hazmat.errors` draws the tree).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.agents.models import resolve_agent
    from hazmat.errors import HazmatError
    from hazmat.policy.engine import load_policy
    from hazmat.replay.trace import load_run
    from hazmat.replay.verify import verify_run
    from hazmat.runner import run_tasks
    from hazmat.sandbox.base import ExecResult, Sandbox, SandboxSpec
    from hazmat.sandbox.registry import create_sandbox
    from hazmat.tasks.load import discover_tasks, load_task

__all__ = [
    "ExecResult",
    "HazmatError",
    "Sandbox",
    "SandboxSpec",
    "create_sandbox",
    "discover_tasks",
    "load_policy",
    "load_run",
    "load_task",
    "resolve_agent",
    "run_tasks",
    "verify_run",
]

_WHERE = {
    "ExecResult": "hazmat.sandbox.base",
    "HazmatError": "hazmat.errors",
    "Sandbox": "hazmat.sandbox.base",
    "SandboxSpec": "hazmat.sandbox.base",
    "create_sandbox": "hazmat.sandbox.registry",
    "discover_tasks": "hazmat.tasks.load",
    "load_policy": "hazmat.policy.engine",
    "load_run": "hazmat.replay.trace",
    "load_task": "hazmat.tasks.load",
    "resolve_agent": "hazmat.agents.models",
    "run_tasks": "hazmat.runner",
    "verify_run": "hazmat.replay.verify",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hazmat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
