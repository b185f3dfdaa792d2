"""Host-side helpers of the local backend."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hazmat.sandbox.local.host import rmtree

pytestmark = [pytest.mark.timeout(30)]


def test_rmtree_of_a_tree_it_cannot_remove_never_changes_its_parent(tmp_path: Path) -> None:
    """A backing folder that is still a mount point cannot be removed (EBUSY): the
    cleanup once answered with ``chmod 700`` of its parent, the shared temp folder,
    which broke every other local sandbox on the machine."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    parent = tmp_path / "parent"
    parent.mkdir()
    os.chmod(parent, 0o1777)
    point = parent / "backing"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], check=True)
    try:
        (point / "x").write_text("1")
        (point / "d").mkdir(mode=0o500)
        rmtree(point)
        assert os.listdir(point) == []  # what could go went
        assert parent.stat().st_mode & 0o7777 == 0o1777
    finally:
        subprocess.run(["umount", str(point)], check=True)
