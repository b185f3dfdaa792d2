"""``hazmat list`` (the task cards of a suite) and ``hazmat validate`` (every task's
solution reaches 1.0 and the null agent 0.0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hazmat.cli.root import app, command
from hazmat.errors import ConfigError, SpecError

if TYPE_CHECKING:
    from rich.console import Console

    from hazmat.validate import TaskVerdict

__all__ = ["list_tasks", "print_verdicts", "validate"]


@command(app, "list")
def list_tasks(
    paths: Annotated[list[Path], typer.Argument(help="task.yaml files, task folders or suites")],
    as_json: Annotated[bool, typer.Option("--json", help="print the cards as JSON")] = False,
) -> None:
    """List tasks with their cards: id, title, category, milestones, needs_docker.

    Raises:
        SpecError: a path is missing or a task does not load (the CLI prints one line).
    """
    from rich.table import Table

    from hazmat.cli.console import out
    from hazmat.tasks.load import discover_tasks

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
    con = out()
    if not con.is_terminal:  # piped: do not squeeze the cards into 80 columns
        con.width = max(con.width, 160)
    con.print(table)


def _cell(v: TaskVerdict, which: str) -> str:
    r = v.solution if which == "solution" else v.null
    if r is None:
        return "-"
    return f"{r.progress:.2f} {r.reason}"


def print_verdicts(verdicts: list[TaskVerdict], *, console: Console) -> None:
    """The validation table: task, backend, solution, null, verdict (and problems)."""
    from rich.table import Table

    table = Table(title=f"validated {len(verdicts)} task(s)", title_justify="left")
    for col in ("task", "backend", "solution", "null", "verdict"):
        table.add_column(col, no_wrap=col == "task")
    for v in verdicts:
        if v.skipped:
            verdict = f"[yellow]skip[/] ({v.skipped})"
        elif v.ok:
            verdict = "[green]ok[/]"
        else:
            verdict = "[red]FAIL[/]: " + "; ".join(v.problems)
        table.add_row(v.task_id, v.backend or "-", _cell(v, "solution"), _cell(v, "null"), verdict)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    console.print(table)


@command(app)
def validate(
    task_paths: Annotated[
        list[Path], typer.Argument(help="task folders, task.yaml files or suites")
    ],
    sandbox: Annotated[
        str,
        typer.Option(
            "--sandbox",
            "-s",
            help="auto (docker for tasks that need it, local otherwise), local "
            "(tasks needing docker are skipped) or docker",
        ),
    ] = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="runs directory")] = Path("runs"),
    seed: Annotated[int, typer.Option(help="run seed (episode seeds derive from it)")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="episodes run at once")] = 4,
    policy: Annotated[
        Path | None,
        typer.Option(help="base policy file (default: built-in); task overrides still apply"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdicts as JSON")] = False,
) -> None:
    """Run each task's reference solution (must reach progress 1.0 with every milestone)
    and the null agent (must reach 0.0); print a table; exit 1 when any task fails.

    Raises:
        ConfigError: bad --sandbox, --jobs, or no task found (exit 2).
        SpecError: a task does not load.
    """
    import asyncio

    from hazmat.cli import console
    from hazmat.policy.compose import task_policies
    from hazmat.tasks.load import discover_tasks
    from hazmat.validate import SANDBOX_CHOICES, validate_tasks

    if sandbox not in SANDBOX_CHOICES:
        raise ConfigError(
            f"unknown --sandbox {sandbox!r}", hint=f"choose one of: {', '.join(SANDBOX_CHOICES)}"
        )
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    try:
        tasks = discover_tasks(list(task_paths))
    except SpecError as exc:  # every problem of the file, one line each
        for problem in exc.problems[:-1]:
            console.error(problem)
        raise SpecError(exc.problems[-1]) from None
    if not tasks:
        raise ConfigError(f"no task.yaml found under {', '.join(map(str, task_paths))}")
    err = console.err()

    def progress(v: TaskVerdict) -> None:
        state = "skip" if v.skipped else ("ok" if v.ok else "FAIL")
        err.print(f"{v.task_id}: {state}", highlight=False, markup=False)

    run_dir, verdicts = asyncio.run(
        validate_tasks(
            tasks,
            sandbox=sandbox,
            out_dir=out,
            seed=seed,
            jobs=jobs,
            policy_for=task_policies(policy),
            on_verdict=None if as_json else progress,
        )
    )
    if as_json:
        print(
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "ok": all(v.ok for v in verdicts),
                    "tasks": [v.as_dict() for v in verdicts],
                },
                sort_keys=True,
            )
        )
    else:
        print_verdicts(verdicts, console=console.out())
        err.print(f"record: {run_dir}", highlight=False)
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)
