"""Root file systems of environments (``hazmat.sandbox.rootfs``): safe extraction, the
cache keyed by the environment hash, Docker export, and the mmdebstrap path.

Issue 15, failure 4: the local backend showed the host's ``/usr``, so the same task saw
different tools on each backend.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import stat
import tarfile
import time
from pathlib import Path

import pytest

from hazmat.errors import ImageError
from hazmat.sandbox.rootfs import (
    RootfsSource,
    base_packages,
    base_source,
    cache_root,
    cached_rootfs,
    environment_of_image,
    extract_tar,
    mmdebstrap_command,
    rootfs_for,
)

pytestmark = pytest.mark.timeout(300)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the extraction target: nothing may land here."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([(_member("../outside/evil"), b"x")], id="dotdot"),
        pytest.param(
            [(_member("a/../../outside/evil"), b"x")],
            id="dotdot-inside",
        ),
        pytest.param(
            [(_member("esc", tarfile.SYMTYPE, "../outside"), b""), (_member("esc/evil"), b"x")],
            id="through-a-symlink",
        ),
        pytest.param(
            [(_member("abs", tarfile.SYMTYPE, "OUTSIDE"), b""), (_member("abs/evil"), b"x")],
            id="through-an-absolute-symlink",
        ),
        pytest.param(
            [(_member("hard", tarfile.LNKTYPE, "../outside/target"), b"")],
            id="hardlink-out",
        ),
        pytest.param(
            [(_member("hard", tarfile.LNKTYPE, "OUTSIDE/target"), b"")],
            id="hardlink-absolute",
        ),
        pytest.param(
            [(_member("x", tarfile.SYMTYPE, "OUTSIDE/target"), b""), (_member("x"), b"x")],
            id="file-over-a-symlink",
        ),
    ],
)
def test_extraction_refuses_hostile_members(
    tmp_path: Path, outside: Path, members: list[tuple[tarfile.TarInfo, bytes]]
) -> None:
    (outside / "target").write_text("host file")
    for info, _ in members:
        info.linkname = info.linkname.replace("OUTSIDE", str(outside))
    dest = tmp_path / "tree"
    dest.mkdir()
    with pytest.raises(ImageError, match="hostile archive member"):
        extract_tar(_tar(*members), dest)
    assert sorted(p.name for p in outside.iterdir()) == ["target"]
    assert (outside / "target").read_text() == "host file"
    assert (outside / "target").stat().st_nlink == 1


def test_extraction_keeps_symlinks_drops_devices_and_privilege_bits(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    owned = _member("home/agent/.profile")
    owned.uid = owned.gid = 1000
    dev = _member("dev/sda", tarfile.BLKTYPE)
    dev.devmajor, dev.devminor = 8, 0
    count = extract_tar(
        _tar(
            (_member("usr/bin", tarfile.DIRTYPE, mode=0o755), b""),
            (_member("usr/bin/su", mode=0o4755), b"#!/bin/sh\n"),
            (_member("usr/bin/wide", mode=0o777), b"x"),
            (_member("bin", tarfile.SYMTYPE, "usr/bin"), b""),
            (_member("etc/alt", tarfile.SYMTYPE, "/usr/bin/su"), b""),
            (_member("usr/bin/su2", tarfile.LNKTYPE, "usr/bin/su", 0o4755), b""),
            (_member("dev/console", tarfile.CHRTYPE), b""),
            (dev, b""),
            (_member("run/fifo", tarfile.FIFOTYPE), b""),
            (owned, b"x"),
        ),
        dest,
    )
    assert count == 7
    if os.geteuid() == 0:  # no host user owns a part of the tree
        assert (dest / "home/agent/.profile").stat().st_uid == 0
    assert os.readlink(dest / "bin") == "usr/bin"
    assert os.readlink(dest / "etc/alt") == "/usr/bin/su"  # absolute: resolves in the sandbox
    mode = (dest / "usr/bin/su").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o777 == 0o755
    assert (dest / "usr/bin/wide").stat().st_mode & 0o777 == 0o755  # no group/other write
    assert (dest / "usr/bin/su2").stat().st_ino == (dest / "usr/bin/su").stat().st_ino
    assert not (dest / "dev").exists() and not (dest / "run").exists()


def test_mmdebstrap_command_line() -> None:
    cmd = mmdebstrap_command(
        Path("/c/rootfs.tar"),
        apt=["python3", "tree", "python3"],
        pip=["pycryptodome>=3", "six"],
        mirror="http://deb.debian.org/debian",
        ca=Path("/c/ca.crt"),
        root=False,
        exe="/usr/bin/mmdebstrap",
    )
    assert cmd[:4] == [
        "/usr/bin/mmdebstrap",
        "--variant=minbase",
        "--include=ca-certificates,python3,python3-pip,tree",
        "--mode=unshare",
    ]
    assert cmd[-3:] == ["bookworm", "/c/rootfs.tar", "http://deb.debian.org/debian"]
    hooks = [c.split("=", 1)[1] for c in cmd if c.startswith("--customize-hook=")]
    assert hooks[0] == 'cp /c/ca.crt "$1/tmp/hazmat-host-ca.crt"'
    assert hooks[1] == (
        'chroot "$1" env PIP_CERT=/tmp/hazmat-host-ca.crt python3 -m pip install '
        "--no-cache-dir --break-system-packages 'pycryptodome>=3' six"
    )
    plain = mmdebstrap_command(Path("/o.tar"), apt=["bash"], mirror="http://m/debian")
    assert "--mode=unshare" not in plain and not any("pip" in c for c in plain)


def test_base_packages_mirror_the_dockerfile() -> None:
    from hazmat.sandbox.docker.image import dockerfile_path

    packages = base_packages(dockerfile_path().read_text())
    assert {"bash", "python3", "procps", "curl", "ca-certificates", "gzip"} <= set(packages)
    assert not any(p.startswith("-") or p in ("\\", "&&") for p in packages)
    with pytest.raises(ImageError):
        base_packages("FROM scratch\n")


def test_environment_of_an_image() -> None:
    assert environment_of_image("hazmat-env:0123456789abcdef") == "0123456789abcdef"
    assert environment_of_image("hazmat-sandbox:fedcba9876543210") == "fedcba9876543210"
    labels = {"hazmat.image": "sandbox", "hazmat.content_hash": "aaaabbbbccccdddd"}
    assert environment_of_image("hazmat-sandbox", labels) == "aaaabbbbccccdddd"
    assert environment_of_image("python:3.11", {}) is None


@pytest.mark.docker
def test_docker_export_is_cached_by_hash_and_made_once(reachable_cache: Path) -> None:
    """Three callers at once (three processes: the file lock): one export; the tree is
    the image's; a second call costs nothing; no temporary folder or container is left.
    (Processes, not a thread here: a logger cached by an earlier test would hide this
    process's own "rootfs_made" from structlog's capture.)"""
    import subprocess
    import sys

    import docker

    source = base_source()
    results: list[Path] = []
    code = "from hazmat.sandbox.rootfs import *; print('TREE', rootfs_for(base_source()))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    first = time.monotonic() - t0
    for out in outs:
        results += [Path(ln.split()[1]) for ln in out.splitlines() if ln.startswith("TREE ")]
    made = sum(out.count("rootfs_made") for out in outs)
    assert len(results) == 3 and made == 1, outs
    assert len(set(results)) == 1 and results[0] == reachable_cache / source.hash / "tree"
    assert cache_root() == reachable_cache and cached_rootfs(source.hash) == results[0]
    meta = json.loads((reachable_cache / source.hash / "meta.json").read_text())
    assert meta["source"] == "docker-export" and meta["image"] == source.image
    tree = results[0]
    assert (tree / "etc/debian_version").read_text().startswith("12.")
    assert os.path.lexists(tree / "usr/bin/python3")
    t0 = time.monotonic()
    assert rootfs_for(source) == tree
    again = time.monotonic() - t0
    assert again < 0.05 < first, (again, first)
    assert json.loads((reachable_cache / source.hash / "meta.json").read_text()) == meta
    assert sorted(p.name for p in reachable_cache.iterdir()) == [source.hash, f"{source.hash}.lock"]
    client = docker.from_env()
    try:
        left = client.containers.list(all=True, filters={"label": f"hazmat.rootfs={source.hash}"})
        assert left == []
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed")
def test_mmdebstrap_makes_a_tree_a_local_sandbox_runs_on(
    reachable_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Docker (its daemon does not answer): mmdebstrap from the Debian mirror,
    then a local sandbox of that environment sees the package the host lacks."""
    import asyncio

    from hazmat.sandbox import SandboxSpec, create_sandbox

    monkeypatch.setenv("DOCKER_HOST", f"unix://{reachable_cache}/no-docker.sock")
    digest = secrets.token_hex(8)
    source = RootfsSource(hash=digest, image=f"hazmat-env:{digest}", apt=("python3", "tree"))
    tree = rootfs_for(source)
    assert json.loads((tree.parent / "meta.json").read_text())["source"] == "mmdebstrap"
    assert shutil.which("tree") is None  # the host lacks it: the sandbox's comes from the tree

    async def run() -> tuple[str, str]:
        spec = SandboxSpec(image=f"hazmat-env:{digest}")
        async with create_sandbox("local", spec) as sb:
            r = await sb.exec("command -v tree && cat /etc/debian_version")
            return r.stdout_text, str(sb.environment)

    out, env = asyncio.run(run())
    assert out.startswith("/usr/bin/tree\n12."), out
    assert env == digest
