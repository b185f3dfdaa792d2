"""Sandboxes: where an agent's tool calls run.

The public names, imported on first use (``import hazmat.sandbox`` loads nothing
else)::

    from hazmat.sandbox import SandboxSpec, create_sandbox

    async with create_sandbox("local", SandboxSpec()) as sb:
        result = await sb.exec(["id", "-un"])

- the protocol: :class:`Sandbox`, the specs (:class:`SandboxSpec`, :class:`Limits`,
  :class:`Hardening`, :class:`FileSpec`, :class:`ServiceSpec`), the results
  (:class:`ExecResult`, :class:`SnapshotInfo`), the optional features
  (:class:`Poolable`, :class:`Freezable`, :class:`Detachable`, :class:`Attachable`)
  and the checks :func:`require` / :func:`lacks`;
- the backends: :func:`create_sandbox`, :func:`get_backend`, :func:`available_backends`,
  :func:`register_backend` (see :mod:`hazmat.sandbox.registry` for the entry points);
- for backend authors: :class:`ChannelSandbox` (everything but the lifecycle over
  hazmat's supervisor) and the conformance suite :mod:`hazmat.sandbox.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hazmat.sandbox.base import (
        Attachable,
        Detachable,
        ExecResult,
        FileSpec,
        Freezable,
        Hardening,
        Limits,
        Poolable,
        Sandbox,
        SandboxSpec,
        ServiceSpec,
        SnapshotInfo,
        lacks,
        require,
    )
    from hazmat.sandbox.channel import ChannelSandbox
    from hazmat.sandbox.registry import (
        available_backends,
        create_sandbox,
        get_backend,
        register_backend,
    )

_WHERE = {
    "Attachable": "base",
    "Detachable": "base",
    "ExecResult": "base",
    "FileSpec": "base",
    "Freezable": "base",
    "Hardening": "base",
    "Limits": "base",
    "Poolable": "base",
    "Sandbox": "base",
    "SandboxSpec": "base",
    "ServiceSpec": "base",
    "SnapshotInfo": "base",
    "lacks": "base",
    "require": "base",
    "ChannelSandbox": "channel",
    "available_backends": "registry",
    "create_sandbox": "registry",
    "get_backend": "registry",
    "register_backend": "registry",
}

__all__ = [
    "Attachable",
    "ChannelSandbox",
    "Detachable",
    "ExecResult",
    "FileSpec",
    "Freezable",
    "Hardening",
    "Limits",
    "Poolable",
    "Sandbox",
    "SandboxSpec",
    "ServiceSpec",
    "SnapshotInfo",
    "available_backends",
    "create_sandbox",
    "get_backend",
    "lacks",
    "register_backend",
    "require",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
