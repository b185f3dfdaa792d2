"""The Docker backend's sizing of memory-backed mounts."""

from __future__ import annotations

import pytest

from hazmat.sandbox.docker.config import tmpfs_sizes


@pytest.mark.parametrize("memory", [32, 64, 256, 512, 1024, 4096])
@pytest.mark.parametrize("mounts", [1, 2, 3])
def test_tmpfs_mounts_leave_a_reserve_under_the_memory_limit(memory: int, mounts: int) -> None:
    """tmpfs pages are charged to the limit: every mount full plus /dev/shm full still
    leaves at least a quarter of the limit (half under 256 MiB) to the processes."""
    each, shm = tmpfs_sizes(memory, mounts)
    assert each >= 1 and 1 <= shm <= 64
    reserve = memory - (each * mounts + shm)
    assert reserve >= min(memory // 4, 128) and reserve >= memory // 4 - 1
    if memory >= 256:
        assert reserve >= 128


def test_the_default_box() -> None:
    assert tmpfs_sizes(1024, 2) == (352, 64)
