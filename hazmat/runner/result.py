"""What one episode came to, its seed, and the sandbox spec it runs in."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hazmat.policy.base import Policy
from hazmat.sandbox import SandboxSpec
from hazmat.tasks import Task
from hazmat.tasks.environment import Environment, environment_of
from hazmat.tasks.spec import TaskSandbox

__all__ = ["EpisodeResult", "PolicyFactory", "episode_seed", "sandbox_spec", "task_environment"]

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


def sandbox_spec(task: Task, env: Environment | None = None) -> SandboxSpec:
    labels = {**task.sandbox.labels, "hazmat.task": task.id}
    if env is None:
        env = task_environment(task)
    spec: SandboxSpec = task.sandbox
    if isinstance(spec, TaskSandbox):
        spec = spec.sandbox_spec(env.tag if env is not None else None)
    return spec.model_copy(update={"labels": labels})
