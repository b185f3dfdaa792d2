"""The backends a sandbox can be made with, found by name.

Three sources, looked up in this order:

1. :func:`register_backend`: a class (or a lazy ``"module:Class"``) registered by the
   running program itself; it may replace a built-in (the program chose to).
2. the built-in backends, ``local`` (bubblewrap) and ``docker`` (hazmat's
   ``pyproject.toml`` declares them in the group below as well; they work from a
   source checkout that is not installed all the same).
3. the entry-point group ``hazmat.sandboxes`` of every installed distribution, so a
   third party adds a backend by installing a package whose ``pyproject.toml`` says::

       [project.entry-points."hazmat.sandboxes"]
       k8s = "hazmat_k8s:K8sSandbox"

   An entry point may not shadow a built-in name (it is ignored, and ``hazmat doctor``
   says so): installing a package must not silently change what ``--sandbox docker``
   means.

Nothing is imported until a backend is asked for: :func:`get_backend` loads it.
:func:`backends` describes every name for ``hazmat doctor``.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from hazmat.errors import BackendUnavailableError, UnknownBackendError
from hazmat.sandbox.base import Sandbox, SandboxSpec

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "BackendEntry",
    "available_backends",
    "backends",
    "create_sandbox",
    "get_backend",
    "register_backend",
]

log = structlog.get_logger("hazmat.sandbox.registry")

ENTRY_POINT_GROUP = "hazmat.sandboxes"
BUILTIN_BACKENDS: dict[str, str] = {
    "local": "hazmat.sandbox.local:LocalSandbox",
    "docker": "hazmat.sandbox.docker:DockerSandbox",
}

_registered: dict[str, str | type[Sandbox]] = {}
_loaded: dict[str, type[Sandbox]] = {}


class BackendEntry(BaseModel):
    """One registered backend name, where it comes from, and whether it is used."""

    model_config = ConfigDict(frozen=True)

    name: str
    target: str
    """``module:Class``."""
    source: str
    """``registered`` (in process), ``builtin``, or ``entry point (<distribution>)``."""
    ignored: str | None = None
    """Why this entry is not used (an entry point shadowing a built-in name)."""


def register_backend(name: str, backend: str | type[Sandbox]) -> None:
    """Register a backend class (or a lazy ``"module:Class"`` reference) under ``name``,
    for this process. Replaces whatever had that name."""
    _registered[name] = backend
    _loaded.pop(name, None)


def _target(ref: str | type[Sandbox]) -> str:
    return ref if isinstance(ref, str) else f"{ref.__module__}:{ref.__qualname__}"


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _dist(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.name) if dist is not None else "?"


def backends() -> list[BackendEntry]:
    """Every backend name with its source, in lookup order (for ``hazmat doctor``)."""
    out = [
        BackendEntry(name=n, target=_target(r), source="registered") for n, r in _registered.items()
    ]
    out += [
        BackendEntry(name=n, target=t, source="builtin")
        for n, t in BUILTIN_BACKENDS.items()
        if n not in _registered
    ]
    taken = {e.name for e in out}
    for ep in _entry_points():
        if BUILTIN_BACKENDS.get(ep.name) == ep.value:
            continue  # hazmat's own, declared in its pyproject.toml too
        ignored = None
        if ep.name in BUILTIN_BACKENDS:
            ignored = "shadows a built-in backend"
        elif ep.name in taken:
            ignored = "another entry is used for this name"
        out.append(
            BackendEntry(
                name=ep.name, target=ep.value, source=f"entry point ({_dist(ep)})", ignored=ignored
            )
        )
        taken.add(ep.name)
    return out


def available_backends() -> list[str]:
    """Names of the usable backends, sorted."""
    return sorted({e.name for e in backends() if e.ignored is None})


def _load(name: str, ref: str, source: str) -> type[Sandbox]:
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise BackendUnavailableError(
            f"sandbox backend {name!r} ({ref}, {source}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}",
            hint="reinstall the package that provides it",
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, Sandbox)):
        raise BackendUnavailableError(
            f"sandbox backend {name!r} ({ref}, {source}) is not a hazmat Sandbox class"
        )
    return obj


def get_backend(name: str) -> type[Sandbox]:
    """The backend class registered as ``name`` (imported on first use).

    Raises:
        UnknownBackendError: no backend has that name.
        BackendUnavailableError: the backend's module cannot be imported, or it names
            something that is not a :class:`~hazmat.sandbox.base.Sandbox`.
    """
    if name in _loaded:
        return _loaded[name]
    ref = _registered.get(name)
    if ref is not None and not isinstance(ref, str):
        cls = ref
    else:
        entry = next((e for e in backends() if e.name == name and e.ignored is None), None)
        if entry is None:
            raise UnknownBackendError(
                f"unknown sandbox backend {name!r}",
                hint=f"choose one of: {', '.join(available_backends())}",
            )
        cls = _load(name, entry.target, entry.source)
    _loaded[name] = cls
    return cls


def create_sandbox(
    backend: str, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
) -> Sandbox:
    """Make (but do not start) a sandbox of the named backend.

    Raises:
        UnknownBackendError: no backend has that name.
        BackendUnavailableError: the backend cannot be loaded.
    """
    return get_backend(backend)(spec, run_id=run_id, episode_id=episode_id)
