"""The Docker backend: a hardened container per sandbox (see :mod:`.sandbox`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.sandbox.docker.sandbox import DockerSandbox, sandbox_labels

__all__ = ["DockerSandbox", "sandbox_labels"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hazmat.sandbox.docker import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
