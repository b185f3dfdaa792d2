"""``hazmat list`` (the task cards of a suite: ``task@variant``), ``hazmat validate`` (every
task's solution reaches 1.0 and proves it, the null agent 0.0) and ``hazmat import``
(tasks from other benchmarks)."""

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

__all__ = ["import_tasks", "list_tasks", "print_verdicts", "validate"]


@command(app, "list")
def list_tasks(
    paths: Annotated[list[Path], typer.Argument(help="task.yaml files, task folders or suites")],
    as_json: Annotated[bool, typer.Option("--json", help="print the cards as JSON")] = False,
) -> None:
    """List tasks with their cards: id (``task@variant`` for a variant), title, category,
    milestones, needs_docker.

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


def _proof_cell(v: TaskVerdict) -> str:
    if v.solution is None:
        return "-"
    parts = []
    for m in v.milestones:
        where = "missed" if m["step"] is None and not m["proven"] else f"step {m['step']}"
        if m["step"] is None and m["proven"]:
            where = "final checks"
        parts.append(f"{m['id']}: {where}" + ("" if m["proven"] else " (unproven)"))
    return "; ".join(parts)


def _cell(v: TaskVerdict, which: str) -> str:
    r = v.solution if which == "solution" else v.null
    if r is None:
        return "-"
    return f"{r.progress:.2f} {r.reason}"


def print_verdicts(verdicts: list[TaskVerdict], *, console: Console) -> None:
    """The validation table: task, backend, solution, null, which step reached each
    milestone (and whether it proves it), verdict (and problems)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"validated {len(verdicts)} task(s)", title_justify="left")
    for col in ("task", "backend", "solution", "null", "milestones", "verdict"):
        table.add_column(col, no_wrap=col == "task")
    for v in verdicts:
        if v.skipped:
            verdict = f"[yellow]skip[/] ({escape(v.skipped)})"
        elif not v.ok:
            verdict = "[red]FAIL[/]: " + escape("; ".join(v.problems))
        elif v.unproven:
            verdict = "[yellow]ok, unproven[/]: " + escape("; ".join(v.unproven))
        else:
            verdict = "[green]ok, proven[/]"
        table.add_row(
            v.task_id,
            v.backend or "-",
            _cell(v, "solution"),
            _cell(v, "null"),
            escape(_proof_cell(v)),
            verdict,
        )
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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="fail a task whose solution is unproven (reaches a milestone only by "
            "handing over a literal answer or a task secret, or never contacts a service)",
        ),
    ] = False,
) -> None:
    """Run each task's reference solution (must reach progress 1.0 with every milestone)
    and the null agent (must reach 0.0); print a table saying which solution step reached
    each milestone and whether it proves it; exit 1 when any task fails (with --strict,
    also when a solution is unproven).

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
        state = "skip" if v.skipped else ("FAIL" if not v.ok else "ok")
        if v.ok and not v.skipped:
            state += ", proven" if v.proven else ", unproven"
        err.print(f"{v.task_id}: {state}", highlight=False, markup=False)

    try:
        run_dir, verdicts = asyncio.run(
            validate_tasks(
                tasks,
                sandbox=sandbox,
                out_dir=out,
                seed=seed,
                jobs=jobs,
                policy_for=task_policies(policy),
                on_verdict=None if as_json else progress,
                strict=strict,
            )
        )
    except KeyboardInterrupt:
        err.print(
            f"interrupted: validation stopped, sandboxes cleaned up (record under {out})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    if as_json:
        print(
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "ok": all(v.ok for v in verdicts),
                    "counts": _counts(verdicts),
                    "tasks": [v.as_dict() for v in verdicts],
                },
                sort_keys=True,
            )
        )
    else:
        print_verdicts(verdicts, console=console.out())
        counts = _counts(verdicts)
        err.print(", ".join(f"{k} {n}" for k, n in counts.items()), highlight=False)
        err.print(f"record: {run_dir}", highlight=False)
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


def _counts(verdicts: list[TaskVerdict]) -> dict[str, int]:
    ran = [v for v in verdicts if not v.skipped]
    return {
        "tasks": len(verdicts),
        "ok": sum(v.ok for v in ran),
        "failed": sum(not v.ok for v in ran),
        "proven": sum(v.ok and v.proven for v in ran),
        "unproven": sum(v.ok and not v.proven for v in ran),
        "skipped": len(verdicts) - len(ran),
    }


@command(app, "import")
def import_tasks(
    source: Annotated[str, typer.Argument(help="intercode-ctf, cybench or metr")],
    path: Annotated[
        Path,
        typer.Argument(
            help="the benchmark's data (intercode-ctf: the folder with ic_ctf.json; cybench: "
            "a task folder or a folder of them; metr: a task family folder)"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="a new folder for the tasks")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the import report as JSON")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="validate every task whose solution claims to be proven; one whose script "
            "does not yield the answer falls back to a literal (unproven) solution",
        ),
    ] = False,
    sandbox: Annotated[
        str, typer.Option("--sandbox", "-s", help="for --check: auto, local or docker")
    ] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="for --check: episodes at once")] = 2,
    runs: Annotated[Path, typer.Option("--runs", help="for --check: runs directory")] = Path(
        "runs"
    ),
) -> None:
    """Import tasks from another benchmark as ordinary task folders (task.yaml and files,
    with provenance), and write an import report (import-report.json, IMPORT.md): what
    was mapped, what was dropped and why, which tasks were skipped, every service rebuilt.

    Raises:
        ConfigError: an unknown source, a path not in the source's format, or --out not empty.
    """
    from hazmat.cli import console
    from hazmat.tasks.importers import import_tasks as run_import

    report = run_import(source, path, out)
    if check:
        import asyncio

        from hazmat.validate import check_imported

        err = console.err()

        def said(v: TaskVerdict) -> None:
            state = "ok" if v.ok else "falls back: " + "; ".join(v.problems)
            err.print(f"check {v.task_id}: {state}", highlight=False, markup=False)

        asyncio.run(check_imported(report, sandbox=sandbox, out_dir=runs, jobs=jobs, progress=said))
    if as_json:
        print(json.dumps({"counts": report.counts, **report.model_dump()}, sort_keys=True))
        return
    con = console.out()
    if not con.is_terminal:  # piped: one line per finding, not wrapped at 80 columns
        con.width = max(con.width, 200)
    counts = report.counts
    con.print(
        f"imported {counts['imported']} task(s) from {source} into {out}: "
        f"{counts['proven']} with a proven solution, {counts['unproven']} unproven, "
        f"{counts['skipped']} skipped, {counts['service_rewrites']} service rewrite(s)",
        highlight=False,
        markup=False,
    )
    for s in report.skipped:
        con.print(f"  skipped {s.source_id}: {s.reason}", highlight=False, markup=False)
    con.print(f"report: {out / 'IMPORT.md'}", highlight=False, markup=False)
