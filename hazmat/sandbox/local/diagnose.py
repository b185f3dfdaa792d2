"""``probe()``: start a throwaway local sandbox and say how it went (for diagnostics)."""

from __future__ import annotations

import time
from typing import Any

from hazmat.errors import HazmatError
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.host import bwrap_version
from hazmat.sandbox.local.sandbox import LocalSandbox

__all__ = ["probe"]


async def probe() -> dict[str, Any]:
    """For ``hazmat doctor``: start a throwaway sandbox, run ``true``, say how it went.

    Returns ``{"ok", "error" (one line or None), "bwrap", "version", "uid_separation",
    "cgroups", "start_ms"}``; never raises for a sandbox problem.
    """
    out: dict[str, Any] = {"ok": False, "error": None, "bwrap": "", "version": bwrap_version()}
    t0 = time.monotonic()
    try:
        async with LocalSandbox(SandboxSpec(), run_id="doctor", episode_id="doctor") as sb:
            result = await sb.exec(["true"], timeout=30)
            info = sb.info()
            out.update(
                ok=result.ok,
                bwrap=info["bwrap"],
                uid_separation=info["uid_separation"],
                cgroups=bool(info["cgroups"]),
                start_ms=round((time.monotonic() - t0) * 1000, 1),
            )
            if not result.ok:
                out["error"] = f"`true` failed in the sandbox: {result.stderr_text.strip()[:200]}"
    except HazmatError as exc:
        out["error"] = exc.one_line()
    return out
