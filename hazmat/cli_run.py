"""``hazmat run``: run tasks with agents in fresh sandboxes and record everything."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hazmat.agents.models import resolve_agent
from hazmat.errors import ConfigError
from hazmat.runner import EpisodeResult, run_tasks
from hazmat.tasks import Task, discover_tasks

__all__ = ["print_results", "run"]

console = Console(stderr=True)


def policy_factory(policy_file: Path | None) -> Any:
    """A function giving each task its policy (the task's own overrides on the base)."""
    try:
        from hazmat.policy.engine import load_policy
    except ImportError:  # pragma: no cover - the policy layer is part of the package
        return None

    def make(task: Task) -> Any:
        ref: Any = task.policy
        if policy_file is not None:
            if isinstance(ref, dict):
                ref = {**ref, "extends": str(policy_file)}
            else:
                ref = str(policy_file)
        return load_policy(ref, base_dir=task.root)

    return make


def print_results(results: list[EpisodeResult], run_dir: Path, *, stream: Any = None) -> None:
    """Print the per-episode table (task, agent, end reason, progress, depth, steps, time)."""
    table = Table(title=f"run {run_dir.name}", title_justify="left")
    for col in ("episode", "task", "agent", "end", "progress", "depth", "steps", "time"):
        table.add_column(col, justify="right" if col in ("progress", "steps", "time") else "left")
    for r in results:
        end = r.reason + (f" ({r.detail})" if r.reason in ("limit", "error", "halted") and
                          r.detail else "")
        colour = {"halted": "red", "error": "magenta", "limit": "yellow"}.get(r.reason, "")
        table.add_row(r.episode_id, r.task_id, r.agent,
                      f"[{colour}]{end}[/]" if colour else end,
                      f"{r.progress:.2f}", r.depth_id or "-", str(r.steps), f"{r.duration:.1f}s")
    con = stream or Console()
    if not con.is_terminal:
        con.width = max(con.width, 140)
    con.print(table)


def run(
    task_paths: Annotated[list[Path], typer.Argument(help="task folders or task.yaml files")],
    agent: Annotated[list[str], typer.Option(
        "--agent", "-a", help="solution, null, scripted:FILE or PROVIDER:MODEL")] = ["solution"],  # noqa: B006
    sandbox: Annotated[str, typer.Option("--sandbox", "-s", help="local or docker")] = "local",
    out: Annotated[Path, typer.Option("--out", "-o", help="runs directory")] = Path("runs"),
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="OpenAI-compatible server URL for openai:NAME")] = None,
    seed: Annotated[int, typer.Option(help="run seed (episode seeds derive from it)")] = 0,
    epochs: Annotated[int, typer.Option(help="episodes per task and agent")] = 1,
    policy: Annotated[Path | None, typer.Option(help="policy file (default: built-in)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
) -> None:
    """Run each task with each agent in a fresh sandbox; record and score every step.

    Exit code 0 when every episode ran (whatever the agent achieved), 1 when an
    episode ended in a harness error, 2 on bad input.
    """
    from hazmat.sandbox.base import get_backend

    get_backend(sandbox)
    if epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    agents = [resolve_agent(a, base_url=base_url) for a in agent]
    tasks = discover_tasks(list(task_paths))
    if not tasks:
        raise ConfigError(f"no task.yaml found under {', '.join(map(str, task_paths))}")
    total = len(tasks) * len(agents) * epochs
    done = 0

    def progress(r: EpisodeResult) -> None:
        nonlocal done
        done += 1
        console.print(f"[{done}/{total}] {r.task_id} {r.agent}: {r.reason} "
                      f"progress {r.progress:.2f}", highlight=False)

    argv = sys.argv[1:]
    run_dir, results = asyncio.run(run_tasks(
        tasks, agents, backend=sandbox, out_dir=out, seed=seed, epochs=epochs,
        policy_for=policy_factory(policy), on_episode=progress,
        config={"argv": argv, "base_url": base_url,
                "policy": str(policy) if policy else "default"}))
    print_results(results, run_dir, stream=Console(stderr=as_json))
    if as_json:
        summary = json.loads((run_dir / "run.json").read_text())
        print(json.dumps(summary, sort_keys=True))
    else:
        console.print(f"record: {run_dir}", highlight=False)
    if any(r.reason == "error" for r in results):
        raise typer.Exit(1)
