"""``hazmat list``: the task cards of a suite. Mount with ``app.command("list")(list_tasks)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hazmat.tasks.load import discover_tasks

__all__ = ["list_tasks"]


def list_tasks(
    paths: Annotated[list[Path], typer.Argument(help="task.yaml files, task folders or suites")],
    as_json: Annotated[bool, typer.Option("--json", help="print the cards as JSON")] = False,
) -> None:
    """List tasks with their cards: id, title, category, milestones, needs_docker.

    Raises:
        SpecError: a path is missing or a task does not load (the CLI prints one line).
    """
    tasks = discover_tasks(paths)
    if as_json:
        print(json.dumps([t.card() for t in tasks], sort_keys=True))
        return
    table = Table(title=f"{len(tasks)} task(s)")
    table.add_column("id", no_wrap=True)
    for column in ("category", "difficulty", "milestones", "docker", "title"):
        table.add_column(column)
    for t in tasks:
        table.add_row(
            t.id,
            t.category,
            t.difficulty or "-",
            " > ".join(m.id for m in t.milestones),
            "yes" if t.needs_docker else "no",
            t.title,
        )
    con = Console()
    if not con.is_terminal:  # piped: do not squeeze the cards into 80 columns
        con.width = max(con.width, 160)
    con.print(table)
