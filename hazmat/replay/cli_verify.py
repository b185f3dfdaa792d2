"""``hazmat verify`` and ``hazmat seal``: typer command functions the CLI mounts.

Mount with ``app.command("verify")(verify)`` and ``app.command("seal")(seal)``,
or use the sub-app :data:`app` as is. ``RUN`` is a run directory, or a run id
looked up under ``./runs``.

Exit codes: 0 when everything holds (an interrupted run that verifies up to its
last event is 0 too; ``--json`` says ``"interrupted": true``), 5
(:class:`hazmat.errors.RecordError`) when the record is broken or cannot be
sealed, 2 when ``RUN`` is not a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hazmat.errors import RecordError
from hazmat.replay.verify import seal_run, verify_run

__all__ = ["app", "resolve_run", "seal", "verify"]

app = typer.Typer(help="Verify and seal recorded runs.", no_args_is_help=True)


def resolve_run(run: str) -> Path:
    """``run`` as a run directory: a path, or a run id under ``./runs``.

    Raises :class:`typer.Exit` (code 2) with a one-line error when neither exists.
    """
    path = Path(run)
    if (path / "events.jsonl").is_file() or (path / "run.json").is_file():
        return path
    alt = Path("runs") / run
    if (alt / "events.jsonl").is_file() or (alt / "run.json").is_file():
        return alt
    typer.echo(f"error: {run}: not a run directory (no run.json or events.jsonl)", err=True)
    raise typer.Exit(2)


def verify(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (last line).")
    ] = False,
    expect: Annotated[
        str | None, typer.Option("--expect", help="The hash `hazmat seal` printed.")
    ] = None,
) -> None:
    """Recompute the hash chain, check every blob and run.json; exit 0 only if all hold."""
    path = resolve_run(run)
    try:
        report = verify_run(path, expect=expect)
    except RecordError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        raise typer.Exit(RecordError.exit_code) from exc
    if json_out:
        sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
    elif report.ok:
        typer.echo(report.summary)
        for w in report.warnings:
            typer.echo(f"warning: {w}", err=True)
    else:
        typer.echo(f"error: {path}: {report.summary}", err=True)
    if not report.ok:
        raise typer.Exit(RecordError.exit_code)


def seal(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
) -> None:
    """Verify the run, write its final hash to run.json, and print the hash."""
    path = resolve_run(run)
    try:
        digest = seal_run(path)
    except RecordError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        raise typer.Exit(exc.exit_code) from exc
    typer.echo(digest)


app.command("verify")(verify)
app.command("seal")(seal)
