"""``hazmat verify``, ``hazmat seal`` and ``hazmat keys``: is a recorded run intact?

``RUN`` is a run directory, or a run id looked up under ``./runs``.

Seals live outside the run directory too: in the seal log (``$HAZMAT_SEAL_LOG``, else
``$XDG_DATA_HOME/hazmat/seals.jsonl``, i.e. ``~/.local/share/hazmat/``). Every run
is sealed when it finishes; ``hazmat seal`` seals one by hand; ``hazmat keys init``
makes an Ed25519 key that signs every seal from then on. ``hazmat verify`` checks the
run against the seal log and says plainly when the run is not sealed.

Failures raise :class:`hazmat.errors.HazmatError` subclasses, which the
``hazmat`` entry point turns into one ``error: ...`` line on stderr and the
error's exit code: :class:`RecordError` (5) when the record is broken or
cannot be sealed, :class:`ConfigError` (2) when ``RUN`` is not a run or a key
exists already. Exit 0 when everything holds; an interrupted run that verifies
up to its last event is 0 too (``--json`` says ``"interrupted": true``), and so is
a run that is not sealed (unless ``--sealed``). With ``--json`` the report is
printed on stdout (its last line) before any error.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from hazmat.cli.args import resolve_run
from hazmat.cli.root import app, command, group
from hazmat.errors import RecordError

__all__ = ["keys_init", "keys_show", "seal", "verify"]

keys_app = group("The key that signs seals (Ed25519).")
app.add_typer(keys_app, name="keys")


@command(app)
def verify(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (last line).")
    ] = False,
    expect: Annotated[
        str | None, typer.Option("--expect", help="The hash `hazmat seal` printed.")
    ] = None,
    sealed: Annotated[
        bool, typer.Option("--sealed", help="Fail when the seal log has not sealed the run.")
    ] = False,
) -> None:
    """Recompute the hash chain, check every blob, check that run.json says what the events
    say, and check the run against the seal log; exit 0 only if all hold.

    The last part of the summary says whether the run is sealed (and signed), or plainly
    that it is not.
    """
    from hazmat.replay.verify import verify_run

    path = resolve_run(run)
    report = verify_run(path, expect=expect, require_seal=sealed)
    if json_out:
        sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
        sys.stdout.flush()
    elif report.ok:
        typer.echo(report.summary)
        if report.seal is not None:
            typer.echo(f"seal log: {report.seal.log}")
    if report.ok:
        for w in report.warnings:
            typer.echo(f"warning: {w}", err=True)
        return
    raise RecordError(f"{path}: {report.summary}")


@command(app)
def seal(
    run: Annotated[str, typer.Argument(help="Run directory or run id (under ./runs).")],
) -> None:
    """Verify the run, seal its last event in the seal log outside the run directory
    (signed when a key exists, see `hazmat keys init`), copy the seal to run.json, and
    print the hash. Keep the hash elsewhere too, and check later with
    `hazmat verify RUN --expect HASH`.

    Every run is sealed when it finishes; this seals again only what is not sealed yet.
    """
    from hazmat.record.seals import SealLog
    from hazmat.replay.verify import seal_record

    log = SealLog()
    entry = seal_record(resolve_run(run), seal_log=log)
    typer.echo(entry.hash)
    how = (
        f"signed by {entry.key}"
        if entry.sig and entry.key
        else "unsigned (no key: hazmat keys init)"
    )
    typer.echo(f"sealed {entry.run_id} at seq {entry.seq}, {how}; seal log {log.path}", err=True)


@command(keys_app, "init")
def keys_init() -> None:
    """Make the Ed25519 key that signs every seal from now on, and print its public half.

    The private key goes to $HAZMAT_SEAL_KEY, else ~/.local/share/hazmat/seal.key (mode
    0600); the public key beside it, as seal.pub: give that file to whoever verifies. An
    existing key is never replaced (seals signed with it need it to verify).
    """
    from hazmat.record.seals import init_key

    path, public = init_key()
    typer.echo(public)
    typer.echo(f"signing key {path} (private); public key {path.with_suffix('.pub')}", err=True)


@command(keys_app, "show")
def keys_show() -> None:
    """Print the public key seals are signed and checked with, and where the key and the
    seal log are. Exit 1 when no key is configured."""
    from hazmat.record.seals import key_path, seal_log_path, trusted_public_key

    public = trusted_public_key()
    typer.echo(f"key: {key_path()}")
    typer.echo(f"seal log: {seal_log_path()}")
    if public is None:
        typer.echo("no signing key: seals are not signed (hazmat keys init makes one)", err=True)
        raise typer.Exit(1)
    typer.echo(f"public key: {public}")
