"""``hazmat verify`` and ``hazmat seal``: is a recorded run intact?

``RUN`` is a run directory, or a run id looked up under ``./runs``.

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
from typing import Annotated

import typer

from hazmat.cli.args import resolve_run
from hazmat.cli.root import app, command
from hazmat.errors import RecordError

__all__ = ["seal", "verify"]


@command(app)
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
    from hazmat.replay.verify import verify_run

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


@command(app)
def seal(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
) -> None:
    """Verify the run, write its final hash to run.json, and print the hash."""
    from hazmat.replay.verify import seal_run

    typer.echo(seal_run(resolve_run(run)))
