"""The ``hazmat`` command.

Every :class:`~hazmat.errors.HazmatError` that reaches :func:`main` becomes one
line on stderr (``error: ...``) and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from hazmat.errors import ConfigError, HazmatError

app = typer.Typer(
    name="hazmat",
    help="A containment lab for dangerous-capability evaluations of AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(help="Run commands in a fresh sandbox.", no_args_is_help=True)
image_app = typer.Typer(help="The sandbox image.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(image_app, name="image")

console = Console(stderr=True)
out = Console()

BackendOpt = Annotated[str, typer.Option("--sandbox", "-s", help="backend: local or docker")]


def _spec(image: str | None, network: str = "none") -> Any:
    from hazmat.sandbox.base import SandboxSpec

    fields: dict[str, Any] = {"network": network}
    if image:
        fields["image"] = image
    try:
        return SandboxSpec(**fields)
    except ValueError as exc:
        raise ConfigError(f"invalid sandbox spec: {exc}".splitlines()[0]) from None


# doctor ------------------------------------------------------------------


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Check what this machine can run: Python, bubblewrap, Docker, the image."""
    from hazmat.doctor import diagnose

    report = asyncio.run(diagnose())
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    out.print(f"hazmat {report['hazmat']}  python {report['python']}")
    for name, info in report["backends"].items():
        mark = "[green]ok[/]" if info["ok"] else "[red]not ok[/]"
        out.print(f"  backend {name:7} {mark}  {info.get('detail', '')}")
    img = report.get("image", {})
    out.print(f"  image   {img.get('tag', '-')}: {img.get('detail', '')}")


# image -------------------------------------------------------------------


@image_app.command("build")
def image_build(
    force: Annotated[bool, typer.Option("--force", help="rebuild even if current")] = False,
) -> None:
    """Build the sandbox image (bootstrapping the Debian base when it cannot be pulled)."""
    from hazmat.sandbox.image import build_image

    info = build_image(
        force=force, progress=lambda line: console.print(line, markup=False, highlight=False)
    )
    out.print(str(getattr(info, "tag", info)))


# sandbox -----------------------------------------------------------------


@sandbox_app.command(
    "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def sandbox_exec(
    ctx: typer.Context,
    backend: BackendOpt = "local",
    image: Annotated[str | None, typer.Option(help="image (docker)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds before the command is killed")] = 120.0,
    user: Annotated[str | None, typer.Option(help="run as this user")] = None,
) -> None:
    """Run CMD in a fresh sandbox, print its output, exit with its exit code.

    Usage: hazmat sandbox exec --sandbox local -- CMD [ARGS...]
    """
    cmd = list(ctx.args)
    if not cmd:
        raise ConfigError("no command given", hint="hazmat sandbox exec --sandbox local -- CMD")
    from hazmat.sandbox.base import create_sandbox

    async def go() -> int:
        async with create_sandbox(backend, _spec(image)) as sb:
            res = await sb.exec(cmd, timeout=timeout, user=user)
        sys.stdout.buffer.write(res.stdout)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(res.stderr)
        sys.stderr.buffer.flush()
        if res.timed_out:
            console.print(f"hazmat: command timed out after {timeout:g}s and was killed")
        if res.truncated:
            console.print("hazmat: output exceeded the cap and was truncated")
        return res.exit_code

    raise typer.Exit(asyncio.run(go()))


@sandbox_app.command("shell")
def sandbox_shell(
    backend: BackendOpt = "local",
    image: Annotated[str | None, typer.Option(help="image (docker)")] = None,
    network: Annotated[str, typer.Option(help="none or internal")] = "none",
    attach: Annotated[
        str | None,
        typer.Option(
            help="a kept hazmat container (from `hazmat replay --keep`) instead of a fresh one"
        ),
    ] = None,
) -> None:
    """An interactive shell in a fresh sandbox (for task authors). Ctrl-D leaves."""
    from hazmat.sandbox.base import create_sandbox

    if attach is not None:
        from hazmat.replay.attach import attach as do_attach

        raise typer.Exit(do_attach(attach))

    async def go() -> None:
        async with create_sandbox(backend, _spec(image, network)) as sb:
            console.print(f"hazmat sandbox ({backend}); Ctrl-D to leave", highlight=False)
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, _prompt)
                if line is None:
                    break
                if not line.strip():
                    continue
                res = await sb.shell(line)
                sys.stdout.buffer.write(res.stdout)
                sys.stdout.buffer.write(res.stderr)
                sys.stdout.buffer.flush()

    asyncio.run(go())


def _prompt() -> str | None:
    try:
        return input("sandbox$ ")
    except EOFError:
        return None


# cleanup -----------------------------------------------------------------


@app.command()
def cleanup(
    run: Annotated[str | None, typer.Option(help="only what this run made")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove every container, network and volume hazmat left behind (and local sandbox
    folders whose process died). Without a Docker daemon only the local part runs."""
    from hazmat.errors import BackendUnavailableError
    from hazmat.sandbox.cleanup import cleanup as do_cleanup
    from hazmat.sandbox.local import cleanup_leftovers

    counts: dict[str, int] = {"local_leftovers": len(cleanup_leftovers())}
    try:
        counts.update(do_cleanup(run_id=run))
    except BackendUnavailableError as exc:
        console.print(f"docker: skipped ({exc.one_line()})", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(counts, sort_keys=True))
    else:
        out.print(", ".join(f"{v} {k}" for k, v in counts.items()) + " removed")


# entry -------------------------------------------------------------------


def _mount_optional() -> None:
    """Mount sub-apps and commands that live with their parts."""
    from hazmat import commands

    commands.register(app)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="more log lines on stderr (-vv for debug)"
        ),
    ] = 0,
) -> None:
    """A containment lab for dangerous-capability evaluations of AI agents."""
    if verbose:
        from hazmat.record.log import configure_logging

        configure_logging("debug" if verbose > 1 else "info")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn hazmat errors into one line and an exit code."""
    try:
        from hazmat.record.log import configure_logging

        configure_logging(os.environ.get("HAZMAT_LOG_LEVEL", "warning"))
        _mount_optional()
        rc = app(args=argv, standalone_mode=False)
    except HazmatError as exc:
        console.print(f"error: {exc.one_line()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        if os.environ.get("HAZMAT_DEBUG"):
            raise
        console.print(
            f"error: internal error: {type(exc).__name__}: {exc}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(70)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
