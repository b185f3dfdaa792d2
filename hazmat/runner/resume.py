"""Finishing an interrupted run in place: what ended is kept, the rest runs again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hazmat.agents.models import Agent
from hazmat.errors import ConfigError
from hazmat.record.log import Recorder
from hazmat.runner.leftovers import events_mentioning, remove_leftovers
from hazmat.runner.plan import PlannedEpisode, RunControl, execute_plan, plan_episodes
from hazmat.runner.result import EpisodeResult, PolicyFactory

__all__ = ["resume_run"]


async def resume_run(
    run_dir: Path,
    *,
    retry_errors: bool = False,
    max_parallel: int | None = 1,
    policy_for: PolicyFactory | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_start: Callable[[PlannedEpisode], None] | None = None,
    control: RunControl | None = None,
    resolve: Callable[[str, str | None], Agent] | None = None,
    on_plan: Callable[[list[PlannedEpisode], list[PlannedEpisode]], None] | None = None,
) -> tuple[Path, list[EpisodeResult], list[str]]:
    """Finish an interrupted run in place.

    What the run's earlier processes left (a ``kill -9``: containers, volumes, images,
    local folders and cgroups) is removed first
    (:func:`~hazmat.runner.leftovers.remove_leftovers`). Completed episodes are kept;
    unfinished ones (and, with ``retry_errors``,
    those that ended in ``error``) run again from the start in fresh sandboxes,
    under the same episode id, and the record says so (a ``note`` per rerun and
    ``attempt`` on the new ``episode_start``). Returns the run directory, the
    results of every episode of the run, and the ids that were run again.
    ``on_plan(plan, todo)``, when given, learns the whole plan and what runs again
    before anything starts.

    Raises:
        ConfigError: the run cannot be resumed (complete without errors to retry,
            or its tasks are gone).
        RecordError: the record does not verify, or another process is writing it.
    """
    from hazmat.agents.models import resolve_agent
    from hazmat.record.summary import load_run_record
    from hazmat.tasks import load_task

    record = load_run_record(run_dir)  # the events say what to resume, not run.json
    cfg = record.config
    roots = cfg.get("task_roots")
    specs = cfg.get("agent_specs")
    if not isinstance(roots, list) or not isinstance(specs, list):
        raise ConfigError(f"{run_dir}: run.json has no task_roots/agent_specs to resume from")
    from hazmat.tasks.variants import split_ref

    tasks = []
    for root in roots:
        folder, variant = split_ref(str(root)) if root is not None else ("", None)
        if not Path(root or "").exists() and variant is not None:
            root = folder
        else:
            variant = None
        if root is None or not Path(root).exists():
            raise ConfigError(f"{run_dir}: task folder {root} is gone; cannot resume")
        tasks.append(load_task(Path(root), variant))
    make = resolve or (lambda spec, url: resolve_agent(spec, base_url=url))
    agents = [make(str(spec), cfg.get("base_url")) for spec in specs]
    plan = plan_episodes(tasks, agents, int(cfg.get("epochs", 1)))
    done = {e.episode_id: e for e in record.episodes}
    keep = {
        eid
        for eid, e in done.items()
        if e.status is not None and not (retry_errors and e.status == "error")
    }
    todo = [p for p in plan if p.episode_id not in keep]
    if not todo:
        raise ConfigError(
            f"{run_dir}: nothing to resume: every episode has ended",
            hint="--retry-errors reruns the episodes that ended in error",
        )
    if on_plan:
        on_plan(plan, todo)
    recorder = Recorder.open(run_dir)
    backend = str(cfg.get("backend", "local"))
    removed = remove_leftovers(run_dir, recorder.run_id, backend)
    if any(removed.values()):
        recorder.emit(
            "note",
            kind="leftovers_removed",
            removed=removed,
            message="removed what the run's earlier process left behind: "
            + ", ".join(f"{n} {k}" for k, n in removed.items() if n),
        )
    starts = _episode_starts(run_dir)
    attempts: dict[str, int] = {}
    for item in todo:
        prev = done.get(item.episode_id)
        attempts[item.episode_id] = starts.get(item.episode_id, 0) + 1
        why = (
            "it ended in error"
            if prev is not None and prev.status == "error"
            else "it was interrupted"
            if prev is not None
            else "it never started"
        )
        recorder.emit(
            "note",
            episode_id=item.episode_id,
            kind="rerun",
            message=f"episode {item.episode_id} runs again from the start: {why}",
        )
    finished = False
    try:
        _, finished = await execute_plan(
            todo,
            recorder,
            backend=backend,
            seed=int(cfg.get("seed", 0)),
            max_parallel=max_parallel,
            policy_for=policy_for,
            on_episode=on_episode,
            on_start=on_start,
            control=control,
            attempts=attempts,
        )
    finally:
        recorder.finish("complete" if finished else "interrupted")
    final = load_run_record(run_dir)
    results = [_result_from_record(e) for e in final.episodes]
    return run_dir, results, [p.episode_id for p in todo]


def _episode_starts(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ev in events_mentioning(run_dir, "episode_start"):
        if ev.get("event") == "episode_start":
            eid = str(ev.get("episode_id"))
            counts[eid] = counts.get(eid, 0) + 1
    return counts


def _result_from_record(e: Any) -> EpisodeResult:
    return EpisodeResult(
        episode_id=e.episode_id,
        task_id=e.task_id,
        agent=e.agent,
        epoch=e.epoch,
        seed=e.seed or 0,
        reason=e.status or "interrupted",
        progress=e.progress,
        depth_id=e.depth,
        steps=e.steps,
        duration=e.duration or 0.0,
        error=e.error,
        halt=e.halt.model_dump() if e.halt else None,
        milestones=[m.model_dump() for m in e.milestones],
    )
