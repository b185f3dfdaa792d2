"""Writing small task folders and running them for the task-format tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from hazmat.agents.models import Agent
from hazmat.runner import EpisodeResult, run_tasks
from hazmat.tasks import Task, load_task

REPO = Path(__file__).resolve().parents[2]


def write_task(folder: Path, yaml_text: str, files: dict[str, bytes | str] | None = None) -> Path:
    """Write ``task.yaml`` (dedented) and ``files`` (relative path -> content) into
    ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.yaml").write_text(textwrap.dedent(yaml_text))
    for rel, data in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    return folder


async def play(
    task: Task,
    script: list[dict[str, Any]] | None,
    out: Path,
    *,
    backend: str = "local",
    seed: int = 0,
) -> tuple[EpisodeResult, list[dict[str, Any]]]:
    """One episode of ``task`` (``script`` None: the solution agent); returns its result
    and the record's events."""
    agent = (
        Agent(name="solution", kind="solution")
        if script is None
        else Agent(name="scripted", kind="scripted", script=script)
    )
    run_dir, results = await run_tasks([task], [agent], backend=backend, out_dir=out, seed=seed)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return results[0], events


def notes(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The ``note`` events of one kind."""
    return [e for e in events if e["event"] == "note" and e.get("kind") == kind]


__all__ = ["REPO", "load_task", "notes", "play", "write_task"]
