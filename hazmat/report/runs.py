"""Reading a run directory for the report: ``run.json`` plus what only the events say.

::

    data = load_run(Path("runs/2026-11-29T00-20-28_675900"))
    data.record          # the RunRecord (run.json)
    data.episodes        # EpisodeView per episode, with category, refusal and end reason
    data.tasks           # TaskView per task id: category, title, milestone order

``run.json`` has each episode's end reason, progress, milestones and halt; the
events add the task's category and full milestone list (loaded from the
``task_root`` recorded in ``episode_start`` when that folder still exists; else
from ``milestone`` and ``episode_end`` events), the episode's model turns (for
refusal detection, :mod:`hazmat.report.refusals`) and its submission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import HazmatError, RecordError
from hazmat.record.chain import resolve_blobs
from hazmat.record.store import EpisodeRecord, RunRecord
from hazmat.record.summary import load_run_record
from hazmat.report.refusals import Refusal, detect_refusal

__all__ = ["EpisodeView", "RunData", "TaskView", "load_run"]

log = structlog.get_logger("hazmat.report")


@dataclass
class TaskView:
    """What the report knows about a task: category, title and milestones in order."""

    task_id: str
    category: str
    title: str = ""
    milestones: list[tuple[str, str]] = field(default_factory=list)
    """``(id, title)`` in the task's order."""
    preparedness: str | None = None


@dataclass
class EpisodeView:
    """One finished episode as the scorecard sees it."""

    run_id: str
    run_dir: Path
    record: EpisodeRecord
    category: str
    depth_index: int = 0
    """1-based index of the furthest milestone reached (0: none)."""
    milestones_total: int | None = None
    reached: list[str] = field(default_factory=list)
    submission: str | None = None
    refusal: Refusal | None = None
    end: str = ""
    """The end reason: run.json's status, else ``interrupted`` (the run stopped before
    the episode ended) or ``running`` (the run is still going)."""

    def __post_init__(self) -> None:
        if not self.end:
            self.end = self.record.status or "running"

    @property
    def episode_id(self) -> str:
        """The episode id (unique within its run)."""
        return self.record.episode_id

    @property
    def complete(self) -> bool:
        """True when every milestone of the task was reached."""
        if self.milestones_total:
            return len(set(self.reached)) >= self.milestones_total
        return self.record.progress >= 1.0 - 1e-9


@dataclass
class RunData:
    """A run directory read for reporting."""

    path: Path
    record: RunRecord
    episodes: list[EpisodeView]
    tasks: dict[str, TaskView]

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.record.run_id


def _fallback_category(task_id: str) -> str:
    return task_id.split("/", 1)[0] if "/" in task_id else "uncategorized"


def _task_from_root(root: str) -> TaskView | None:
    from hazmat.tasks.load import load_task

    try:
        task = load_task(Path(root))
    except (HazmatError, OSError) as exc:
        log.debug("task_root_unreadable", root=root, error=str(exc))
        return None
    return TaskView(
        task_id=task.id,
        category=task.category,
        title=task.title,
        milestones=[(m.id, m.title) for m in task.milestones],
        preparedness=task.preparedness,
    )


def _iter_events(path: Path) -> list[dict[str, Any]]:
    file = path / "events.jsonl"
    if not file.is_file():
        return []
    out: list[dict[str, Any]] = []
    with file.open("rb") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
            except ValueError:  # a torn last line: run.json still has the summary
                continue
            if isinstance(ev, dict):
                out.append(ev)
    return out


def load_run(path: Path) -> RunData:
    """Read ``path/run.json`` and ``path/events.jsonl`` into a :class:`RunData`.

    Episodes without an end reason are kept with ``end`` = ``interrupted`` (the run
    is no longer running) or ``running``: the scorecard lists them and counts them
    in no rate.

    Raises:
        RecordError: ``path`` is not a run directory, or its events do not verify (the
            scorecard reads what ``hazmat verify`` checks, never run.json on its own).
    """
    path = Path(path)
    if path.is_file() and path.name == "run.json":
        path = path.parent
    record = load_run_record(path)  # what verify checks, never a forgeable run.json
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    turns: dict[str, list[dict[str, Any]]] = {}
    seen_ms: dict[str, dict[int, tuple[str, str]]] = {}
    for ev in _iter_events(path):
        eid, name = ev.get("episode_id"), ev.get("event")
        if not isinstance(eid, str):
            continue
        if name == "episode_start":
            starts[eid] = ev
        elif name == "episode_end":
            ends[eid] = ev
        elif name == "model_call" and isinstance(ev.get("response"), dict):
            turns.setdefault(eid, []).append(ev["response"])
        elif name == "milestone" and isinstance(ev.get("index"), int):
            task_id = str(starts.get(eid, {}).get("task_id", ""))
            seen_ms.setdefault(task_id, {})[ev["index"]] = (
                str(ev.get("id")),
                str(ev.get("title") or ev.get("id")),
            )
    tasks: dict[str, TaskView] = {}
    roots: dict[str, str] = {}
    for ev in starts.values():
        if isinstance(ev.get("task_root"), str):
            roots.setdefault(str(ev.get("task_id")), ev["task_root"])
    totals: dict[str, int] = {}
    for eid, ev in ends.items():
        tid = str(starts.get(eid, {}).get("task_id", ""))
        if isinstance(ev.get("milestones_total"), int):
            totals[tid] = ev["milestones_total"]
    for tid in {e.task_id for e in record.episodes}:
        view = _task_from_root(roots[tid]) if tid in roots else None
        if view is None or view.task_id != tid:
            known = seen_ms.get(tid, {})
            total = max([totals.get(tid, 0), *known])
            ms = [known[i] for i in sorted(known)]
            # not in milestone events: ids reached per run.json, deepest episodes first
            eps = sorted(
                (e for e in record.episodes if e.task_id == tid), key=lambda e: -len(e.milestones)
            )
            for e in eps:
                for hit in e.milestones:
                    if hit.id not in [m for m, _ in ms]:
                        ms.append((hit.id, hit.id))
            ms += [(f"#{i}", f"milestone {i}") for i in range(len(ms) + 1, total + 1)]
            view = TaskView(task_id=tid, category=_fallback_category(tid), milestones=ms)
        tasks[tid] = view
    episodes: list[EpisodeView] = []
    for rec in record.episodes:
        end = ends.get(rec.episode_id, {})
        task = tasks[rec.task_id]
        order = [m for m, _ in task.milestones]
        reached = [m.id for m in rec.milestones]
        raw_depth = end.get("depth_index")
        depth_index = (
            raw_depth
            if isinstance(raw_depth, int)
            else max((order.index(m) + 1 for m in reached if m in order), default=0)
        )
        raw_total = end.get("milestones_total")
        submission = end.get("submission") if isinstance(end.get("submission"), str) else None
        responses = [resolve_blobs_safe(path, r) for r in turns.get(rec.episode_id, [])]
        episodes.append(
            EpisodeView(
                run_id=record.run_id,
                run_dir=path,
                record=rec,
                category=task.category,
                depth_index=depth_index,
                milestones_total=raw_total if isinstance(raw_total, int) else (len(order) or None),
                reached=reached,
                submission=submission,
                refusal=detect_refusal(
                    responses, progress=rec.progress, status=rec.status, submission=submission
                ),
                end=rec.status or ("running" if record.status == "running" else "interrupted"),
            )
        )
    return RunData(path=path, record=record, episodes=episodes, tasks=tasks)


def resolve_blobs_safe(run_dir: Path, value: Any) -> Any:
    """:func:`resolve_blobs`, keeping the reference when a blob is missing."""
    try:
        return resolve_blobs(run_dir, value)
    except RecordError:
        return value
