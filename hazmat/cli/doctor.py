"""``hazmat doctor``: what this machine can run (backends, the sandbox image, versions)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hazmat.cli.root import app, command

__all__ = ["doctor"]


@command(app)
def doctor(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Check what this machine can run: Python, bubblewrap, Docker, the sandbox image and
    the registered sandbox backends."""
    import asyncio

    from hazmat.cli.console import out
    from hazmat.sandbox.doctor import diagnose

    report = asyncio.run(diagnose())
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
