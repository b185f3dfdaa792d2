"""``hazmat doctor``: what this machine can run (backends, the sandbox image, versions)."""

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
    the registered sandbox backends; with task paths, each task's environment hash and
    whether it is built."""
    import asyncio

    from hazmat.cli.console import out
    from hazmat.sandbox.doctor import diagnose

    report = asyncio.run(diagnose())
    if tasks:
        report["environments"] = _environments(tasks)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
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
    else:
        status = f"[red]{'stale' if img.get('present') else 'missing'}[/]  {img.get('hint', '')}"
    con.print(f"  image   {status}", highlight=False)
    for env in report.get("environments", []):
        state = "[green]built[/]" if env["built"] else "[yellow]not built[/]"
        if env["built"] is None:
            state = "[yellow]unknown[/]"
        con.print(
            f"  environment {env['hash']}  {state}  {', '.join(env['tasks'])}", highlight=False
        )


def _environments(paths: list[Path]) -> list[dict[str, Any]]:
    """The environments of the tasks at ``paths``: hash, Docker tag, whether it is built
    (None: no daemon to ask), the tasks using it."""
    from hazmat.tasks.environment import environment_of
    from hazmat.tasks.load import discover_tasks

    found: dict[str, dict[str, Any]] = {}
    for task in discover_tasks(paths):
        if task.sandbox.build is None:
            continue
        env = environment_of(task.sandbox.build)
        entry = found.setdefault(
            env.hash, {"hash": env.hash, "tag": env.tag, "recipe": env.recipe, "tasks": []}
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
