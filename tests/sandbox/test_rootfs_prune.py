"""Pruning the root file system cache (``hazmat.sandbox.rootfs_prune``): old unused trees
go; trees in ``keep``, trees a sandbox (another process, or a real local sandbox) runs on,
recently used trees, and a maker's folder at work stay; nothing outside the cache is ever
reached through a symlink planted in it.

Fake trees are made in a temporary cache (``HAZMAT_ROOTFS_CACHE``); the real sandbox test
runs on a hard-linked copy of this machine's base tree, never on the real cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.errors import ConfigError, SandboxStartError
from hazmat.sandbox.local.host import rmtree
from hazmat.sandbox.rootfs import base_source, cache_root, cached_rootfs
from hazmat.sandbox.rootfs_prune import (
    TreeUse,
    cache_size,
    mark_used,
    prune_rootfs,
    use_lock,
)

pytestmark = pytest.mark.timeout(120)

DAY = 86400.0


@pytest.fixture
def cache(reachable_cache: Path) -> Path:
    """A fresh, trusted rootfs cache (see ``reachable_cache``)."""
    return reachable_cache


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside the cache with a marker file that must survive every prune."""
    folder = Path(tempfile.mkdtemp(prefix="hazmat-prune-outside-", dir="/var/tmp"))
    (folder / "marker").write_text("keep me")
    yield folder
    shutil.rmtree(folder)


def fake_tree(cache: Path, digest: str | None = None, age: float = 0.0) -> str:
    """A cached tree of ``digest`` (random when None), last used ``age`` seconds ago."""
    digest = digest or secrets.token_hex(8)
    folder = cache / digest
    (folder / "tree/usr/bin").mkdir(parents=True)
    (folder / "tree/etc").mkdir()
    (folder / "tree/usr/bin/python3").write_text("#!/bin/sh\n")
    (folder / "tree/usr/lib.bin").write_bytes(os.urandom(64 << 10))
    (folder / "meta.json").write_text(json.dumps({"source": "test", "hash": digest}))
    when = time.time() - age
    os.utime(folder / "meta.json", (when, when))
    return digest


@contextlib.contextmanager
def holder(lock: Path, how: str = "LOCK_SH") -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``lock``'s flock (shared by default) until the block ends
    (killed after at most 60 s whatever happens)."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        f"fcntl.flock(fd, fcntl.{how})\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def kept(result: object) -> dict[str, str]:
    return {k.hash: k.reason for k in getattr(result, "kept", [])}


def test_unused_trees_go_and_keep_stays(cache: Path) -> None:
    current, old1, old2 = (fake_tree(cache, age=3 * DAY) for _ in range(3))
    (cache / "notes").mkdir()  # not a hash: never touched
    (cache / "README").write_text("mine")
    assert cache_size()[0] == 3

    result = prune_rootfs({current})

    assert sorted(r.hash for r in result.removed) == sorted([old1, old2])
    assert kept(result) == {current: "current"}
    assert result.freed == sum(r.bytes for r in result.removed) > 2 * (64 << 10)
    assert not (cache / old1).exists() and not (cache / old2).exists()
    assert cached_rootfs(current) == cache / current / "tree"
    assert (cache / "notes").is_dir() and (cache / "README").read_text() == "mine"
    assert (
        result.line() == f"rootfs: 2 removed ({result.freed / 1e6:.0f} MB freed), kept 1 (current)"
    )
    assert cache_size()[0] == 1


def test_a_tree_another_process_runs_on_stays(cache: Path) -> None:
    busy = fake_tree(cache, age=3 * DAY)
    with holder(cache / f"{busy}.use"):
        result = prune_rootfs(set())
        assert kept(result) == {busy: "in use"} and not result.removed
        assert cached_rootfs(busy) is not None
    result = prune_rootfs(set())  # the holder died: the kernel let its lock go
    assert [r.hash for r in result.removed] == [busy] and not (cache / busy).exists()


def test_a_tree_being_made_again_stays(cache: Path) -> None:
    """The maker's ``<hash>.lock`` held (it replaces a refused tree): not removed."""
    digest = fake_tree(cache, age=3 * DAY)
    with holder(cache / f"{digest}.lock", "LOCK_EX"):
        assert kept(prune_rootfs(set())) == {digest: "in use"}


def test_tree_use_holds_a_shared_lock_until_released(cache: Path) -> None:
    digest = fake_tree(cache)
    tree = cache / digest / "tree"
    one, two = TreeUse(), TreeUse()
    assert one.hold(tree) and two.hold(tree) and one.held and two.held  # shared
    assert kept(prune_rootfs(set())) == {digest: "in use"}
    one.release()
    assert kept(prune_rootfs(set())) == {digest: "in use"}
    two.release()
    two.release()  # idempotent
    assert two.hold(tree) and not two.held  # released: a late hold holds nothing
    assert [r.hash for r in prune_rootfs(set()).removed] == [digest]
    assert not TreeUse().hold(tree)  # gone: resolve again


def test_a_hold_waits_for_a_prune_then_sees_the_tree_gone(cache: Path) -> None:
    digest = fake_tree(cache)
    tree = cache / digest / "tree"
    with holder(use_lock(tree), "LOCK_EX") as proc:
        use = TreeUse()
        t0 = time.monotonic()
        with pytest.raises(SandboxStartError, match="stayed locked"):
            use.hold(tree, wait=0.3)
        assert 0.3 <= time.monotonic() - t0 < 5 and not use.held
        rmtree(cache / digest)  # what the prune holding the lock does
        proc.kill()
    assert not use.hold(tree) and not use.held


def test_older_than_keeps_recently_used_trees(cache: Path) -> None:
    old = fake_tree(cache, age=10 * DAY)
    recent = fake_tree(cache, age=3600)
    used = fake_tree(cache, age=10 * DAY)
    mark_used(cache / used / "tree")  # a sandbox started on it now

    result = prune_rootfs(set(), older_than=DAY)

    assert [r.hash for r in result.removed] == [old]
    assert kept(result) == {recent: "recent", used: "recent"}
    assert "kept 2 (recent)" in result.line()


def test_mark_used_never_raises(cache: Path) -> None:
    mark_used(cache / "0123456789abcdef" / "tree")  # no such tree: a warning only


def test_dead_makers_folders_go_a_working_makers_stays(cache: Path) -> None:
    dead, working = secrets.token_hex(8), secrets.token_hex(8)
    for digest, suffix in ((dead, "a1b2c3"), (working, "d4e5f6")):
        folder = cache / f".tmp-{digest}-{suffix}"
        (folder / "tree/usr").mkdir(parents=True)
        (folder / "tree/usr/half").write_bytes(os.urandom(32 << 10))
        folder.chmod(0o700)
    with holder(cache / f"{working}.lock", "LOCK_EX"):
        result = prune_rootfs(set())
    assert result.stale == 1 and result.freed > 32 << 10
    assert not (cache / f".tmp-{dead}-a1b2c3").exists()
    assert (cache / f".tmp-{working}-d4e5f6/tree/usr/half").is_file()
    assert "1 unfinished removed" in result.line()


def test_planted_symlinks_are_never_followed(cache: Path, outside: Path) -> None:
    """``<hash>`` a symlink out of the cache, ``<hash>/tree`` one, a symlink inside a
    tree, and ``<hash>.use`` one: the marker outside survives, nothing lands there."""
    as_hash = secrets.token_hex(8)
    (cache / as_hash).symlink_to(outside)
    as_tree = fake_tree(cache, age=3 * DAY)
    shutil.rmtree(cache / as_tree / "tree")
    (cache / as_tree / "tree").symlink_to(outside)
    inside = fake_tree(cache, age=3 * DAY)
    (cache / inside / "tree/escape").symlink_to(outside)
    (cache / inside / "tree/usr/escape").symlink_to(outside / "marker")
    as_lock = fake_tree(cache, age=3 * DAY)
    (cache / f"{as_lock}.use").symlink_to(outside / "lockfile")

    result = prune_rootfs(set())

    assert (outside / "marker").read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["marker"]
    assert sorted(r.hash for r in result.removed) == sorted([as_hash, as_tree, inside])
    assert kept(result) == {as_lock: "in use"}  # its lock cannot be taken: never removed
    assert not os.path.lexists(cache / as_hash) and not os.path.lexists(cache / as_tree)
    assert (cache / f"{as_lock}.use").is_symlink()


def test_an_untrusted_cache_is_refused(cache: Path) -> None:
    digest = fake_tree(cache, age=3 * DAY)
    os.chmod(cache, 0o777)  # any user could plant or swap trees here
    try:
        with pytest.raises(ConfigError, match="writable by other users"):
            prune_rootfs(set())
        assert (cache / digest / "tree").is_dir()
    finally:
        os.chmod(cache, 0o755)


def test_no_cache_yet_prunes_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache / "none"))
    result = prune_rootfs(set())
    assert not result.removed and not result.kept and cache_size() == (0, 0)


# a real local sandbox ------------------------------------------------------------------


@pytest.fixture
def base_copy(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hard-linked copy of this machine's base tree in ``cache`` (the real cache is
    never pruned here), ``meta.json`` a copy of its own, last used 3 days ago; the local
    backend's per-process base environment forgotten for the test."""
    from hazmat.sandbox.local import system

    digest = base_source().hash
    with monkeypatch.context() as m:
        m.delenv("HAZMAT_ROOTFS_CACHE")
        real = cached_rootfs(digest)
        real_cache = cache_root()
    if real is None:
        pytest.skip(f"the base tree {digest} is not cached in {real_cache} (no local run yet)")
    subprocess.run(["cp", "-al", str(real.parent), str(cache / digest)], check=True, timeout=60)
    meta = cache / digest / "meta.json"
    text = meta.read_text()
    meta.unlink()  # a file of its own: its mtime is the copy's last use
    meta.write_text(text)
    old = time.time() - 3 * DAY
    os.utime(meta, (old, old))
    monkeypatch.setattr(system, "_base", None)
    return cache / digest / "tree"


@pytest.mark.local
@pytest.mark.anyio
async def test_a_running_local_sandbox_keeps_its_tree(base_copy: Path) -> None:
    from hazmat.sandbox import SandboxSpec, create_sandbox

    digest = base_copy.parent.name
    lock = use_lock(base_copy)
    async with create_sandbox("local", SandboxSpec()) as sb:
        assert sb.environment == digest
        r = await sb.exec(["python3", "-c", "print(1 + 1)"])
        assert r.stdout_text.strip() == "2"
        assert time.time() - os.lstat(base_copy.parent / "meta.json").st_mtime < 600  # used
        result = prune_rootfs(set())
        assert kept(result) == {digest: "in use"} and not result.removed
        r = await sb.exec(["test", "-x", "/usr/bin/python3"])
        assert r.exit_code == 0
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(lock, os.O_RDWR)  # closed: the lock is free
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    result = prune_rootfs(set())  # the copy only: the real cache is untouched
    assert [r.hash for r in result.removed] == [digest] and not base_copy.exists()
