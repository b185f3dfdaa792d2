"""Trust in the root file system cache (``hazmat.sandbox.rootfs_trust``), attacked by
another host user (uid 65534, in a forked child) as the red team did
(``redteam/cache_trust.sh``, ``redteam/cache_race.sh``): a cache folder that user owns, a
tree that user planted, root's in-progress folder swapped for a symlink, a lock file that
is a symlink, a private cache the sandbox's ids cannot reach.

Every test runs as root (the host's root is who the cache must protect).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hazmat.errors import ConfigError, ImageError, SandboxStartError
from hazmat.sandbox import rootfs
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.host import rmtree
from hazmat.sandbox.rootfs import (
    SYSTEM_CACHE,
    RootfsSource,
    cache_root,
    cached_rootfs,
    extract_tar,
    rootfs_for,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="attacks on root's cache: run as root"),
]

NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]


def as_nobody(fn: Callable[[], None]) -> int:
    """Run ``fn`` in a forked child as uid/gid 65534 (no groups); its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.fixture
def folder() -> Iterator[Path]:
    """A fresh root-owned 0755 folder under /var/tmp (removed after)."""
    path = Path(tempfile.mkdtemp(prefix="hazmat-trust-test-", dir="/var/tmp"))
    os.chmod(path, 0o755)
    yield path
    rmtree(path)


@pytest.fixture
def users_cache(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HAZMAT_ROOTFS_CACHE`` pointing at a folder uid 65534 owns (0755)."""
    cache = folder / "cache"
    cache.mkdir(mode=0o755)
    os.chown(cache, NOBODY, NOBODY)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    return cache


def _small_tree(marker: str) -> Callable[[RootfsSource, Path, Any], dict[str, Any]]:
    """A stand-in for the Docker export: a real tar extraction of a tiny system."""

    def make(source: RootfsSource, tree: Path, progress: Any) -> dict[str, Any]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in (
                ("etc/shadow", b"root:$6$secret\n"),
                ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
                ("usr/bin/python3", b"#!/bin/sh\n"),
                ("marker", marker.encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        return {"source": "test", "members": extract_tar(buf, tree)}

    return make


def _plant(cache: Path, digest: str) -> None:
    """As the other user: a complete-looking cached tree of ``digest`` of their own."""
    tree = cache / digest / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "usr/bin/python3").write_text("#!/bin/sh\necho PLANTED\n")
    (tree / "marker").write_text("PLANTED-BY-UID-65534")
    (cache / digest / "meta.json").write_text(json.dumps({"source": "docker-export"}))


def test_a_cache_another_user_owns_is_refused_and_their_tree_never_used(
    users_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cache_trust.sh: uid 65534 owns the cache and plants ``<hash>/tree``; every way root
    reaches the cache refuses it with one line naming the folder, the owner and the fix,
    and root writes nothing there."""
    from hazmat.sandbox.local import system

    digest = secrets.token_hex(8)
    assert as_nobody(lambda: _plant(users_cache, digest)) == 0
    monkeypatch.setattr(rootfs, "_make", _small_tree("genuine"))
    with pytest.raises(ConfigError) as info:
        cache_root()
    line = info.value.one_line()
    assert f"HAZMAT_ROOTFS_CACHE={users_cache}" in line and "owned by uid 65534" in line
    assert "unset HAZMAT_ROOTFS_CACHE" in line and "\n" not in line
    with pytest.raises(ConfigError):
        cached_rootfs(digest)
    with pytest.raises(ConfigError):
        rootfs_for(RootfsSource(hash=digest, image=f"hazmat-env:{digest}"))
    with pytest.raises(ConfigError):
        system.prepare_base(lambda _: None)
    with pytest.raises(SandboxStartError, match="owned by uid 65534"):
        system.system_root(SandboxSpec(image=f"hazmat-env:{digest}"))
    owners = {p.lstat().st_uid for p in users_cache.rglob("*")}
    assert owners == {NOBODY}, "root wrote into the other user's cache"


def test_the_export_race_into_a_symlink_never_reaches_the_victim(
    users_cache: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cache_race.sh: while root makes a tree, uid 65534 swaps ``.tmp-<hash>-*`` for a
    folder whose ``tree`` is a symlink to a victim folder. Root refuses the cache before
    making anything: the victim keeps its files (its ``shadow`` included) and gets none."""
    victim = folder / "victim"
    (victim / "etc").mkdir(parents=True)
    (victim / "etc/shadow").write_text("victim's own\n")
    before = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))
    digest = secrets.token_hex(8)
    monkeypatch.setattr(rootfs, "_make", _small_tree("genuine"))

    def racer() -> None:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for name in os.listdir(users_cache):
                if name.startswith(".tmp-") and not name.endswith("-moved"):
                    os.rename(users_cache / name, users_cache / f"{name}-moved")
                    (users_cache / name).mkdir()
                    os.symlink(victim, users_cache / name / "tree")
            time.sleep(0.001)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the racer
        os._exit(as_nobody(racer))
    try:
        with pytest.raises(ConfigError, match="owned by uid 65534"):
            rootfs_for(RootfsSource(hash=digest, image=f"hazmat-env:{digest}"))
    finally:
        os.waitpid(pid, 0)
    assert sorted(str(p.relative_to(victim)) for p in victim.rglob("*")) == before
    assert (victim / "etc/shadow").read_text() == "victim's own\n"
    assert os.listdir(users_cache) == []


def test_a_swapped_tmp_tree_is_never_finished_or_renamed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth (a trusted cache no other user can write, so the swap is done
    in-process, where an attacker would do it): the tree being made becomes a symlink to
    a victim folder after extraction. Nothing is unlinked or written through it, nothing
    is renamed into place, the temporary folder (0700 while made) is removed."""
    cache = folder / "cache"
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    victim = folder / "victim"
    (victim / "etc").mkdir(parents=True)
    (victim / "etc/shadow").write_text("victim's own\n")
    (victim / "etc/hosts").symlink_to("/etc/hosts")
    genuine = _small_tree("genuine")
    modes: list[int] = []

    def swapping(source: RootfsSource, tree: Path, progress: Any) -> dict[str, Any]:
        meta = genuine(source, tree, progress)
        modes.append(stat.S_IMODE(os.lstat(tree.parent).st_mode))
        os.rename(tree, tree.parent / "moved")
        tree.symlink_to(victim)
        return meta

    monkeypatch.setattr(rootfs, "_make", swapping)
    digest = secrets.token_hex(8)
    with pytest.raises(ImageError, match=r"not a folder|replaced"):
        rootfs_for(RootfsSource(hash=digest, image=f"hazmat-env:{digest}"))
    assert modes == [0o700]
    assert (victim / "etc/shadow").read_text() == "victim's own\n"
    assert (victim / "etc/hosts").is_symlink()
    assert sorted(os.listdir(cache)) == [f"{digest}.lock"]


def test_a_lock_file_symlink_is_not_followed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``<hash>.lock`` a symlink to a host file: refused (no open through it, no create
    at its target); a new lock file is 0600."""
    cache = folder / "cache"
    cache.mkdir(mode=0o755)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    monkeypatch.setattr(rootfs, "_make", _small_tree("genuine"))
    target = folder / "not-yet"
    digest = secrets.token_hex(8)
    (cache / f"{digest}.lock").symlink_to(target)
    with pytest.raises(ImageError, match="cannot open the lock"):
        rootfs_for(RootfsSource(hash=digest, image=f"hazmat-env:{digest}"))
    assert not os.path.lexists(target)
    other = secrets.token_hex(8)
    tree = rootfs_for(RootfsSource(hash=other, image=f"hazmat-env:{other}"))
    assert stat.S_IMODE(os.lstat(cache / f"{other}.lock").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(tree.parent).st_mode) == 0o755
    assert not (tree / "etc/shadow").exists() and (tree / "etc/hosts").is_file()


def test_a_tree_another_user_owns_in_a_trusted_cache_is_made_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check at use: the cache is root's, but ``<hash>`` inside it is uid 65534's
    (left from when it was shared) and holds that user's tree. It is not used: the tree
    is made again, root's, without the planted file."""
    cache = folder / "cache"
    cache.mkdir(mode=0o755)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    monkeypatch.setattr(rootfs, "_make", _small_tree("genuine"))
    digest = secrets.token_hex(8)
    (cache / digest).mkdir(mode=0o755)
    os.chown(cache / digest, NOBODY, NOBODY)
    assert as_nobody(lambda: _plant(cache, digest)) == 0
    assert cached_rootfs(digest) is None
    tree = rootfs_for(RootfsSource(hash=digest, image=f"hazmat-env:{digest}"))
    assert (tree / "marker").read_text() == "genuine"
    assert {p.lstat().st_uid for p in tree.parent.rglob("*")} | {tree.parent.stat().st_uid} == {0}
    assert cached_rootfs(digest) == tree


@pytest.mark.parametrize(
    ("layout", "says"),
    [
        ("cache-0775", "writable by other users (mode 0775)"),
        ("cache-1777", "writable by other users (mode 1777)"),
        ("parent-0777", "writable by other users without the sticky bit (mode 0777)"),
        ("symlink-to-users", "owned by uid 65534"),
    ],
)
def test_a_cache_others_can_write_is_refused(
    folder: Path, monkeypatch: pytest.MonkeyPatch, layout: str, says: str
) -> None:
    """Every component from / down: group/other-writable without the sticky bit, or the
    cache itself writable by others, or a symlink leading to another user's folder."""
    cache = folder / "p" / "cache"
    cache.mkdir(parents=True, mode=0o755)
    if layout.startswith("cache-"):
        os.chmod(cache, int(layout[6:], 8))
    elif layout == "parent-0777":
        os.chmod(folder / "p", 0o777)
    else:
        os.chown(cache, NOBODY, NOBODY)
        (folder / "link").symlink_to(cache)
        cache = folder / "link"
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        cache_root()


def test_a_sticky_parent_is_fine_when_the_cache_is_roots(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/var/tmp (1777) above a root-owned 0755 cache, or one not made yet: accepted."""
    assert os.stat("/var/tmp").st_mode & stat.S_ISVTX
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(folder / "not-yet"))
    assert cache_root() == folder / "not-yet"
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(folder))
    assert cache_root() == folder


def test_root_ignores_a_users_home_and_xdg_cache(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sudo -E``: root keeps a user's XDG_CACHE_HOME or HOME; the system cache is used."""
    home = folder / "home"
    (home / ".cache").mkdir(parents=True)
    os.chown(home, NOBODY, NOBODY)
    os.chown(home / ".cache", NOBODY, NOBODY)
    monkeypatch.delenv("HAZMAT_ROOTFS_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == SYSTEM_CACHE
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    assert cache_root() == SYSTEM_CACHE
    os.chown(home, 0, 0)
    os.chown(home / ".cache", 0, 0)
    assert cache_root() == home / ".cache/hazmat/rootfs"  # root's own, reachable


def test_a_private_cache_fails_once_with_one_line(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 0700 HAZMAT_ROOTFS_CACHE: the sandbox's ids cannot reach it. One line with the
    fix, from cache_root and prepare_base, before anything is made."""
    from hazmat.sandbox.local import system

    cache = folder / "private"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("HAZMAT_ROOTFS_CACHE", str(cache))
    monkeypatch.delenv("HAZMAT_LOCAL_ROOT", raising=False)
    expected = (
        f"HAZMAT_ROOTFS_CACHE={cache} is mode 0700: the sandbox's ids cannot read it "
        "(chmod 755 it or unset HAZMAT_ROOTFS_CACHE)"
    )
    with pytest.raises(ConfigError) as info:
        cache_root()
    assert info.value.one_line() == expected
    with pytest.raises(ConfigError) as info:
        system.prepare_base(lambda _: None)
    assert info.value.one_line() == expected
    assert os.listdir(cache) == []


@pytest.mark.timeout(240)
def test_a_local_run_with_a_private_cache_says_so_once(folder: Path, tmp_path: Path) -> None:
    """Through the CLI: ``hazmat run --sandbox local`` with a 0700 cache exits non-zero
    with the one line, not an error per sandbox start."""
    cache = folder / "private"
    cache.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["HAZMAT_ROOTFS_CACHE"] = str(cache)
    env.pop("HAZMAT_LOCAL_ROOT", None)
    argv = [sys.executable, "-m", "hazmat.cli", "run", "tasks/examples/find-file"]
    argv += ["--agent", "solution", "--sandbox", "local", "--out", str(tmp_path / "runs")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=200, env=env, cwd=ROOT)
    assert proc.returncode != 0
    said = f"HAZMAT_ROOTFS_CACHE={cache} is mode 0700: the sandbox's ids cannot read it"
    assert proc.stderr.count(said) == 1, proc.stderr
    assert "bwrap" not in proc.stderr
    assert os.listdir(cache) == []
