"""The local backend: one bubblewrap sandbox per episode, no daemon (see :mod:`.sandbox`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.sandbox.local.diagnose import probe
    from hazmat.sandbox.local.sandbox import (
        LocalSandbox,
        bwrap_binary,
        bwrap_version,
        cleanup_leftovers,
        seccomp_filter,
    )

__all__ = [
    "LocalSandbox",
    "bwrap_binary",
    "bwrap_version",
    "cleanup_leftovers",
    "probe",
    "seccomp_filter",
]


def __getattr__(name: str) -> Any:
    if name == "probe":
        from hazmat.sandbox.local.diagnose import probe

        return probe
    if name in __all__:
        from hazmat.sandbox.local import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
