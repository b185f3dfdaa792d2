"""The system a local sandbox runs on: its environment's root file system, or the host's.

The spec's image names the environment, as on Docker:

==============================================  ==========================================
``hazmat-sandbox`` (``:latest``, no tag)        hazmat's base environment (the sandbox
                                                image's content hash of this hazmat)
``hazmat-sandbox:<hash>`` (another hash)        that environment, as for ``hazmat-env``
``hazmat-env:<hash>``                           a task environment (``sandbox.build``),
                                                prepared before the sandbox starts (the
                                                runner calls ``ensure_environment``), else
                                                exported from Docker's image of that tag
anything else                                   the host's system (a warning)
==============================================  ==========================================

The tree comes from :func:`hazmat.sandbox.rootfs.rootfs_for`. Its parts are bound
read-only (:func:`rootfs_entries`, drawn by :mod:`.plan`); the supervisor runs on the
tree's own ``/usr/bin/python3``.

Fallback (decided here): when the *base* environment cannot be had on this machine (no
Docker and no mmdebstrap, or making it failed) the sandbox runs on the host's ``/usr``
as before, with a warning once per process, and its environment is recorded as
``"host"`` (``hazmat doctor`` says so). ``HAZMAT_LOCAL_ROOT=host`` asks for that on
purpose. A task environment that cannot be had is an error, never the host: its tools
would be missing.

In use: :func:`held_system_root` (what a local sandbox's start calls) holds the tree's
shared "in use" flock (:class:`~hazmat.sandbox.rootfs_prune.TreeUse`, one per sandbox,
released by its stop) so ``hazmat cleanup --rootfs`` never removes a tree a sandbox runs
on, and records the tree's last use.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from hazmat.errors import (
    BackendUnavailableError,
    ConfigError,
    HazmatError,
    ImageError,
    SandboxStartError,
)
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.host import sandbox_python, world_reachable
from hazmat.sandbox.local.plan import SYSTEM_DIRS, etc_files, host_system_dirs, under
from hazmat.sandbox.rootfs import (
    HOST,
    RootfsSource,
    base_source,
    cache_root,
    cached_rootfs,
    rootfs_for,
)
from hazmat.sandbox.rootfs_prune import TreeUse, mark_used

__all__ = ["ROOT_ENV", "SystemRoot", "held_system_root", "rootfs_entries", "system_root"]

log = structlog.get_logger("hazmat.sandbox.local.system")

ROOT_ENV = "HAZMAT_LOCAL_ROOT"
"""``host``: local sandboxes run on the host's system, not the base environment's tree."""
SKIP_TOP = frozenset(
    {"proc", "dev", "sys", "tmp", "run", "root", "home", "boot", "media", "mnt", "lost+found"}
)
"""Top-level folders of a tree the sandbox makes itself (or never shows)."""
SKIP_CHILD = frozenset(
    {"/var/tmp", "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/machine-id"}
)
"""``/var/tmp`` is the sandbox's (a symlink to /tmp); the password hashes and machine id
are never shown (``/etc/passwd`` and ``/etc/group`` are synthesized, see :mod:`.plan`)."""
TREE_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class SystemRoot:
    """What a local sandbox's system is."""

    env: str
    """The environment hash, or ``"host"``."""
    tree: Path | None
    """The root file system (None: the host's system dirs)."""
    entries: tuple[tuple[str, str | None], ...]
    """``(sandbox path, symlink target or None)`` to bind from ``tree`` (or the host)."""
    source: str
    """``docker-export``, ``mmdebstrap`` or ``host``."""

    def python(self, separate: bool) -> str:
        """The python3 that runs the supervisor.

        Raises:
            BackendUnavailableError: on the host system, with separate ids, the only
                python3 sits in a folder the sandbox's ids cannot enter.
        """
        if self.tree is not None:
            return TREE_PYTHON
        python = sandbox_python()
        if separate and not world_reachable(Path(python)):
            raise BackendUnavailableError(
                f"no python3 the sandbox could use ({python} sits in a private folder)",
                hint="install python3 in /usr/bin or use --sandbox docker",
            )
        return python

    def python_prefix(self, python: str) -> str | None:
        """A host folder to bind for ``python`` when it is outside the system dirs."""
        if self.tree is not None or any(under(python, d) for d in SYSTEM_DIRS):
            return None
        return str(Path(sys.base_prefix).resolve())


@functools.cache
def rootfs_entries(tree: Path) -> tuple[tuple[str, str | None], ...]:
    """The parts of ``tree`` a sandbox binds (read once per tree): its system dirs whole
    (``/usr``; ``/bin`` and the like as the symlinks they are), and each of its other
    top-level folders (``/etc``, ``/var``, ``/opt``, ...) as the folder followed by its
    entries one by one. The plan binds such a folder whole unless the sandbox places a
    file in it; ``/etc`` and ``/var`` are only listed whole when that is safe: no
    never-shown entry in it, and a file for each synthesized ``/etc`` file to cover.
    """
    out: list[tuple[str, str | None]] = []
    for name in sorted(os.listdir(tree)):
        path, host = f"/{name}", tree / name
        if name in SKIP_TOP:
            continue
        if host.is_symlink():
            out.append((path, os.readlink(host)))
        elif path in SYSTEM_DIRS:
            out.append((path, None))
        elif host.is_dir():
            children = sorted(os.listdir(host))
            hidden = any(f"{path}/{c}" in SKIP_CHILD for c in children)
            covered = path != "/etc" or all(_plain_file(host / n) for n in etc_files())
            if not hidden and covered:
                out.append((path, None))
            for child in children:
                sub = f"{path}/{child}"
                if sub in SKIP_CHILD:
                    continue
                link = host / child
                out.append((sub, os.readlink(link) if link.is_symlink() else None))
    return tuple(out)


def _plain_file(path: Path) -> bool:
    """A regular file, not a symlink (a bind over a symlink would follow it)."""
    return path.is_file() and not path.is_symlink()


def _host() -> SystemRoot:
    return SystemRoot(env=HOST, tree=None, entries=host_system_dirs(), source=HOST)


def _of_tree(env: str, tree: Path) -> SystemRoot:
    from hazmat.sandbox.rootfs import rootfs_meta

    if not os.path.lexists(tree / TREE_PYTHON.lstrip("/")):
        raise ImageError(
            f"the environment {env} has no {TREE_PYTHON} (hazmat's supervisor needs it)"
        )
    meta = rootfs_meta(env) or {}
    return SystemRoot(
        env=env, tree=tree, entries=rootfs_entries(tree), source=str(meta.get("source", "?"))
    )


_base_lock = threading.Lock()
_base: SystemRoot | None = None


def _base_root(progress: Callable[[str], None] | None = None) -> SystemRoot:
    """The base environment's system, decided once per process (see the module docs).

    Raises:
        ConfigError: the root file system cache is refused (another user could change
            it, or the sandbox's ids cannot reach it): a setting to fix, never a reason
            to fall back to the host.
    """
    global _base
    if os.environ.get(ROOT_ENV) == HOST:
        return _host()
    with _base_lock:
        if _base is not None and (_base.tree is None or _base.tree.is_dir()):
            return _base
        try:
            source = base_source()
            if progress is not None and cached_rootfs(source.hash) is None:
                progress(
                    f"preparing the local sandbox's root file system {source.hash} "
                    "(once per hazmat version: from Docker's sandbox image, else mmdebstrap)"
                )
            _base = _of_tree(source.hash, rootfs_for(source, progress))
        except ConfigError:
            raise
        except HazmatError as exc:
            log.warning(
                "local_rootfs_unavailable",
                why=exc.one_line(),
                fallback="the host's /usr (environment recorded as 'host')",
            )
            _base = _host()
        return _base


def prepare_base(progress: Callable[[str], None]) -> str:
    """Make the base environment's root file system now, saying so through ``progress``
    when it is not cached yet (the CLI calls this before a local run, so the first run's
    wait is explained instead of silent). Returns the environment hash, or ``"host"``
    when this machine cannot make it (the fallback the module docstring describes).

    Raises:
        ConfigError: the cache folder is refused (one line with the fix: another user
            could change it, or it is private, e.g. ``HAZMAT_ROOTFS_CACHE`` mode 0700),
            checked once here rather than by every sandbox's start.
    """
    if os.environ.get(ROOT_ENV) != HOST:
        cache_root()
    return _base_root(progress).env


def system_root(spec: SandboxSpec) -> SystemRoot:
    """The system a local sandbox of ``spec`` runs on (see the module docstring); may take
    minutes the first time an environment is made (call it off the event loop).

    Raises:
        SandboxStartError: the spec's task environment cannot be had here, or the root
            file system cache is refused (see :func:`prepare_base`).
    """
    try:
        return _system_root(spec)
    except ConfigError as exc:
        raise SandboxStartError(exc.message, hint=exc.hint) from None


def _system_root(spec: SandboxSpec) -> SystemRoot:
    repo, _, tag = spec.image.partition(":")
    pinned = re.fullmatch(r"[0-9a-f]{16}", tag) is not None
    if repo == "hazmat-sandbox":
        base = _base_root()
        if not pinned or base.env == tag:
            return base
    if repo in ("hazmat-env", "hazmat-sandbox") and pinned:
        tree = cached_rootfs(tag)
        try:
            if tree is None:
                tree = rootfs_for(RootfsSource(hash=tag, image=spec.image))
            return _of_tree(tag, tree)
        except HazmatError as exc:
            raise SandboxStartError(
                f"the task environment {tag} has no root file system here: {exc.one_line()}",
                hint="run the task through hazmat run / validate (they prepare it), or use "
                "--sandbox docker",
            ) from None
    log.warning("local_foreign_image", image=spec.image, fallback="the host's system")
    return _host()


HOLD_TRIES = 3
"""Resolutions of a sandbox's tree when a prune removed it before it was locked."""


def held_system_root(spec: SandboxSpec, use: TreeUse) -> SystemRoot:
    """:func:`system_root`, with ``use`` holding the shared "in use" lock of its tree
    (taken after the tree is resolved; a tree a prune removed meanwhile is resolved, so
    made, again) and the tree's last use recorded. Nothing is held for the host's system.
    The caller releases ``use`` when the sandbox stops.

    Raises:
        SandboxStartError: as :func:`system_root`; or the tree was removed each time it
            was resolved, or stayed locked by a prune (see :meth:`TreeUse.hold`).
    """
    for _ in range(HOLD_TRIES):
        try:
            root = system_root(spec)
        except FileNotFoundError:  # pruned while its entries were listed
            log.warning("local_rootfs_pruned_at_start", image=spec.image, action="resolved again")
            continue
        if root.tree is None:
            return root
        if use.hold(root.tree):
            mark_used(root.tree)
            return root
        log.warning("local_rootfs_pruned_at_start", env=root.env, action="resolved again")
    raise SandboxStartError(
        f"the root file system of {spec.image} was removed {HOLD_TRIES} times while the "
        "sandbox started (hazmat cleanup --rootfs running in a loop?)"
    )
