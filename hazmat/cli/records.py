"""``hazmat verify`` and ``hazmat seal``: typer command functions the CLI mounts.

Mount with ``app.command("verify")(verify)`` and ``app.command("seal")(seal)``,
or use the sub-app :data:`app` as is. ``RUN`` is a run directory, or a run id
looked up under ``./runs``.

Failures raise :class:`hazmat.errors.HazmatError` subclasses, which the
``hazmat`` entry point turns into one ``error: ...`` line on stderr and the
error's exit code: :class:`RecordError` (5) when the record is broken or
cannot be sealed, :class:`ConfigError` (2) when ``RUN`` is not a run. Exit 0
when everything holds; an interrupted run that verifies up to its last event
is 0 too (``--json`` says ``"interrupted": true``). With ``--json`` the report
is printed on stdout (its last line) before any error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hazmat.errors import ConfigError, RecordError
from hazmat.replay.verify import seal_run, verify_run

__all__ = ["app", "resolve_run", "seal", "verify"]

app = typer.Typer(help="Verify and seal recorded runs.", no_args_is_help=True)


def resolve_run(run: str) -> Path:
    """``run`` as a run directory: a path, or a run id under ``./runs``.

    Raises :class:`ConfigError` when neither holds a run.
    """
    path = Path(run)
    if (path / "events.jsonl").is_file() or (path / "run.json").is_file():
        return path
    alt = Path("runs") / run
    if (alt / "events.jsonl").is_file() or (alt / "run.json").is_file():
        return alt
    raise ConfigError(
        f"{run}: not a run directory (no run.json or events.jsonl)",
        hint="pass a path under your --out directory",
    )


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
    report = verify_run(path, expect=expect)
    if json_out:
        sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
        sys.stdout.flush()
    elif report.ok:
        typer.echo(report.summary)
    if report.ok:
        for w in report.warnings:
            typer.echo(f"warning: {w}", err=True)
        return
    raise RecordError(f"{path}: {report.summary}")


def seal(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
) -> None:
    """Verify the run, write its final hash to run.json, and print the hash."""
    typer.echo(seal_run(resolve_run(run)))


app.command("verify")(verify)
app.command("seal")(seal)
