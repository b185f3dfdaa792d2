"""Episodes and runs: one task, one agent, one fresh sandbox, every step scored and recorded.

::

    run_dir = await run_tasks(tasks, [resolve_agent("solution")], backend="local", out_dir="runs")

:func:`run_episode` is one episode: it renders the task for the episode seed,
starts a sandbox, runs the agent loop (model -> policy gate -> tools), checks
milestones after every step and all of them at the end, and records every
step. On a policy halt the sandbox is frozen and a snapshot saved under
``episodes/<episode_id>/`` before it is cleaned up. A harness fault ends the
episode with reason ``error`` and never stops the other episodes of the run.
"""

from __future__ import annotations

from hazmat.preflight import backend_for
from hazmat.runner.episode import run_episode
from hazmat.runner.plan import (
    PlannedEpisode,
    RunControl,
    default_parallelism,
    execute_plan,
    plan_episodes,
    run_tasks,
)
from hazmat.runner.play import chat_model
from hazmat.runner.result import EpisodeResult, PolicyFactory, episode_seed, task_environment
from hazmat.runner.resume import resume_run

__all__ = [
    "EpisodeResult",
    "PlannedEpisode",
    "PolicyFactory",
    "RunControl",
    "backend_for",
    "chat_model",
    "default_parallelism",
    "episode_seed",
    "execute_plan",
    "plan_episodes",
    "resume_run",
    "run_episode",
    "run_tasks",
    "task_environment",
]
