"""``hazmat doctor``: what this machine can run (backends, the sandbox image, versions), and
which environment each backend runs (its hash; whether the local root file system is made)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hazmat.cli.root import app, command

__all__ = ["doctor"]


@command(app)
def doctor(
    tasks: Annotated[
        list[Path] | None,
        typer.Argument(help="tasks whose environments (sandbox.build) to name and look for"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check what this machine can run: Python, bubblewrap, Docker, the sandbox image and
    the registered sandbox backends; the base environment's hash and whether the local
    backend has its root file system; with task paths, each task's environment hash and
    whether it is built (Docker image, local root file system). Exits 1 when a backend
    is not ok."""
    import asyncio

    from hazmat.cli.console import out
    from hazmat.sandbox.doctor import diagnose

    report = asyncio.run(diagnose())
    report["environment"] = _base_environment(report)
    if tasks:
        report["environments"] = _environments(tasks)
    failed = [name for name, info in report["backends"].items() if not info.get("ok")]
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        if failed:
            raise typer.Exit(1)
        return
    con = out()
    con.print(f"hazmat {report['hazmat']}  python {report['python']}", highlight=False)
    for name, info in report["backends"].items():
        mark = "[green]ok[/]" if info["ok"] else "[red]not ok[/]"
        con.print(f"  backend {name:7} {mark}  {info.get('detail', '')}", highlight=False)
    img = report.get("image", {})
    if img.get("present") is None:  # no daemon: the image could not be looked at
        status = f"[yellow]unknown[/]  {img.get('detail', '')}"
    elif img.get("current"):
        status = f"[green]current[/]  {img.get('tag', '')}"
        if img.get("latest_is_current") is False:
            status += "  (hazmat-sandbox:latest is another build; runs use this tag)"
    else:
        status = f"[red]{'stale' if img.get('present') else 'missing'}[/]  {img.get('hint', '')}"
    con.print(f"  image   {status}", highlight=False)
    base = report["environment"]
    if base.get("hash") is None:
        con.print(f"  environment [red]unknown[/]  {base.get('detail', '')}", highlight=False)
    else:
        local = base.get("local")
        where = (
            f"[green]local root file system cached[/] ({base.get('source')})  {base['rootfs']}"
            if base["cached"]
            else "[yellow]local root file system not made yet[/] (made on the first local "
            "start: docker export, else mmdebstrap)"
        )
        if local == "host":
            where = "[yellow]local sandboxes run on the host's /usr[/] (environment 'host')"
        con.print(f"  environment {base['hash']}  {where}", highlight=False)
        cache = base.get("cache") or {}
        if cache.get("trees", 0) > 1:
            con.print(
                f"  rootfs cache {cache['trees']} trees, {cache['bytes'] / 1e6:.0f} MB  "
                "(hazmat cleanup --rootfs: remove unused ones)",
                highlight=False,
            )
    for env in report.get("environments", []):
        state = "[green]built[/]" if env["built"] else "[yellow]not built[/]"
        if env["built"] is None:
            state = "[yellow]unknown[/]"
        rootfs = "[green]rootfs cached[/]" if env["rootfs"] else "[yellow]no rootfs yet[/]"
        con.print(
            f"  environment {env['hash']}  docker {state}  local {rootfs}  "
            f"{', '.join(env['tasks'])}",
            highlight=False,
        )
    if failed:
        con.print(f"[red]not ok:[/] backend {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


def _base_environment(report: dict[str, Any]) -> dict[str, Any]:
    """The base environment (hazmat's sandbox image): its hash, whether the local root file
    system is cached (where, from what), what the local probe ran on (``local``: an
    environment hash, or ``host``), and how many trees the cache holds (``cache``)."""
    from hazmat.errors import HazmatError
    from hazmat.sandbox.rootfs import base_source, cached_rootfs, rootfs_meta
    from hazmat.sandbox.rootfs_prune import cache_size

    try:
        source = base_source()
        tree = cached_rootfs(source.hash)
        trees, size = cache_size()
    except HazmatError as exc:
        return {"hash": None, "detail": exc.one_line()}
    probe = report.get("backends", {}).get("local", {}).get("info") or {}
    return {
        "hash": source.hash,
        "image": source.image,
        "cached": tree is not None,
        "rootfs": str(tree) if tree is not None else None,
        "source": (rootfs_meta(source.hash) or {}).get("source"),
        "local": probe.get("env"),
        "cache": {"trees": trees, "bytes": size},
    }


def _environments(paths: list[Path]) -> list[dict[str, Any]]:
    """The environments of the tasks at ``paths``: hash, Docker tag, whether it is built
    (None: no daemon to ask), whether the local root file system is cached, the tasks
    using it."""
    from hazmat.tasks.environment import environment_of
    from hazmat.tasks.load import discover_tasks

    found: dict[str, dict[str, Any]] = {}
    for task in discover_tasks(paths):
        if task.sandbox.build is None:
            continue
        env = environment_of(task.sandbox.build)
        entry = found.setdefault(
            env.hash,
            {
                "hash": env.hash,
                "tag": env.tag,
                "recipe": env.recipe,
                "rootfs": _cached(env.hash),
                "tasks": [],
            },
        )
        entry["tasks"].append(task.id)
    try:
        import docker.errors

        from hazmat.sandbox.docker.image import docker_client

        client = docker_client(timeout=10)
    except Exception:
        client = None
    for entry in found.values():
        entry["built"] = None
        if client is not None:
            try:
                client.images.get(entry["tag"])
                entry["built"] = True
            except docker.errors.ImageNotFound:
                entry["built"] = False
    return list(found.values())


def _cached(digest: str) -> bool | None:
    """The local root file system of ``digest`` is cached (None: the cache is refused)."""
    from hazmat.errors import HazmatError
    from hazmat.sandbox.rootfs import cached_rootfs

    try:
        return cached_rootfs(digest) is not None
    except HazmatError:
        return None
