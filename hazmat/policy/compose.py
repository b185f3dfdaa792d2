"""The policy an episode runs under: a base policy with the task's own overrides on top.

One rule, used by ``hazmat run``, ``hazmat validate``, the pytest plugin and replay alike:
the base is the built-in default policy (``None`` or ``"default"``) or a policy file; the
task's ``policy:`` key (``{extends, allow, rules, settings}``) is applied on top of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.policy.engine import RulePolicy
    from hazmat.tasks.spec import Task

__all__ = ["BUILTIN", "TaskPolicies", "base_name", "declared_hosts", "for_task", "task_policies"]

BUILTIN = ("default", "builtin:default")
"""Names of the built-in default policy."""


def base_name(base: str | Path | None) -> str:
    """How a base policy is recorded in ``run.json``: ``default`` or an absolute path."""
    if base is None or str(base) in BUILTIN:
        return "default"
    return str(Path(base).resolve())


def declared_hosts(task: Task) -> list[str]:
    """The destinations a task declares (its services' names and its ``allow_hosts``): every
    other endpoint a call names is outside the task."""
    return [*task.sandbox.services, *task.sandbox.allow_hosts]


def for_task(task: Task, base: str | Path | None = None) -> RulePolicy:
    """The policy of one task: ``base`` (built-in default when None) with the task's
    overrides applied on top.

    Raises:
        PolicyError: the base or the task's overrides do not load.
    """
    from hazmat.policy.engine import load_policy

    ref: Any = task.policy
    if base is not None and str(base) not in BUILTIN:
        path = base_name(base)
        ref = {**ref, "extends": path} if isinstance(ref, dict) else path
    return load_policy(ref, base_dir=task.root)


class TaskPolicies:
    """Gives each task its policy (:func:`for_task` on one base), each loaded once; the
    runner records :attr:`base` in ``run.json`` so a replay rebuilds the same policy."""

    def __init__(self, base: str | Path | None = None) -> None:
        self.base = base_name(base)
        """How the base is recorded: ``default`` or an absolute path."""
        self._cache: dict[str, RulePolicy] = {}

    def __call__(self, task: Task) -> RulePolicy:
        """The policy of ``task``.

        Raises:
            PolicyError: the base or the task's own policy does not load.
        """
        key = json.dumps([task.policy, str(task.root)], sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = for_task(task, self.base)
        return self._cache[key]


def task_policies(base: str | Path | None = None) -> TaskPolicies:
    """A function giving each task its policy (:func:`for_task`), each loaded once."""
    return TaskPolicies(base)
