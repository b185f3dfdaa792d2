"""Synthetic run directories for report tests: real task folders and real records
(a Recorder writes the hash-chained events; run.json is derived from them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
    """Write a run directory through a real :class:`~hazmat.record.log.Recorder` (a real
    hash chain; run.json derived from the events, as hazmat writes it).

    Each episode dict: task, agent, epoch, status, reached (milestone ids), total
    (milestones), and optional halt_rule, tokens (in, out), duration, steps, error,
    responses (model_call response dicts), submission. Status ``interrupted`` is written
    as the runner leaves it: no ``episode_end`` event, and the run ``interrupted``.
    """
    from hazmat.record.log import Recorder

    recorder = Recorder.create(
        out,
        run_id=run_id,
        tasks=sorted(tasks),
        agents=list(dict.fromkeys(e["agent"] for e in episodes)),
    )
    for i, e in enumerate(episodes, start=1):
        rec = recorder.bind(f"ep{i:04d}")
        reached = list(e.get("reached", []))
        total = int(e["total"])
        tin, tout = e.get("tokens", (0, 0))
        rec.start(task_id=e["task"], agent=e["agent"], epoch=e.get("epoch", 0), seed=i,
                  task_root=str(tasks[e["task"]]))  # fmt: skip
        responses = list(e.get("responses", [])) or [None]
        for j, resp in enumerate(responses):
            usage = {"input_tokens": tin, "output_tokens": tout} if j == 0 else {}
            rec.emit("model_call", response=resp, usage=usage)
        for j, m in enumerate(reached):
            rec.emit("milestone", id=m, step=j + 1, t=round(0.1 * j, 3))
        for _ in range(3):
            rec.emit("policy_decision", stage="before", action="allow", step=1, rules=[])
        if e.get("halt_rule"):
            rule = {"rule": e["halt_rule"], "action": "halt", "evidence": "x"}
            rec.emit("policy_decision", stage="before", action="halt", step=2, rules=[rule])
        if e.get("error"):
            rec.emit("error", kind="harness", message=e["error"])
        if e["status"] == "interrupted":
            continue
        rec.end(
            e["status"],
            progress=len(reached) / total,
            depth=reached[-1] if reached else None,
            depth_index=len(reached),
            steps=e.get("steps", 3),
            duration=e.get("duration", 1.0),
            submission=e.get("submission"),
            error=e.get("error"),
            milestones_reached=reached,
            milestones_total=total,
        )
    interrupted_run = any(e["status"] == "interrupted" for e in episodes)
    recorder.finish("interrupted" if interrupted_run else "complete")
    return recorder.path
