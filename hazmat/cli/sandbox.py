"""``hazmat sandbox exec|shell``, ``hazmat image build`` and ``hazmat cleanup``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hazmat.cli.root import app, command, group
from hazmat.errors import ConfigError

if TYPE_CHECKING:
    from hazmat.sandbox.base import SandboxSpec

__all__ = ["cleanup", "image_build", "sandbox_exec", "sandbox_shell"]

sandbox_app = group("Run commands in a fresh sandbox.")
image_app = group("The Docker sandbox image.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(image_app, name="image")

BackendOpt = Annotated[str, typer.Option("--sandbox", "-s", help="backend: local or docker")]


def _spec(image: str | None, network: str = "none") -> SandboxSpec:
    from hazmat.sandbox.base import SandboxSpec

    fields: dict[str, Any] = {"network": network}
    if image:
        fields["image"] = image
    try:
        return SandboxSpec(**fields)
    except ValueError as exc:
        raise ConfigError(f"invalid sandbox spec: {exc}".splitlines()[0]) from None


@command(image_app, "build")
def image_build(
    force: Annotated[bool, typer.Option("--force", help="rebuild even if current")] = False,
) -> None:
    """Build the sandbox image (bootstrapping the Debian base when it cannot be pulled)."""
    from hazmat.cli.console import err
    from hazmat.sandbox.docker.image import build_image

    con = err()
    info = build_image(
        force=force, progress=lambda line: con.print(line, markup=False, highlight=False)
    )
    print(str(getattr(info, "tag", info)))


@command(
    sandbox_app, "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
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
    import asyncio

    from hazmat.cli.console import err
    from hazmat.sandbox import create_sandbox

    cmd = list(ctx.args)
    if not cmd:
        raise ConfigError("no command given", hint="hazmat sandbox exec --sandbox local -- CMD")

    async def go() -> int:
        async with create_sandbox(backend, _spec(image)) as sb:
            res = await sb.exec(cmd, timeout=timeout, user=user)
        sys.stdout.buffer.write(res.stdout)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(res.stderr)
        sys.stderr.buffer.flush()
        if res.timed_out:
            err().print(f"hazmat: command timed out after {timeout:g}s and was killed")
        if res.truncated:
            err().print("hazmat: output exceeded the cap and was truncated")
        return res.exit_code

    raise typer.Exit(asyncio.run(go()))


@command(sandbox_app, "shell")
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
    import asyncio

    from hazmat.cli.console import err
    from hazmat.sandbox import create_sandbox

    if attach is not None:
        raise typer.Exit(_attach(attach, backend))

    async def go() -> None:
        async with create_sandbox(backend, _spec(image, network)) as sb:
            err().print(f"hazmat sandbox ({backend}); Ctrl-D to leave", highlight=False)
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


def _attach(handle: str, backend: str) -> int:
    """A shell on a kept sandbox, through the one backend that can open one (or the
    ``--sandbox`` one, when several can)."""
    from hazmat.sandbox import Attachable, available_backends, get_backend, lacks

    able = [n for n in available_backends() if issubclass(get_backend(n), Attachable)]
    name = backend if backend in able or len(able) != 1 else able[0]
    cls = get_backend(name)
    if not issubclass(cls, Attachable):
        raise ConfigError(
            f"{lacks(cls, Attachable)}", hint=f"use --sandbox {' or '.join(able) or '?'}"
        )
    return cls.attach(handle)


def _prompt() -> str | None:
    try:
        return input("sandbox$ ")
    except EOFError:
        return None


@command(app)
def cleanup(
    run: Annotated[str | None, typer.Option(help="only what this run made")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    rootfs: Annotated[
        bool,
        typer.Option(
            "--rootfs",
            help="also prune the local backend's root file system cache: trees of "
            "environments no sandbox uses now, except the current base environment's "
            "(the whole cache, with or without --run)",
        ),
    ] = False,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=0.0,
            help="with --rootfs: only trees not used for this many days",
        ),
    ] = None,
) -> None:
    """Remove every container, network and volume hazmat left behind, and local sandbox
    folders whose process died. Episode images and local cgroups go too; with --run, only
    what that run left. Without a Docker daemon only the local part runs. With --rootfs,
    the root file system cache is pruned too (never a tree a sandbox runs on)."""
    from hazmat.cli.console import err, out
    from hazmat.errors import BackendUnavailableError
    from hazmat.sandbox import available_backends, get_backend

    if older_than is not None and not rootfs:
        raise ConfigError("--older-than prunes the root file system cache", hint="add --rootfs")
    counts: dict[str, Any] = {}
    for name in sorted(available_backends(), key=lambda n: (n != "local", n)):
        try:
            counts.update(get_backend(name).cleanup(run_id=run))
        except BackendUnavailableError as exc:
            err().print(f"{name}: skipped ({exc.one_line()})", highlight=False, soft_wrap=True)
    line = ", ".join(f"{v} {k}" for k, v in counts.items()) + " removed"
    if not as_json:  # said before the prune, which may refuse the cache
        out().print(line, highlight=False)
    if rootfs:
        from hazmat.sandbox.rootfs import base_source
        from hazmat.sandbox.rootfs_prune import prune_rootfs

        seconds = None if older_than is None else older_than * 86400.0
        pruned = prune_rootfs({base_source().hash}, seconds)
        counts["rootfs"] = pruned.model_dump(mode="json")
    if as_json:
        print(json.dumps(counts, sort_keys=True))
    elif rootfs:
        out().print(pruned.line(), highlight=False, soft_wrap=True)
