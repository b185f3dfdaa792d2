"""Programs that run INSIDE a sandbox (or in its network namespace), never imported by
the host: ``supervisor.py`` (the channel every command goes through) and ``sentinel.py``
(the network watch). Standard library only, python 3.8+.

The host only needs their paths: the local backend binds them into the sandbox, the
Docker image copies them (they are part of its build context and content hash).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["GUEST_DIR", "SENTINEL_PATH", "SUPERVISOR_PATH"]

GUEST_DIR = Path(__file__).resolve().parent
SUPERVISOR_PATH = GUEST_DIR / "supervisor.py"
"""The supervisor program, copied or bound into every sandbox."""
SENTINEL_PATH = GUEST_DIR / "sentinel.py"
"""The sentinel program, run next to every sandbox."""
