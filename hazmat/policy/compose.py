"""The policy an episode runs under: a base policy with the task's own overrides on top.

One rule, used by ``hazmat run``, ``hazmat validate``, the pytest plugin and replay alike:
the base is the built-in default policy (``None`` or ``"default"``) or a policy file; the
task's ``policy:`` key (``{extends, allow, rules, settings}``) is applied on top of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.policy.engine import RulePolicy
    from hazmat.tasks.spec import Task

__all__ = ["BUILTIN", "base_name", "declared_hosts", "for_task", "task_policies"]

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


def task_policies(base: str | Path | None = None) -> Callable[[Task], RulePolicy]:
    """A function giving each task its policy (:func:`for_task`), each loaded once."""
    cache: dict[str, RulePolicy] = {}
    resolved = base_name(base)

    def make(task: Task) -> RulePolicy:
        key = json.dumps([task.policy, str(task.root)], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = for_task(task, resolved)
        return cache[key]

    return make
