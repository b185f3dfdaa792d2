"""Synthetic run directories for report tests: real run.json (RunStore), real task
folders, and the events the report reads (episode_start/end, model_call, milestone).

The events are written as plain JSON lines without the hash chain: the report
does not verify the chain (``hazmat verify`` does), it only reads fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hazmat.record.store import EpisodeRecord, Halt, MilestoneHit, RunStore, Tokens


def write_task(root: Path, task_id: str, category: str, milestones: list[str]) -> Path:
    """A minimal loadable task folder with the given milestone ids; returns the folder."""
    folder = root / "tasks" / task_id
    folder.mkdir(parents=True, exist_ok=True)
    ms = "\n".join(
        f"  - {{id: {m}, title: reached {m}, check: {{submission: {m}}}}}" for m in milestones
    )
    (folder / "task.yaml").write_text(
        f"id: {task_id}\ntitle: Synthetic {task_id}\ncategory: {category}\n"
        f"instructions: do it\nmilestones:\n{ms}\n"
    )
    return folder


def make_run(
    out: Path, run_id: str, episodes: list[dict[str, Any]], tasks: dict[str, Path]
) -> Path:
    """Write a run directory.

    Each episode dict: task, agent, epoch, status, reached (milestone ids),
    total (milestones), and optional halt_rule, tokens (in, out), duration,
    responses (model_call response dicts), submission. Status ``interrupted``
    is written as the runner leaves it: no end reason in run.json, no
    ``episode_end`` event, and the run's status ``interrupted``.
    """
    store = RunStore.create(
        out, run_id, tasks=sorted(tasks), agents=list(dict.fromkeys(e["agent"] for e in episodes))
    )
    lines = []
    for i, e in enumerate(episodes, start=1):
        eid = f"ep{i:04d}"
        reached = list(e.get("reached", []))
        total = int(e["total"])
        progress = len(reached) / total
        halt = Halt(step=2, rule=e["halt_rule"], evidence="x") if e.get("halt_rule") else None
        tin, tout = e.get("tokens", (0, 0))
        interrupted = e["status"] == "interrupted"
        store.add_episode(
            EpisodeRecord(
                episode_id=eid,
                task_id=e["task"],
                agent=e["agent"],
                epoch=e.get("epoch", 0),
                seed=i,
                status=None if interrupted else e["status"],
                error=e.get("error"),
                progress=progress,
                depth=reached[-1] if reached else None,
                milestones=[
                    MilestoneHit(id=m, step=j + 1, t=0.1 * j) for j, m in enumerate(reached)
                ],
                decisions={"allow": 3},
                halt=halt,
                tokens=Tokens(input=tin, output=tout),
                steps=e.get("steps", 3),
                duration=e.get("duration", 1.0),
            )
        )
        lines.append(
            {
                "event": "episode_start",
                "episode_id": eid,
                "task_id": e["task"],
                "agent": e["agent"],
                "epoch": e.get("epoch", 0),
                "seed": i,
                "task_root": str(tasks[e["task"]]),
            }
        )
        for resp in e.get("responses", []):
            lines.append({"event": "model_call", "episode_id": eid, "response": resp})
        if interrupted:
            continue
        lines.append(
            {
                "event": "episode_end",
                "episode_id": eid,
                "reason": e["status"],
                "progress": progress,
                "depth": reached[-1] if reached else None,
                "depth_index": len(reached),
                "milestones_total": total,
                "milestones_reached": reached,
                "submission": e.get("submission"),
            }
        )
    (store.path / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    interrupted_run = any(e["status"] == "interrupted" for e in episodes)
    store.set_status("interrupted" if interrupted_run else "complete")
    return store.path
