"""Pruning the root file system cache (:mod:`hazmat.sandbox.rootfs`): trees in use stay.

Every change to the sandbox image or a task's ``sandbox.build`` makes a new environment
hash, hence a new cached tree (about 300 MB); nothing else ever removes the old ones.

In use
    A local sandbox running on a cached tree holds a *shared* flock on
    ``<cache>/<hash>.use`` (:class:`TreeUse`, one descriptor per sandbox, taken when it
    starts, released when it is stopped, and by the kernel when its process dies).
    :func:`prune_rootfs` takes the *exclusive* flock without waiting: a tree it cannot
    lock is in use, and stays.
Last use
    When a sandbox starts on a tree, the mtime of ``<cache>/<hash>/meta.json`` is set to
    now (:func:`mark_used`; its mtime is the time the tree was made until then).

``hazmat cleanup --rootfs`` prunes the cache, keeping the current base environment.
The lock files (``<hash>.use``, ``<hash>.lock``) are never removed: a process may have one
open (waiting for its lock), and a new file of the same name would not be the one it
locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, Field

from hazmat.errors import SandboxStartError
from hazmat.sandbox.rootfs_trust import open_dir, open_lock

__all__ = [
    "KeptTree",
    "PruneResult",
    "RemovedTree",
    "TreeUse",
    "cache_size",
    "mark_used",
    "prune_rootfs",
    "use_lock",
]

log = structlog.get_logger("hazmat.sandbox.rootfs")

HASH = re.compile(r"[0-9a-f]{16}")
"""The name of a cached tree's folder (an environment hash); nothing else is pruned."""
STALE = re.compile(r"\.tmp-([0-9a-f]{16})-.+")
"""The folder a maker fills (``.tmp-<hash>-*``), left behind when it died."""
WAIT = 300.0
"""Seconds a starting sandbox waits for a prune removing its tree to finish."""

Reason = Literal["current", "in use", "recent", "not removed"]


class RemovedTree(BaseModel):
    """A cached tree that was removed."""

    hash: str
    bytes: int = Field(ge=0)
    """Disk space it took (allocated blocks; a file linked twice counted once)."""


class KeptTree(BaseModel):
    """A cached tree that stays, and why."""

    hash: str
    reason: Reason
    """``current``: in ``keep``; ``in use``: a sandbox (or a maker) holds its lock;
    ``recent``: used within ``older_than``; ``not removed``: removing it failed."""


class PruneResult(BaseModel):
    """What :func:`prune_rootfs` did."""

    cache: str
    removed: list[RemovedTree] = []
    kept: list[KeptTree] = []
    stale: int = 0
    """Folders of makers that died (``.tmp-<hash>-*``) removed."""
    freed: int = 0
    """Bytes freed (removed trees and stale folders)."""

    def line(self) -> str:
        """One line: ``rootfs: 3 removed (912 MB freed), kept 2 (current, in use)``."""
        text = f"rootfs: {len(self.removed)} removed ({self.freed / 1e6:.0f} MB freed)"
        if self.stale:
            text += f", {self.stale} unfinished removed"
        reasons = sorted({k.reason for k in self.kept})
        return text + f", kept {len(self.kept)}" + (f" ({', '.join(reasons)})" if reasons else "")


# in use ------------------------------------------------------------------------------


def use_lock(tree: Path) -> Path:
    """The "in use" lock file of the cached tree ``tree`` (``<cache>/<hash>/tree``)."""
    return tree.parent.parent / f"{tree.parent.name}.use"


class TreeUse:
    """One sandbox's shared hold on the tree it runs on (see the module docstring).

    Thread-safe: :meth:`hold` may run in a worker thread while :meth:`release` is called
    by a stop that came first; a hold that completes after the release lets go at once.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._released = False
        self._mutex = threading.Lock()

    def hold(self, tree: Path, wait: float = WAIT) -> bool:
        """Take the shared lock of ``tree`` (waiting up to ``wait`` seconds while a prune
        removes it) and return whether the tree is still there: False means it was
        removed before the lock was had (nothing is held; resolve it again). A lock file that cannot be
        opened (a symlink, a cache this user cannot write) is logged and not held.

        Raises:
            SandboxStartError: the lock was still held exclusively after ``wait`` seconds.
        """
        path = use_lock(tree)
        try:
            fd = open_lock(path)
        except OSError as exc:
            log.warning("rootfs_use_unlocked", lock=str(path), why=exc.strerror)
            return tree.is_dir()
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SandboxStartError(
                            f"the root file system {tree} stayed locked for {wait:g} s "
                            f"({path}: a prune that does not finish?)"
                        ) from None
                    time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        there = tree.is_dir()
        with self._mutex:
            if self._released or self._fd is not None or not there:
                os.close(fd)
            else:
                self._fd = fd
        return there

    def release(self) -> None:
        """Let the lock go (idempotent); later :meth:`hold` calls hold nothing."""
        with self._mutex:
            self._released = True
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether the shared lock is held now."""
        return self._fd is not None


def mark_used(tree: Path) -> None:
    """Record that a sandbox starts on ``tree`` now (mtime of its ``meta.json``, set
    without following a symlink). Never raises: a failure is a warning."""
    try:
        fd = open_dir(tree.parent)
        try:
            os.utime("meta.json", dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("rootfs_last_use_unrecorded", tree=str(tree), why=exc.strerror)


# pruning -----------------------------------------------------------------------------


def _size(path: Path) -> int:
    """Allocated bytes under ``path`` (``lstat``: symlinks never followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(top, name))
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    with contextlib.suppress(OSError):
        total += os.lstat(path).st_blocks * 512
    return total


def cache_size() -> tuple[int, int]:
    """The number of cached trees and the bytes they take (0, 0 when there is no cache).

    Raises:
        ConfigError: the cache folder is refused (see :func:`~hazmat.sandbox.rootfs.cache_root`).
    """
    from hazmat.sandbox.rootfs import cache_root

    root = cache_root()
    if not root.is_dir():
        return 0, 0
    names = [n for n in os.listdir(root) if HASH.fullmatch(n) and (root / n).is_dir()]
    return len(names), sum(_size(root / n) for n in names)


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Hold ``path``'s exclusive flock when it can be had at once (yields True), else
    yields False. Opened without following a symlink (one is never locked: False)."""
    try:
        fd = open_lock(path)
    except OSError as exc:
        log.warning("rootfs_lock_unopened", lock=str(path), why=exc.strerror)
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _last_use(folder: Path) -> float:
    """When the tree in ``folder`` was last used (or made): its ``meta.json``'s mtime,
    else the folder's own (``lstat``)."""
    for path in (folder / "meta.json", folder):
        with contextlib.suppress(OSError):
            return os.lstat(path).st_mtime
    return 0.0


def _remove(path: Path) -> tuple[bool, int]:
    """Remove ``path`` (a symlink itself only; a folder never through its symlinks);
    whether it is gone, and the bytes freed."""
    from hazmat.sandbox.local.host import rmtree

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True, 0
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return not os.path.lexists(path), 0
    size = _size(path)
    rmtree(path)
    gone = not os.path.lexists(path)
    return gone, size if gone else 0


def prune_rootfs(keep: set[str], older_than: float | None = None) -> PruneResult:
    """Remove the cached trees of the cache (:func:`~hazmat.sandbox.rootfs.cache_root`)
    whose hash is not in ``keep``, that no sandbox uses (the exclusive flock of
    ``<hash>.use`` can be had at once; it is held, with the maker's ``<hash>.lock``, while
    the tree is removed), and, when ``older_than`` is given, that were not used (or made)
    within the last ``older_than`` seconds; and the ``.tmp-<hash>-*`` folders of makers
    that died (their ``<hash>.lock`` can be had). Only entries named like a hash (or a
    maker's folder) are touched; a symlink is removed as a link, never followed.

    Raises:
        ConfigError: the cache folder is refused (another user could change it, or, as
            root, the sandbox's ids cannot reach it): nothing is removed.
    """
    from hazmat.sandbox.rootfs import cache_root

    root = cache_root()
    result = PruneResult(cache=str(root))
    if not root.is_dir():
        return result
    names = sorted(os.listdir(root))
    for name in names:
        if not HASH.fullmatch(name):
            continue
        folder = root / name
        if name in keep:
            result.kept.append(KeptTree(hash=name, reason="current"))
            continue
        if older_than is not None and time.time() - _last_use(folder) < older_than:
            result.kept.append(KeptTree(hash=name, reason="recent"))
            continue
        with _try_lock(root / f"{name}.use") as free, _try_lock(root / f"{name}.lock") as idle:
            if not (free and idle):
                result.kept.append(KeptTree(hash=name, reason="in use"))
                continue
            if older_than is not None and time.time() - _last_use(folder) < older_than:
                result.kept.append(KeptTree(hash=name, reason="recent"))  # used meanwhile
                continue
            gone, size = _remove(folder)
        if gone:
            result.removed.append(RemovedTree(hash=name, bytes=size))
            result.freed += size
            log.info("rootfs_pruned", hash=name, bytes=size)
        else:
            result.kept.append(KeptTree(hash=name, reason="not removed"))
            log.warning("rootfs_prune_failed", hash=name, folder=str(folder))
    for name in names:
        match = STALE.fullmatch(name)
        if match is None:
            continue
        with _try_lock(root / f"{match.group(1)}.lock") as idle:
            if not idle:
                continue  # a maker at work
            gone, size = _remove(root / name)
        if gone:
            result.stale += 1
            result.freed += size
    return result
