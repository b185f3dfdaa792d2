"""``hazmat cleanup --rootfs``: prunes the root file system cache (a temporary one here,
with fake trees), keeping the current base environment's tree.

``--run`` names a run that never existed, so the container/folder part of the cleanup
(which the same command runs) touches nothing of anyone else's on this machine.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hazmat.sandbox.local.host import rmtree
from hazmat.sandbox.rootfs import base_source

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0


def hazmat(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAZMAT_ROOTFS_CACHE": str(cache)}
    run = f"prune-test-{secrets.token_hex(6)}"  # no such run: nothing else is cleaned
    return subprocess.run(
        [sys.executable, "-m", "hazmat.cli", *args, "--run", run],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        cwd=ROOT,
    )


def fake_tree(cache: Path, digest: str, age: float) -> None:
    """A cached tree of ``digest`` (1 MB), last used ``age`` seconds ago."""
    folder = cache / digest
    (folder / "tree/usr/bin").mkdir(parents=True)
    (folder / "tree/usr/bin/python3").write_text("#!/bin/sh\n")
    (folder / "tree/usr/lib.bin").write_bytes(os.urandom(1 << 20))
    (folder / "meta.json").write_text(json.dumps({"source": "test", "hash": digest}))
    when = time.time() - age
    os.utime(folder / "meta.json", (when, when))


@pytest.fixture
def cache() -> Iterator[Path]:
    """A trusted temporary cache: the current base tree, two old trees, one recent one."""
    folder = Path(tempfile.mkdtemp(prefix="hazmat-cli-prune-", dir="/var/tmp"))
    os.chmod(folder, 0o755)
    fake_tree(folder, base_source().hash, 30 * DAY)
    for name, age in (("0000000000000001", 10 * DAY), ("0000000000000002", 10 * DAY)):
        fake_tree(folder, name, age)
    fake_tree(folder, "0000000000000003", 3600)
    yield folder
    rmtree(folder)


def test_cleanup_rootfs_json(cache: Path) -> None:
    proc = hazmat("cleanup", "--rootfs", "--older-than", "1", "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)["rootfs"]
    assert sorted(r["hash"] for r in figures["removed"]) == ["0000000000000001", "0000000000000002"]
    assert {k["hash"]: k["reason"] for k in figures["kept"]} == {
        base_source().hash: "current",
        "0000000000000003": "recent",
    }
    assert figures["freed"] == sum(r["bytes"] for r in figures["removed"]) >= 2 << 20
    assert figures["cache"] == str(cache) and figures["stale"] == 0
    assert sorted(os.listdir(cache)) == sorted(
        [
            base_source().hash,
            "0000000000000003",
            "0000000000000001.use",
            "0000000000000001.lock",
            "0000000000000002.use",
            "0000000000000002.lock",
        ]
    )


def test_cleanup_rootfs_text_is_one_line(cache: Path) -> None:
    proc = hazmat("cleanup", "--rootfs", cache=cache)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("rootfs:")]
    assert lines == ["rootfs: 3 removed (3 MB freed), kept 1 (current)"], proc.stdout
    assert os.listdir(cache).count(base_source().hash) == 1


def test_plain_cleanup_leaves_the_cache_alone(cache: Path) -> None:
    before = sorted(os.listdir(cache))
    proc = hazmat("cleanup", "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "rootfs" not in json.loads(proc.stdout)
    assert sorted(os.listdir(cache)) == before


def test_older_than_needs_rootfs(cache: Path) -> None:
    proc = hazmat("cleanup", "--older-than", "3", cache=cache)
    assert proc.returncode != 0 and "--rootfs" in proc.stderr
